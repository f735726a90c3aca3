# category: host-read
# /proc/1/root is the sandbox's root: no host /etc or /home behind it.
# expect: {"stdout_not": "'etc'|'home'|'root'"}
import os

print(sorted(os.listdir("/proc/1/root/")))
