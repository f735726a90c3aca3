# category: host-write
# expect: {"returncode": 1, "stderr": "Read-only file system|Permission denied"}
# after: {"host_absent": ["/usr/{{marker}}"]}
open("/usr/{{marker}}", "w").write("x")
