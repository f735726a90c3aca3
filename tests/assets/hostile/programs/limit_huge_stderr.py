# category: limits
# expect: {"returncode": "nonzero", "stderr": "output truncated at 4000 characters"}
import sys

while True:
    sys.stderr.write("y" * 65536)
