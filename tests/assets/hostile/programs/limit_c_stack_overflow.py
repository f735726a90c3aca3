# category: limits
# C-level recursion past the stack with the recursion guard lifted: a segmentation fault, reported as such.
# expect: {"limit": "segmentation fault"}
# limits: {"wall_seconds": 6, "cpu_seconds": 3}
import sys

sys.setrecursionlimit(10**8)
nested = []
for _ in range(100_000):
    nested = [nested]
print(len(repr(nested)))
