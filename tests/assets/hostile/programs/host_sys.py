# category: host-read
# expect: {"returncode": 1, "stderr": "FileNotFoundError.*/sys"}
import os

print(os.listdir("/sys"))
