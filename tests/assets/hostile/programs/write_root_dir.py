# category: host-write
# The sandbox's root is its own tmpfs: a write there may succeed, and never reaches the host's /.
# expect: {"ok": true, "stdout": "written"}
# after: {"host_absent": ["/{{marker}}"]}
open("/workspace/../{{marker}}", "w").write("x")
print("written")
