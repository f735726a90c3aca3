# category: host-read
# pid 1 here is the sandbox's own init, not the host's: its environment is the sandbox's.
# expect: {"ok": true, "stdout": "PATH=/usr/bin:/bin", "stdout_not": "AL_SANDBOX_TEST"}
print(open("/proc/1/environ", "rb").read().replace(b"\0", b"\n").decode())
