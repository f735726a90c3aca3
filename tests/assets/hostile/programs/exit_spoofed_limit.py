# category: exit
# A normal exit with status 152 (= 128 + SIGXCPU) is not a CPU limit.
# expect: {"returncode": 152, "limit": null}
import sys

sys.exit(152)
