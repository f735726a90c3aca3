# category: hardlink
# expect: {"returncode": 1, "stderr": "Invalid cross-device link"}
import os
import sys

os.link(os.path.realpath(sys.executable), "py")
