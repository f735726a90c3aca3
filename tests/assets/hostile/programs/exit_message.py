# category: exit
# expect: {"returncode": 1, "stderr": "bye", "limit": null}
import sys

sys.exit("bye")
