# category: process
# The parent is the sandbox's init (pid 1 of its namespace), which ignores signals from inside.
# expect: {"ok": true, "stdout": "parent is 1\\s+still here"}
import os
import time

print("parent is", os.getppid())
os.kill(os.getppid(), 9)
time.sleep(0.2)
print("still here")
