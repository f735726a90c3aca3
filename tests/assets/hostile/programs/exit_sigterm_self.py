# category: signal
# The program is its pid namespace's init (bwrap --as-pid-1): signals it sends itself are ignored.
# expect: {"ok": true, "limit": null}
import os
import signal

os.kill(os.getpid(), signal.SIGTERM)
