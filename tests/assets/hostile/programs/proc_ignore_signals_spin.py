# category: process
# Ignoring every catchable signal does not stop the CPU limit (SIGKILL at the hard limit).
# expect: {"limit": "CPU limit"}
# limits: {"wall_seconds": 6, "cpu_seconds": 1}
import signal

for sig in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
while True:
    pass
