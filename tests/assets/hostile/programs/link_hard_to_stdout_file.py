# category: hardlink
# stdout is a host file outside the workspace; linking it through /proc/self/fd must fail.
# expect: {"returncode": 1, "stderr": "Invalid cross-device link"}
import os

os.link("/proc/self/fd/1", "captured_stdout")
