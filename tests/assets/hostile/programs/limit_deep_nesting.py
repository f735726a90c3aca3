# category: limits
# 1500 nested folders: the run must still return a result and the workspace must stay usable.
# expect: {"ok": true, "stdout": "nested 1500"}
# after: {"usable": true}
# xfail: Workspace.rescan/snapshot/reset/close use recursive os.walk/shutil.rmtree; a tree deeper than the recursion limit makes run_python raise RecursionError and the workspace can no longer be reset or removed
import os

for _ in range(1500):
    os.mkdir("d")
    os.chdir("d")
print("nested 1500")
