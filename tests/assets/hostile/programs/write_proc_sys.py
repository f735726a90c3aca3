# category: host-write
# expect: {"returncode": 1, "stderr": "Read-only file system|Permission denied"}
open("/proc/sys/kernel/hostname", "w").write("pwned")
