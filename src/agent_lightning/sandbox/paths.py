"""Resolve a policy-supplied path to a location inside one workspace, or refuse it.

    from agent_lightning.sandbox.paths import check_relative, open_parent
    parts = check_relative("notes/todo.txt", limits)        # ('notes', 'todo.txt') or SandboxError
    with open_parent(root, parts, create=False) as (dir_fd, name): ...

Rules (every path a tool receives goes through `check_relative` first):
  - relative only: no leading '/', no '~', no Windows drive letters; '.' parts are dropped, '..' is refused
    (even when it would stay inside: the policy must name paths plainly);
  - no NUL or other control characters, no empty names, at most `max_path_chars` characters and
    `max_depth` parts;
  - every directory on the way is opened with O_NOFOLLOW relative to its parent's descriptor (`open_parent`),
    so a symlink anywhere on the path is refused even if it was created by code between two tool calls, and
    no check-then-use race can redirect the operation outside the workspace.

What it does not do: decide what the final component may be (the workspace refuses links and hard-linked
files there), or count quotas (the workspace does).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from agent_lightning.sandbox.errors import SandboxError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def check_relative(path: object, max_path_chars: int = 200, max_depth: int = 12) -> tuple[str, ...]:
    """The path's parts if it is an allowed workspace-relative path; SandboxError naming the rule otherwise."""
    if not isinstance(path, str):
        raise SandboxError(f"path must be a string, got {type(path).__name__}")
    shown = repr(path[:80])
    try:
        path.encode()
    except UnicodeEncodeError:
        raise SandboxError(f"path {shown} is not valid text (it contains an unpaired surrogate)") from None
    if "\x00" in path:
        raise SandboxError(f"path {shown} contains a NUL byte")
    if _CONTROL.search(path):
        raise SandboxError(f"path {shown} contains a control character")
    if len(path) > max_path_chars:
        raise SandboxError(f"path is {len(path)} characters long; the limit is {max_path_chars}")
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        raise SandboxError(f"path {shown} is absolute; use a path relative to the workspace, e.g. 'notes.txt'")
    if path.startswith("~"):
        raise SandboxError(f"path {shown} starts with '~'; use a path relative to the workspace")
    parts = tuple(p for p in path.replace("\\", "/").split("/") if p not in ("", "."))
    if ".." in parts:
        raise SandboxError(f"path {shown} contains '..'; paths must stay inside the workspace")
    if len(parts) > max_depth:
        raise SandboxError(f"path {shown} is {len(parts)} levels deep; the limit is {max_depth}")
    for part in parts:
        if len(part.encode()) > 255:
            raise SandboxError(f"path {shown} has a name longer than 255 bytes")
    return parts


def _open_dir(name: str, dir_fd: int) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            kind = "a symbolic link" if _is_link(name, dir_fd) else "not a directory"
            raise SandboxError(f"'{name}' is {kind}; paths cannot go through it") from None
        raise


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


@contextmanager
def open_parent(root: str, parts: tuple[str, ...], create: bool = False, owner: tuple[int, int] | None = None,
                made: list[tuple[str, ...]] | None = None) -> Iterator[tuple[int, str]]:
    """Yield (fd of the parent directory, final name), walking from `root` without following links.

    With `create`, missing intermediate directories are made (mode 0o755, chowned to `owner`) and their parts
    appended to `made`. `parts` must come from `check_relative` and be non-empty.
    """
    if not parts:
        raise SandboxError("the path names the workspace itself; name a file or folder inside it")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for depth, name in enumerate(parts[:-1]):
            try:
                next_fd = _open_dir(name, fd)
            except FileNotFoundError:
                if not create:
                    raise SandboxError(f"folder '{name}' does not exist") from None
                os.mkdir(name, 0o755, dir_fd=fd)
                if owner:
                    os.chown(name, *owner, dir_fd=fd, follow_symlinks=False)
                if made is not None:
                    made.append(parts[: depth + 1])
                next_fd = _open_dir(name, fd)
            os.close(fd)
            fd = next_fd
        yield fd, parts[-1]
    finally:
        os.close(fd)


@contextmanager
def open_dir(root: str, parts: tuple[str, ...]) -> Iterator[int]:
    """Yield an fd of the folder `parts` under `root` (the root itself for no parts), never following links."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in parts:
            try:
                next_fd = _open_dir(name, fd)
            except FileNotFoundError:
                raise SandboxError(f"folder '{'/'.join(parts)}' does not exist") from None
            os.close(fd)
            fd = next_fd
        yield fd
    finally:
        os.close(fd)
