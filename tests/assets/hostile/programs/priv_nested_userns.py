# category: privilege
# A nested user namespace (if allowed) gives capabilities over nothing new: the host is still not mounted.
# expect: {"returncode": 1, "stderr": "FileNotFoundError"}
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
print("unshare:", libc.unshare(0x10000000 | 0x00020000), ctypes.get_errno())  # CLONE_NEWUSER | CLONE_NEWNS
print(open("{{canary_file}}").read())
