"""One writer per run directory: a lock held for the whole run, naming who holds it.

    with RunLock(run_dir):        # a second run on run_dir exits 2: "... in use by pid 4242 on host gpu-3 ..."
        train ...

The lock is `RUN_DIR/.lock`, held with `flock` by the run's main process for as long as it trains, and holding
`{"pid", "host", "started"}` so that the one-line error of a second run names the holder. The kernel releases a
flock when its holder dies (SIGKILL, OOM, a lost node's process), so a lock file left behind by a dead run is
taken over by the next run, with a warning naming the process it replaces. A run that ends removes the file.

Not guarded: file systems whose flock is not shared between hosts (some NFS setups): there, two runs on two
hosts can both take the lock; keep one scheduler job per run directory.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from agent_lightning.errors import UserError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


class RunLock:
    """Exclusive lock on a run directory (see the module docstring); a context manager."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(fd))
            os.close(fd)
            raise UserError(f"run directory {self.path.parent} is in use by {holder}; wait for that run to end or "
                            "pick another --output-dir.") from None
        left = _read(fd)
        if left:
            log.warning("taking over the lock of %s left by %s, which is no longer running", self.path.parent,
                        _describe(left))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {"pid": "?", "host": "?"}


def _describe(holder: dict[str, Any]) -> str:
    started = f", started {holder['started']}" if holder.get("started") else ""
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}{started}"
