"""A per-rollout workspace folder and the file operations a policy may perform in it.

    ws = Workspace({"notes/a.txt": "hello"})      # a fresh folder built from the template
    ws.write_file("b.txt", "hi"); ws.read_file("notes/a.txt"); ws.list_dir(".")
    ws.snapshot()                                  # {"b.txt": "hi", "notes/a.txt": "hello"} for verifiers
    ws.reset()                                     # back to the template, deterministically
    ws.close()                                     # removed (also at interpreter exit)

Every path goes through `paths.check_relative` and `paths.open_parent` (no '..', absolute paths, '~', NUL,
links on the way). On top of that the final component is opened with O_NOFOLLOW|O_NONBLOCK and checked with
fstat: symlinks, hard-linked files (st_nlink > 1), FIFOs and devices are refused, never followed or opened
for real. Links cannot be created through these operations. Quotas (`Quota`): total bytes and entries in the
workspace, bytes per file, path length and depth. Counters are kept incrementally (fast) and recounted with
`rescan()` after code has run in the folder.

Building a workspace writes the template's files (about 1 ms for 20 small files; a hard-linked or
copy-on-write clone would save little at this size and would let code in the sandbox modify the template).
`owner` (uid, gid) chowns everything the workspace creates, so code running as an unprivileged user can
write it. Not covered here: running code (see process.py).
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from agent_lightning.sandbox.errors import SandboxError
from agent_lightning.sandbox.paths import check_relative, open_dir, open_parent

_BASE: str | None = None


def _base_dir() -> str:
    """One temporary folder per process holding every workspace; removed at exit."""
    global _BASE
    if _BASE is None or not os.path.isdir(_BASE):
        _BASE = tempfile.mkdtemp(prefix="agent-lightning-ws-")
        os.chmod(_BASE, 0o711)
        atexit.register(shutil.rmtree, _BASE, True)
    return _BASE


@dataclass(frozen=True)
class Quota:
    max_bytes: int = 4 << 20
    max_entries: int = 256
    max_file_bytes: int = 256 << 10
    max_path_chars: int = 200
    max_depth: int = 12


class Workspace:
    """A sandboxed folder built from a template of {relative path: text or bytes}."""

    def __init__(self, files: Mapping[str, str | bytes] | None = None, quota: Quota = Quota(),
                 owner: tuple[int, int] | None = None):
        self.template = dict(files or {})
        self.quota = quota
        self.owner = owner
        self.root = tempfile.mkdtemp(prefix="ws-", dir=_base_dir())
        self._bytes = 0
        self._entries = 0
        self._populate()

    # ----------------------------------------------------------------- lifecycle
    def _populate(self) -> None:
        if self.owner:
            os.chown(self.root, *self.owner)
        for rel, content in self.template.items():
            parts = check_relative(rel, self.quota.max_path_chars, self.quota.max_depth)
            data = content.encode() if isinstance(content, str) else bytes(content)
            target = os.path.join(self.root, *parts)
            parent = os.path.dirname(target)
            if not os.path.isdir(parent):
                os.makedirs(parent)
                self._chown_tree(parent)
            with open(target, "wb") as fh:
                fh.write(data)
            if self.owner:
                os.chown(target, *self.owner)
        self.rescan()

    def _chown_tree(self, path: str) -> None:
        while self.owner and path != self.root and path.startswith(self.root):
            os.chown(path, *self.owner)
            path = os.path.dirname(path)

    def reset(self, files: Mapping[str, str | bytes] | None = None) -> None:
        """Empty the folder and rebuild it from the template (or from `files`, which becomes the template)."""
        if files is not None:
            self.template = dict(files)
        self._clear()
        self._populate()

    def _clear(self) -> None:
        for entry in os.scandir(self.root):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- accounting
    def rescan(self) -> tuple[int, int]:
        """Recount bytes and entries from disk (after code ran here); returns (bytes, entries)."""
        total, entries = 0, 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            entries += len(dirnames) + len(filenames)
            for name in filenames:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
        self._bytes, self._entries = total, entries
        return total, entries

    def _parts(self, path: object) -> tuple[str, ...]:
        return check_relative(path, self.quota.max_path_chars, self.quota.max_depth)

    def _need_entry(self) -> None:
        if self._entries + 1 > self.quota.max_entries:
            raise SandboxError(f"the workspace already holds {self._entries} files and folders (limit {self.quota.max_entries})")

    # ----------------------------------------------------------------- operations
    def read_file(self, path: str) -> str:
        parts = self._parts(path)
        with open_parent(self.root, parts) as (dir_fd, name):
            fd = _open_regular(name, dir_fd, os.O_RDONLY, path)
            try:
                size = os.fstat(fd).st_size
                if size > self.quota.max_file_bytes:
                    raise SandboxError(f"'{path}' is {size} bytes; files over {self.quota.max_file_bytes} bytes cannot be read")
                with os.fdopen(os.dup(fd), "rb") as fh:
                    return fh.read().decode("utf-8", errors="replace")
            finally:
                os.close(fd)

    def write_file(self, path: str, content: str, append: bool = False) -> int:
        """Create or overwrite (or append to) a text file; returns its new size in bytes.

        Missing folders are created (and counted); if the write is refused they are removed again."""
        if not isinstance(content, str):
            raise SandboxError(f"content must be a string, got {type(content).__name__}")
        parts = self._parts(path)
        data = content.encode()
        if len(data) > self.quota.max_file_bytes:
            raise SandboxError(f"the content is {len(data)} bytes; the per-file limit is {self.quota.max_file_bytes}")
        made: list[tuple[str, ...]] = []
        try:
            with open_parent(self.root, parts, create=True, owner=self.owner, made=made) as (dir_fd, name):
                self._entries += len(made)
                return self._write(dir_fd, name, path, data, append)
        except BaseException:
            self._remove_folders(made)
            raise

    def _write(self, dir_fd: int, name: str, path: str, data: bytes, append: bool) -> int:
        existed = _exists(name, dir_fd)
        if not existed:
            self._need_entry()
        fd = _open_regular(name, dir_fd, os.O_WRONLY | os.O_CREAT, path)
        try:
            old = os.fstat(fd).st_size
            new = old + len(data) if append else len(data)
            if new > self.quota.max_file_bytes:
                raise SandboxError(f"'{path}' would be {new} bytes; the per-file limit is {self.quota.max_file_bytes}")
            if self._bytes - old + new > self.quota.max_bytes:
                raise SandboxError(f"writing '{path}' would exceed the workspace quota of {self.quota.max_bytes} bytes")
            if append:
                os.lseek(fd, 0, os.SEEK_END)
            else:
                os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.owner:
                os.fchown(fd, *self.owner)
        except BaseException:
            if not existed:
                os.unlink(name, dir_fd=dir_fd)
            raise
        finally:
            os.close(fd)
        self._bytes += new - old
        self._entries += 0 if existed else 1
        return new

    def _remove_folders(self, made: list[tuple[str, ...]]) -> None:
        """Undo folders a refused operation created (deepest first)."""
        for parts in reversed(made):
            try:
                with open_parent(self.root, parts) as (dir_fd, name):
                    os.rmdir(name, dir_fd=dir_fd)
                self._entries -= 1
            except (OSError, SandboxError):
                pass

    def list_dir(self, path: str = ".") -> list[str]:
        """Sorted entry names; folders end with '/', links with '@' (they are listed, never followed)."""
        parts = self._parts(path)
        with open_dir(self.root, parts) as fd:
            names = []
            for name in os.listdir(fd):
                mode = os.lstat(name, dir_fd=fd).st_mode
                names.append(name + ("/" if stat.S_ISDIR(mode) else "@" if stat.S_ISLNK(mode) else ""))
        return sorted(names)

    def make_dir(self, path: str) -> None:
        parts = self._parts(path)
        made: list[tuple[str, ...]] = []
        with open_parent(self.root, parts, create=True, owner=self.owner, made=made) as (dir_fd, name):
            self._entries += len(made)
            if _exists(name, dir_fd):
                if stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode):
                    return
                raise SandboxError(f"'{path}' already exists and is not a folder")
            self._need_entry()
            os.mkdir(name, 0o755, dir_fd=dir_fd)
            if self.owner:
                os.chown(name, *self.owner, dir_fd=dir_fd, follow_symlinks=False)
        self._entries += 1

    def move(self, src: str, dst: str) -> None:
        """Rename a file or folder; `dst` may be an existing folder to move into. Never overwrites."""
        src_parts, dst_parts = self._parts(src), self._parts(dst)
        if dst_parts[: len(src_parts)] == src_parts:
            raise SandboxError(f"cannot move '{src}' into itself")
        made: list[tuple[str, ...]] = []
        try:
            with open_parent(self.root, src_parts) as (src_fd, src_name):
                if not _exists(src_name, src_fd):
                    raise SandboxError(f"'{src}' does not exist")
                with open_parent(self.root, dst_parts, create=True, owner=self.owner, made=made) as (dst_fd, dst_name):
                    self._entries += len(made)
                    if _exists(dst_name, dst_fd) and stat.S_ISDIR(os.lstat(dst_name, dir_fd=dst_fd).st_mode):
                        inner = os.open(dst_name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                        dir_fd=dst_fd)
                        try:
                            self._rename(src_name, src_fd, src_name, inner, f"{dst}/{src_name}")
                        finally:
                            os.close(inner)
                    else:
                        self._rename(src_name, src_fd, dst_name, dst_fd, dst)
        except BaseException:
            self._remove_folders(made)
            raise

    @staticmethod
    def _rename(src_name: str, src_fd: int, dst_name: str, dst_fd: int, shown: str) -> None:
        if _exists(dst_name, dst_fd):
            raise SandboxError(f"'{shown}' already exists; delete it first or choose another name")
        os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)

    def delete(self, path: str) -> None:
        """Remove a file, a link (not its target) or a folder with everything in it."""
        parts = self._parts(path)
        with open_parent(self.root, parts) as (dir_fd, name):
            if not _exists(name, dir_fd):
                raise SandboxError(f"'{path}' does not exist")
            st = os.lstat(name, dir_fd=dir_fd)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(name, dir_fd=dir_fd)  # fd-based on Linux: does not follow links inside
            else:
                os.unlink(name, dir_fd=dir_fd)
        if stat.S_ISDIR(st.st_mode):
            self.rescan()
        else:
            self._bytes -= st.st_size
            self._entries -= 1

    def snapshot(self) -> dict[str, str]:
        """{relative path: text} of every regular file; links appear as '<link>', folders as keys ending in '/'."""
        out: dict[str, str] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            prefix = "" if rel_dir == "." else rel_dir + "/"
            for name in dirnames:
                if os.path.islink(os.path.join(dirpath, name)):
                    out[prefix + name] = "<link>"
                elif not os.listdir(os.path.join(dirpath, name)):
                    out[prefix + name + "/"] = ""
            for name in filenames:
                full = os.path.join(dirpath, name)
                if os.path.islink(full) or not os.path.isfile(full):
                    out[prefix + name] = "<link>" if os.path.islink(full) else "<special>"
                    continue
                with open(full, "rb") as fh:
                    out[prefix + name] = fh.read(self.quota.max_file_bytes).decode("utf-8", errors="replace")
        return out


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return False


def _open_regular(name: str, dir_fd: int, flags: int, shown: str) -> int:
    """Open `name` under `dir_fd` only if it is a regular, singly-linked file (never following a link)."""
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    except FileNotFoundError:
        raise SandboxError(f"'{shown}' does not exist") from None
    except IsADirectoryError:
        raise SandboxError(f"'{shown}' is a folder, not a file") from None
    except OSError as exc:
        if _is_symlink(name, dir_fd):
            raise SandboxError(f"'{shown}' is a symbolic link; links are not followed") from None
        raise SandboxError(f"cannot open '{shown}': {exc.strerror}") from None
    st = os.fstat(fd)
    problem = None
    if stat.S_ISDIR(st.st_mode):
        problem = "is a folder, not a file"
    elif not stat.S_ISREG(st.st_mode):
        problem = "is not a regular file"
    elif st.st_nlink > 1:
        problem = "is a hard link; hard-linked files are refused"
    if problem:
        os.close(fd)
        raise SandboxError(f"'{shown}' {problem}")
    return fd


def _is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False
