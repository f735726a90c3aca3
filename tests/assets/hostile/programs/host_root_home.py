# category: host-read
# expect: {"returncode": 1, "stderr": "FileNotFoundError.*/root"}
import os

print(os.listdir("/root"))
