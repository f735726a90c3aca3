"""Walk and empty a workspace folder through file descriptors only: no path is ever resolved twice.

    for rel, st, dir_fd, name in walk(root): ...     # every entry below root, links reported, never followed
    empty(root)                                       # remove everything below root (root stays)

Both are iterative and depth first with one directory stream per level (no recursion limit, no PATH_MAX: names
are resolved relative to their folder's descriptor), linear in the number of entries, and safe against code
racing them: folders are opened with O_NOFOLLOW|O_DIRECTORY, so a folder swapped for a link is never entered.
Descriptors stay bounded: `walk` refuses trees deeper than `MAX_DEPTH` levels, or a quarter of the descriptor
limit (TooLarge: the caller treats it as over quota), and `empty` moves a folder found at that depth up to the
root under a fresh name and empties it from there.
"""

from __future__ import annotations

import itertools
import os
import resource
import stat
from collections.abc import Iterator

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 128


def _max_depth() -> int:
    """Levels (one open descriptor each) we allow ourselves: MAX_DEPTH, or a quarter of the descriptor limit."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return MAX_DEPTH if soft == resource.RLIM_INFINITY else max(4, min(MAX_DEPTH, soft // 4))


class TooLarge(Exception):
    """The tree has more entries, or more depth, than the walk was allowed to visit."""


def _open_root(root: str | int) -> int:
    return os.dup(root) if isinstance(root, int) else os.open(root, DIR_FLAGS & ~os.O_NOFOLLOW)


def walk(root: str | int, max_entries: int = 100_000) -> Iterator[tuple[str, os.stat_result, int, str]]:
    """Yield (relative path, lstat, parent folder fd, name) for every entry below `root`, depth first, sorted."""
    stack = [(_open_root(root), "", None)]
    seen, depth_limit = 0, _max_depth()
    try:
        while stack:
            fd, prefix, names = stack[-1]
            if names is None:
                names = iter(sorted(os.listdir(fd)))
                stack[-1] = (fd, prefix, names)
            name = next(names, None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue
            seen += 1
            if seen > max_entries:
                raise TooLarge(f"more than {max_entries} entries")
            yield prefix + name, st, fd, name
            if stat.S_ISDIR(st.st_mode):
                if len(stack) >= depth_limit:
                    raise TooLarge(f"deeper than {depth_limit} folders")
                try:
                    stack.append((os.open(name, DIR_FLAGS, dir_fd=fd), prefix + name + "/", None))
                except OSError:
                    continue  # swapped for a link or removed meanwhile: not entered
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def empty(root: str | int, budget: int = 10_000_000) -> None:
    """Remove everything below `root` (a path we trust, or an open folder descriptor), which stays; never
    following links. Gives up with OSError after `budget` steps (a process refilling it faster than it empties)."""
    root_fd = _open_root(root)
    flat, depth_limit = itertools.count(), _max_depth()
    stack: list[list] = [[root_fd, None, None]]  # [folder fd, its name in the parent, iterator over its names]
    try:
        while stack:
            budget -= 1
            if budget < 0:
                raise OSError(f"could not empty {root}: it keeps changing")
            level = stack[-1]
            fd = level[0]
            if level[2] is None:
                level[2] = iter(os.listdir(fd))
            name = next(level[2], None)
            if name is None:
                if os.listdir(fd):  # refilled (or a folder moved up here) while we were listing: go again
                    level[2] = None
                    continue
                stack.pop()
                os.close(fd)
                if stack:
                    try:
                        os.rmdir(level[1], dir_fd=stack[-1][0])
                    except OSError:
                        pass  # refilled: the parent's next listing enters it again
                continue
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if len(stack) >= depth_limit:  # bound the open descriptors: finish this subtree from the root
                    try:
                        os.rename(name, f".al-flat-{next(flat)}-{os.getpid()}", src_dir_fd=fd, dst_dir_fd=root_fd)
                    except OSError:
                        pass
                    continue
                try:
                    stack.append([os.open(name, DIR_FLAGS, dir_fd=fd), name, None])
                    continue
                except OSError:
                    pass  # became a link: unlink it below
            try:
                os.unlink(name, dir_fd=fd)
            except (IsADirectoryError, FileNotFoundError):
                pass  # became a folder again (the next listing enters it), or already gone
    finally:
        for level in stack:
            os.close(level[0])
