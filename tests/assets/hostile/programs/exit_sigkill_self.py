# category: signal
# expect: {"returncode": "nonzero", "limit": "killed"}
import os
import signal

os.kill(os.getpid(), signal.SIGKILL)
