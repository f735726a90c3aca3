# category: limits
# expect: {"returncode": 1, "stderr": "MemoryError"}
# limits: {"memory_bytes": 134217728, "cpu_seconds": 5, "wall_seconds": 10}
x = bytearray(8 << 30)
