# category: process
# expect: {"timed_out": true, "limit": "wall-clock"}
# limits: {"wall_seconds": 1, "max_processes": 16}
import os

while True:
    try:
        os.fork()
    except OSError:
        pass
