# category: limits
# expect: {"returncode": 1, "stderr": "File too large"}
with open("sparse.bin", "wb") as fh:
    fh.truncate(1 << 40)
