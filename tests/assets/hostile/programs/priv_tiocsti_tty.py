# category: privilege
# No controlling terminal (new session, stdin closed): TIOCSTI input injection has nothing to reach.
# expect: {"returncode": 1, "stderr": "No such device or address|FileNotFoundError"}
import os

os.open("/dev/tty", os.O_RDWR)
