# category: limits
# expect: {"timed_out": true, "limit": "wall-clock limit of 1 s"}
# limits: {"wall_seconds": 1}
import time

time.sleep(10**6)
