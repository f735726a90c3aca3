# category: symlink
# A link to a host path resolves inside the sandbox's own root, where the host file does not exist.
# expect: {"returncode": 1, "stderr": "FileNotFoundError"}
import os

os.symlink("{{canary_file}}", "secret")
print(open("secret").read())
