# category: limits
# The hard limits cannot be raised back from inside.
# expect: {"returncode": 1, "stderr": "not allowed to raise maximum limit"}
import resource

resource.setrlimit(resource.RLIMIT_CPU, (3600, 3600))
