# category: process
# kill(-1) reaches only this namespace; the test process and the host are unaffected.
# expect: {"returncode": 1, "stderr": "ProcessLookupError"}
import os

os.kill(-1, 9)
