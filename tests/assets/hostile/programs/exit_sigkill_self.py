# category: signal
# expect: {"returncode": "nonzero", "limit": null}
import os
import signal

os.kill(os.getpid(), signal.SIGKILL)
