# category: host-write
# The script is bound read-only from a host file.
# expect: {"returncode": 1, "stderr": "Read-only file system|Permission denied"}
open(__file__, "a").write("# tampered\n")
