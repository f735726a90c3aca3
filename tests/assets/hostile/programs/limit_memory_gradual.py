# category: limits
# expect: {"returncode": 1, "stderr": "MemoryError"}
# limits: {"memory_bytes": 134217728}
chunks = []
while True:
    chunks.append(bytearray(8 << 20))
