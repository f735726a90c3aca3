# category: host-read
# Only the sandbox's own processes are visible (a new pid namespace; the program is its init): no host process list.
# expect: {"ok": true, "stdout": "^\\[1\\]\\s*$"}
import os

print(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
