# category: host-read
# A minimal /dev: no disks, no memory devices, no kernel log.
# expect: {"ok": true, "stdout": "'null'", "stdout_not": "sda|vda|nvme|'mem'|kmsg|'port'"}
import os

print(sorted(os.listdir("/dev")))
