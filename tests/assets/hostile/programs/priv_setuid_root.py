# category: privilege
# expect: {"returncode": 1, "stderr": "OSError: \\[Errno 22\\] Invalid argument|PermissionError"}
import os

os.setuid(0)
