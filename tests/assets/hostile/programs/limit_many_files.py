# category: limits
# Code can exceed the workspace's entry quota; the rescan after the run sees it and the file tools refuse new files.
# expect: {"ok": true, "stdout": "made 200"}
# after: {"over_quota": true}
for i in range(200):
    open(f"f{i}.txt", "w").write("x" * 100)
print("made 200")
