# category: env-leak
# expect: {"ok": true, "stdout_not": "AL_SANDBOX_TEST"}
import os

for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            print(pid, open(f"/proc/{pid}/environ", "rb").read())
        except OSError as exc:
            print(pid, exc)
