# category: host-read
# expect: {"ok": true, "stdout": "^\\[\\]\\s*$"}
import os

print(os.listdir("/tmp"))
