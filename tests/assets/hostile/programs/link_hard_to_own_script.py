# category: hardlink
# expect: {"returncode": 1, "stderr": "Invalid cross-device link"}
import os

os.link(__file__, "main_copy.py")
