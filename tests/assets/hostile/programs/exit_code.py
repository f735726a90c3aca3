# category: exit
# expect: {"returncode": 3, "limit": null, "report": "\\[exit code 3\\]"}
import sys

sys.exit(3)
