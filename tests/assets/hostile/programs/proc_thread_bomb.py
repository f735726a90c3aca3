# category: process
# Threads count against the process limit too.
# expect: {"returncode": 1, "stderr": "can't start new thread"}
# limits: {"max_processes": 16}
import threading
import time

threads = []
while True:
    t = threading.Thread(target=time.sleep, args=(5,), daemon=True)
    t.start()
    threads.append(t)
