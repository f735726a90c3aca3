# category: limits
# expect: {"limit": "CPU limit"}
# limits: {"wall_seconds": 6, "cpu_seconds": 1}
while True:
    pass
