"""Walk and empty a workspace folder through file descriptors only: no path is ever resolved twice.

    for rel, st, dir_fd, name in walk(root): ...     # every entry below root, links reported, never followed
    empty(root)                                       # remove everything below root

Both are iterative (no recursion limit, no PATH_MAX: names are resolved relative to their folder's descriptor)
and safe against code racing them: folders are opened with O_NOFOLLOW|O_DIRECTORY, so a folder swapped for a
link is skipped or unlinked, never entered. `walk` stops after `max_entries` entries (the caller treats that as
over quota) and keeps at most `MAX_OPEN` folder descriptors pending.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_OPEN = 256


class TooLarge(Exception):
    """The tree has more entries (or pending folders) than the walk was allowed to visit."""


def walk(root: str, max_entries: int = 100_000) -> Iterator[tuple[str, os.stat_result, int, str]]:
    """Yield (relative path, lstat, parent folder fd, name) for every entry below `root`, depth first."""
    stack = [(os.open(root, DIR_FLAGS & ~os.O_NOFOLLOW), "")]
    seen = 0
    try:
        while stack:
            fd, prefix = stack.pop()
            try:
                for name in sorted(os.listdir(fd)):
                    try:
                        st = os.lstat(name, dir_fd=fd)
                    except FileNotFoundError:
                        continue
                    seen += 1
                    if seen > max_entries:
                        raise TooLarge(f"more than {max_entries} entries")
                    yield prefix + name, st, fd, name
                    if stat.S_ISDIR(st.st_mode):
                        if len(stack) >= MAX_OPEN:
                            raise TooLarge(f"more than {MAX_OPEN} folders pending")
                        try:
                            stack.append((os.open(name, DIR_FLAGS, dir_fd=fd), prefix + name + "/"))
                        except OSError:
                            continue  # swapped for a link or removed meanwhile: not entered
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)


def empty(root: str | int, budget: int = 1_000_000) -> None:
    """Remove everything below `root` (a path we trust, or an open folder descriptor), which stays; depth first,
    without following links. Gives up with OSError after `budget` listings (a process refilling the tree as fast
    as it is emptied)."""
    first = os.dup(root) if isinstance(root, int) else os.open(root, DIR_FLAGS & ~os.O_NOFOLLOW)
    stack: list[tuple[int, str | None]] = [(first, None)]
    try:
        while stack:
            budget -= 1
            if budget < 0:
                raise OSError(f"could not empty {root}: it keeps changing")
            fd = stack[-1][0]
            descended = False
            for name in os.listdir(fd):
                try:
                    st = os.lstat(name, dir_fd=fd)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    try:
                        stack.append((os.open(name, DIR_FLAGS, dir_fd=fd), name))
                        descended = True
                        break
                    except OSError:
                        pass  # became a link: unlink it below
                try:
                    os.unlink(name, dir_fd=fd)
                except IsADirectoryError:
                    pass  # became a folder again: the next listing enters it
                except FileNotFoundError:
                    pass
            if descended:
                continue
            fd, name = stack.pop()
            os.close(fd)
            if stack and name is not None:
                try:
                    os.rmdir(name, dir_fd=stack[-1][0])
                except OSError:
                    pass  # refilled meanwhile: the parent's next listing enters it again
    finally:
        for fd, _ in stack:
            os.close(fd)
