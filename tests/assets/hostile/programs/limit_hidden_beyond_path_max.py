# category: limits
# Files deeper than PATH_MAX: the quota rescan must still count them.
# expect: {"ok": true, "stdout": "hidden"}
# after: {"over_quota": true}
import os

for _ in range(20):
    os.mkdir("n" * 250)
    os.chdir("n" * 250)
for i in range(5):
    open(f"big{i}", "wb").write(b"x" * 900_000)
print("hidden")
