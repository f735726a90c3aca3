# category: host-write
# /tmp is a private tmpfs: the write succeeds there and never reaches the host's /tmp.
# expect: {"ok": true, "stdout": "written"}
# after: {"host_absent": ["/tmp/{{marker}}-tmp"]}
open("/tmp/{{marker}}-tmp", "w").write("x")
print("written")
