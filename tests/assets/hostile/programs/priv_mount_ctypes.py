# category: privilege
# expect: {"returncode": 1, "stderr": "Operation not permitted"}
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
os.mkdir("m")
if libc.mount(b"none", b"m", b"tmpfs", 0, None) != 0:
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err))
