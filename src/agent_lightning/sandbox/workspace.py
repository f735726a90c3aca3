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

Longer than most modules (~420 lines) on purpose: every operation is fd-relative and each re-checks the same
invariants (no links, quotas) in its own way; split across files they would be easier to get subtly wrong.
"""

from __future__ import annotations

import atexit
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from agent_lightning.sandbox import tree
from agent_lightning.sandbox.errors import SandboxError
from agent_lightning.sandbox.owners import release_owner
from agent_lightning.sandbox.paths import check_relative, open_dir, open_parent

_BASE: str | None = None


def _base_dir() -> str:
    """One temporary folder per process holding every workspace; removed at exit. Under a multi-process launch
    its name carries the process's rank (agent-lightning-ws-rank1-XXXX), so each training process has its own."""
    global _BASE
    if _BASE is None or not os.path.isdir(_BASE):
        rank = os.environ.get("RANK")
        _BASE = tempfile.mkdtemp(prefix=f"agent-lightning-ws-rank{rank}-" if rank else "agent-lightning-ws-")
        os.chmod(_BASE, 0o711)
        atexit.register(_remove_base, _BASE)
    return _BASE


def _remove_base(base: str) -> None:
    try:
        tree.empty(base)
        os.rmdir(base)
    except OSError:
        pass


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
        """Write the template through folder descriptors (O_EXCL|O_NOFOLLOW, fchown): never a path lookup that a
        link planted by code could redirect."""
        if self.owner:
            os.chown(self.root, *self.owner)
        self._bytes = self._entries = 0
        for rel, content in self.template.items():
            parts = check_relative(rel, self.quota.max_path_chars, self.quota.max_depth)
            data = content.encode() if isinstance(content, str) else bytes(content)
            with open_parent(self.root, parts, create=True, owner=self.owner) as (dir_fd, name):
                fd = _create_exclusive(name, dir_fd)
                try:
                    _write_all(fd, data)
                    if self.owner:
                        os.fchown(fd, *self.owner)
                finally:
                    os.close(fd)
        self.rescan()

    def reset(self, files: Mapping[str, str | bytes] | None = None) -> None:
        """Empty the folder and rebuild it from the template (or from `files`, which becomes the template)."""
        if files is not None:
            self.template = dict(files)
        self._clear()
        self._populate()

    def _clear(self) -> None:
        tree.empty(self.root)

    def close(self) -> None:
        try:
            tree.empty(self.root)
            os.rmdir(self.root)
        except FileNotFoundError:
            pass
        finally:
            release_owner(self.owner)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- accounting
    def rescan(self) -> tuple[int, int]:
        """Recount bytes and entries from disk (after code ran here); returns (bytes, entries). A tree too large to
        walk counts as over both quotas."""
        total, entries = 0, 0
        try:
            for _, st, _, _ in tree.walk(self.root, max_entries=10 * self.quota.max_entries + 1000):
                entries += 1
                total += st.st_size if not stat.S_ISDIR(st.st_mode) else 0
        except tree.TooLarge:
            total, entries = max(total, self.quota.max_bytes + 1), max(entries, self.quota.max_entries + 1)
        self._bytes, self._entries = total, entries
        return total, entries

    def over_quota(self) -> str | None:
        """Why the workspace is over its quota (after code ran), or None."""
        if self._bytes > self.quota.max_bytes:
            return f"{self._bytes} bytes (limit {self.quota.max_bytes})"
        if self._entries > self.quota.max_entries:
            return f"{self._entries} files and folders (limit {self.quota.max_entries})"
        return None

    def _parts(self, path: object) -> tuple[str, ...]:
        return check_relative(path, self.quota.max_path_chars, self.quota.max_depth)

    @contextmanager
    def _creating(self, parts: tuple[str, ...]) -> Iterator[tuple[int, str]]:
        """open_parent(create=True) whose new folders are owned, counted against the quota, and removed again if
        the operation fails."""
        made: list[tuple[str, ...]] = []
        counted = False
        try:
            with open_parent(self.root, parts, create=True, owner=self.owner, made=made) as (dir_fd, name):
                self._entries += len(made)
                counted = True
                if made and self._entries > self.quota.max_entries:
                    raise SandboxError(f"the workspace already holds {self._entries - len(made)} files and folders; "
                                       f"{len(made)} new folder(s) would exceed the limit of {self.quota.max_entries}")
                yield dir_fd, name
        except BaseException:
            if not counted:
                self._entries += len(made)  # created but not counted yet: _remove_folders subtracts them
            self._remove_folders(made)
            raise

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
        try:
            data = content.encode()
        except UnicodeEncodeError as exc:
            raise SandboxError(f"content is not valid text ({exc.reason} at position {exc.start})") from None
        if len(data) > self.quota.max_file_bytes:
            raise SandboxError(f"the content is {len(data)} bytes; the per-file limit is {self.quota.max_file_bytes}")
        with self._creating(parts) as (dir_fd, name):
            return self._write(dir_fd, name, path, data, append)

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
            _write_all(fd, data)
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
                try:
                    mode = os.lstat(name, dir_fd=fd).st_mode
                except FileNotFoundError:
                    continue  # removed meanwhile (by code running in the workspace)
                names.append(name + ("/" if stat.S_ISDIR(mode) else "@" if stat.S_ISLNK(mode) else ""))
        return sorted(names)

    def make_dir(self, path: str) -> None:
        parts = self._parts(path)
        with self._creating(parts) as (dir_fd, name):
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
        with open_parent(self.root, src_parts) as (src_fd, src_name):
            if not _exists(src_name, src_fd):
                raise SandboxError(f"'{src}' does not exist")
            with self._creating(dst_parts) as (dst_fd, dst_name):
                if _exists(dst_name, dst_fd) and stat.S_ISDIR(os.lstat(dst_name, dir_fd=dst_fd).st_mode):
                    inner = os.open(dst_name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                    dir_fd=dst_fd)
                    try:
                        self._rename(src_name, src_fd, src_name, inner, f"{dst}/{src_name}")
                    finally:
                        os.close(inner)
                else:
                    self._rename(src_name, src_fd, dst_name, dst_fd, dst)

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
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    tree.empty(sub)
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=dir_fd)
            else:
                os.unlink(name, dir_fd=dir_fd)
        if stat.S_ISDIR(st.st_mode):
            self.rescan()
        else:
            self._bytes -= st.st_size
            self._entries -= 1

    def snapshot(self) -> dict[str, str]:
        """{relative path: text} of every regular file; links appear as '<link>', other non-files as '<special>',
        empty folders as keys ending in '/'. Read through descriptors, never following a link."""
        try:
            return self._snapshot()
        except tree.TooLarge as exc:
            raise SandboxError(f"the workspace is too large to inspect ({exc})") from None

    def _snapshot(self) -> dict[str, str]:
        out: dict[str, str] = {}
        folders: dict[str, bool] = {}
        for rel, st, dir_fd, name in tree.walk(self.root, max_entries=10 * self.quota.max_entries + 1000):
            parent = rel.rpartition("/")[0]
            if parent:
                folders[parent] = True
            if stat.S_ISDIR(st.st_mode):
                folders.setdefault(rel, False)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = "<link>"
            elif not stat.S_ISREG(st.st_mode):
                out[rel] = "<special>"
            else:
                out[rel] = self._read_entry(dir_fd, name, rel)
        out.update({f"{folder}/": "" for folder, occupied in folders.items() if not occupied})
        return dict(sorted(out.items()))

    def _read_entry(self, dir_fd: int, name: str, rel: str) -> str:
        try:
            fd = _open_regular(name, dir_fd, os.O_RDONLY, rel, allow_links=True)
        except SandboxError:
            return "<special>"
        try:
            with os.fdopen(os.dup(fd), "rb") as fh:
                return fh.read(self.quota.max_file_bytes).decode("utf-8", errors="replace")
        finally:
            os.close(fd)


def _create_exclusive(name: str, dir_fd: int, attempts: int = 5) -> int:
    """A new file `name` under `dir_fd` (O_EXCL|O_NOFOLLOW); whatever a racing process put there is removed."""
    for _ in range(attempts):
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                           dir_fd=dir_fd)
        except FileExistsError:
            try:
                os.unlink(name, dir_fd=dir_fd)
            except IsADirectoryError:
                try:
                    sub = os.open(name, tree.DIR_FLAGS, dir_fd=dir_fd)
                except OSError:
                    continue  # swapped again: the next attempt sees what is there now
                try:
                    tree.empty(sub)
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
    raise SandboxError(f"cannot create '{name}': something keeps recreating it")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return False


def _open_regular(name: str, dir_fd: int, flags: int, shown: str, allow_links: bool = False) -> int:
    """Open `name` under `dir_fd` only if it is a regular, singly-linked file (never following a link).
    `allow_links` accepts hard-linked files (for the read-only snapshot: their content is in the workspace)."""
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
    elif st.st_nlink > 1 and not allow_links:
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
