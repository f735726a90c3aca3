# category: privilege
# The only traceable process is the sandbox's own init (same unprivileged user, no capabilities); stopping it
# at most hangs this run until the wall-clock limit.
# limits: {"wall_seconds": 1}
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_PEEKDATA = 16, 2
print("attach:", libc.ptrace(PTRACE_ATTACH, 1, 0, 0), ctypes.get_errno())
print("peek:", libc.ptrace(PTRACE_PEEKDATA, 1, 0x400000, 0), ctypes.get_errno())
