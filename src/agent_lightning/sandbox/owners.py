"""Who owns a sandbox: one fresh unprivileged uid per workspace when we are root, reserved across processes.

    owner = sandbox_owner()      # (uid, gid), or None when not root (the sandbox then runs as ourselves)
    ...
    release_owner(owner)         # Workspace.close does it

Not covered here: running code as that owner (process.py) or the files it owns (workspace.py).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import secrets
import tempfile

NOBODY = (65534, 65534)
SANDBOX_IDS = 3_000_000  # first uid/gid of the per-workspace range (root only)
SANDBOX_ID_COUNT = 10_000_000
UID_LOCKS = os.path.join(tempfile.gettempdir(), "agent-lightning-uids")
_reserved: dict[int, tuple[int, int]] = {}  # uid -> (fd holding its lock, pid that reserved it: a fork holds copies)


def sandbox_owner() -> tuple[int, int] | None:
    """A fresh (uid, gid) for one workspace and the code run in it, when we are root; None (ourselves) otherwise.

    As root every workspace gets its own unprivileged id, drawn at random from a range no account uses and
    reserved with a lock file (held until `release_owner`, or until this process dies), so no two live
    workspaces, in this process or another, share a uid: the process limit (counted per user), file permissions
    and the weaker modes' kill-by-uid separate concurrent sandboxes from each other, not only from the host.
    """
    if os.geteuid() != 0:
        return None
    os.makedirs(UID_LOCKS, mode=0o700, exist_ok=True)
    for _ in range(1000):
        uid = SANDBOX_IDS + secrets.randbelow(SANDBOX_ID_COUNT)
        path = os.path.join(UID_LOCKS, str(uid))
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino != os.fstat(fd).st_ino:  # its holder released (unlinked) it meanwhile
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            continue
        _reserved[uid] = fd, os.getpid()
        return uid, uid
    raise RuntimeError("no free sandbox uid")


def release_owner(owner: tuple[int, int] | None) -> None:
    """Give a workspace's uid back (Workspace.close does it): its lock file is removed while still locked, so a
    long run leaves no lock files behind and nobody can lock the removed one by its old name."""
    if owner and owner[0] in _reserved:
        try:
            os.unlink(os.path.join(UID_LOCKS, str(owner[0])))
        except FileNotFoundError:
            pass
        os.close(_reserved.pop(owner[0])[0])


def _release_all_at_exit() -> None:
    """Give back every uid this process reserved and still holds: workspaces alive at exit are not closed one by
    one (workspace.py's own hook removes their folders), and a lock file left behind would pile up in UID_LOCKS.
    A forked child's copies of its parent's reservations are not its to release."""
    for uid in [uid for uid, (_, pid) in _reserved.items() if pid == os.getpid()]:
        release_owner((uid, uid))


atexit.register(_release_all_at_exit)
