# category: process
# The program is pid 1 of its namespace: its parent is outside (getppid() is 0) and out of reach.
# expect: {"ok": true, "stdout": "parent is 0\\s+still here"}
import os
import time

print("parent is", os.getppid())
os.kill(os.getppid(), 9)
time.sleep(0.2)
print("still here")
