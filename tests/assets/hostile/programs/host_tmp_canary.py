# category: host-read
# The canary file exists on the host (world-readable); the sandbox's /tmp is private.
# expect: {"returncode": 1, "stderr": "FileNotFoundError"}
print(open("{{canary_file}}").read())
