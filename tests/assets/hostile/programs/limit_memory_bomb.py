# category: limits
# expect: {"returncode": 1, "stderr": "MemoryError"}
# limits: {"memory_bytes": 134217728}
x = bytearray(8 << 30)
