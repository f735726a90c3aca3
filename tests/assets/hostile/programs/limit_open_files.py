# category: limits
# expect: {"returncode": 1, "stderr": "Too many open files"}
handles = [open(f"o{i % 10}", "w") for i in range(1000)]
