# category: privilege
# expect: {"returncode": 1, "stderr": "PermissionError.*Operation not permitted"}
import os
import stat

os.mknod("mem", stat.S_IFCHR | 0o666, os.makedev(1, 1))
