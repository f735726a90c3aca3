# category: exit
# expect: {"returncode": 255, "limit": null}
import os

os._exit(255)
