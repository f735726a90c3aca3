# category: limits
# 1500 nested folders: the run must still return a result and the workspace must stay usable.
# expect: {"ok": true, "stdout": "nested 1500"}
# after: {"usable": true}
import os

for _ in range(1500):
    os.mkdir("d")
    os.chdir("d")
print("nested 1500")
