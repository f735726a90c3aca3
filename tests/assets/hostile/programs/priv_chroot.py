# category: privilege
# expect: {"returncode": 1, "stderr": "PermissionError.*Operation not permitted"}
import os

os.chroot("/workspace")
