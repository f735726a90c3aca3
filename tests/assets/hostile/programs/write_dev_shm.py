# category: host-write
# Whatever /dev/shm is here, it is not the host's.
# after: {"host_absent": ["/dev/shm/{{marker}}"]}
import os

os.makedirs("/dev/shm", exist_ok=True)
open("/dev/shm/{{marker}}", "w").write("x")
