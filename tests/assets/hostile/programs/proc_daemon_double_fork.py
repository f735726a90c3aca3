# category: process
# A classic daemon: fork, setsid, fork again, keep writing after the run "ended". It must die with the run.
# expect: {"ok": true, "stdout": "parent done"}
# after: {"stops_growing": "grow.txt"}
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(100):
            with open("grow.txt", "a") as fh:
                fh.write("x")
            time.sleep(0.05)
        os._exit(0)
    os._exit(0)
time.sleep(0.3)
print("parent done")
