"""Workspace behaviour: template, reset, file operations, quotas, snapshot, close.

    .venv/bin/pytest -q tests/sandbox/test_workspace.py

Hostile paths and links planted by code are in test_security.py; speed claims belong in benchmarks/.
"""

from __future__ import annotations

import os

import pytest

from agent_lightning.sandbox import Quota, SandboxError, Workspace, sandbox_owner

TEMPLATE = {"a.txt": "alpha", "notes/todo.txt": "buy milk", "notes/deep/x.bin": b"\x00\x01", "empty.txt": ""}


@pytest.fixture
def ws():
    w = Workspace(TEMPLATE)
    yield w
    w.close()


def tree(root: str) -> dict[str, str | None]:
    """{relative path: file bytes as text or None for a folder}, read straight from disk."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in dirnames:
            out[os.path.normpath(os.path.join(rel, name))] = None
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as fh:
                out[os.path.normpath(os.path.join(rel, name))] = fh.read().decode("latin-1")
    return out


# ------------------------------------------------------------------------------------------- template, reset
def test_created_from_template(ws):
    assert ws.read_file("a.txt") == "alpha"
    assert ws.read_file("notes/todo.txt") == "buy milk"
    assert ws.read_file("notes/deep/x.bin") == "\x00\x01"
    assert ws.read_file("empty.txt") == ""
    assert ws.list_dir(".") == ["a.txt", "empty.txt", "notes/"]
    assert ws.rescan() == (5 + 8 + 2, 6)
    assert os.path.isdir(ws.root)


def test_twenty_file_template_builds_completely():
    files = {f"pkg/mod{i // 5}/file{i}.py": f"value = {i}\n" for i in range(20)}
    with Workspace(files) as w:
        assert w.snapshot() == files
        assert w.rescan() == (sum(len(v) for v in files.values()), 20 + 5)


def test_workspaces_are_separate_folders():
    with Workspace({"a.txt": "1"}) as one, Workspace({"a.txt": "2"}) as two:
        one.write_file("a.txt", "changed")
        assert two.read_file("a.txt") == "2"
        assert one.root != two.root


def test_reset_restores_exactly(ws):
    before = tree(ws.root)
    ws.write_file("a.txt", "overwritten")
    ws.write_file("new/dir/file.txt", "x")
    ws.delete("notes/deep")
    ws.make_dir("made")
    ws.move("empty.txt", "made/")
    os.symlink("/etc", os.path.join(ws.root, "link"))  # as code in the sandbox could
    os.mkfifo(os.path.join(ws.root, "pipe"))
    os.chmod(os.path.join(ws.root, "notes"), 0o000)
    ws.reset()
    assert tree(ws.root) == before
    assert ws.rescan() == (15, 6)
    ws.write_file("after.txt", "ok")
    assert ws.read_file("after.txt") == "ok"


def test_reset_with_new_files_replaces_the_template(ws):
    ws.reset({"only.txt": "one"})
    assert ws.snapshot() == {"only.txt": "one"}
    ws.write_file("extra.txt", "x")
    ws.reset()
    assert ws.snapshot() == {"only.txt": "one"}


def test_bad_template_path_is_refused():
    with pytest.raises(SandboxError, match=r"contains '\.\.'"):
        Workspace({"../outside.txt": "x"})


# ------------------------------------------------------------------------------------------- operations
def test_write_read_overwrite(ws):
    assert ws.write_file("b.txt", "hello") == 5
    assert ws.write_file("b.txt", "hi") == 2
    assert ws.read_file("b.txt") == "hi"
    assert ws.write_file("b.txt", "!", append=True) == 3
    assert ws.read_file("b.txt") == "hi!"
    assert ws.write_file("x/y/z.txt", "deep") == 4
    assert ws.list_dir("x") == ["y/"]
    assert ws.write_file("./c.txt", "dot parts are dropped") and ws.read_file("c.txt")
    assert ws.write_file("uni.txt", "héllo ✓") == len("héllo ✓".encode())
    assert ws.read_file("uni.txt") == "héllo ✓"


def test_read_replaces_invalid_utf8():
    with Workspace({"bad.bin": b"ok\xff\xfe"}) as w:
        assert w.read_file("bad.bin") == "ok\ufffd\ufffd"


def test_read_errors(ws):
    with pytest.raises(SandboxError, match="'missing.txt' does not exist"):
        ws.read_file("missing.txt")
    with pytest.raises(SandboxError, match="folder 'nope' does not exist"):
        ws.read_file("nope/a.txt")
    with pytest.raises(SandboxError, match="is a folder, not a file"):
        ws.read_file("notes")
    with pytest.raises(SandboxError, match="'a.txt' is not a directory"):
        ws.read_file("a.txt/inner")


def test_list_dir(ws):
    assert ws.list_dir() == ws.list_dir(".") == ws.list_dir("./") == ["a.txt", "empty.txt", "notes/"]
    assert ws.list_dir("notes") == ["deep/", "todo.txt"]
    os.symlink("a.txt", os.path.join(ws.root, "alias"))
    assert "alias@" in ws.list_dir(".")
    with pytest.raises(SandboxError, match="does not exist"):
        ws.list_dir("missing")
    with pytest.raises(SandboxError, match="not a directory"):
        ws.list_dir("a.txt")


def test_make_dir(ws):
    ws.make_dir("p/q/r")
    assert ws.list_dir("p/q") == ["r/"]
    ws.make_dir("p/q/r")  # existing folder: fine
    with pytest.raises(SandboxError, match="already exists and is not a folder"):
        ws.make_dir("a.txt")
    assert ws.rescan()[1] == 6 + 3


def test_move_semantics(ws):
    ws.move("a.txt", "b.txt")
    assert ws.read_file("b.txt") == "alpha" and "a.txt" not in ws.list_dir(".")
    ws.move("b.txt", "notes")  # into an existing folder
    assert ws.read_file("notes/b.txt") == "alpha"
    ws.move("notes", "archive/2024/notes")  # folders move with their contents; missing parents are made
    assert ws.read_file("archive/2024/notes/deep/x.bin") == "\x00\x01"
    ws.write_file("c.txt", "c")
    with pytest.raises(SandboxError, match="already exists"):
        ws.move("c.txt", "archive/2024/notes/b.txt")  # never overwrites
    assert ws.read_file("archive/2024/notes/b.txt") == "alpha"
    with pytest.raises(SandboxError, match="into itself"):
        ws.move("archive", "archive/inner")
    with pytest.raises(SandboxError, match="does not exist"):
        ws.move("missing", "x")


def test_delete_semantics(ws):
    ws.delete("a.txt")
    assert "a.txt" not in ws.list_dir(".")
    ws.delete("notes")
    assert ws.list_dir(".") == ["empty.txt"]
    with pytest.raises(SandboxError, match="does not exist"):
        ws.delete("notes")
    with pytest.raises(SandboxError, match="names the workspace itself"):
        ws.delete(".")
    assert ws.rescan() == (0, 1)


def test_delete_removes_a_link_not_its_target(ws, tmp_path):
    target = tmp_path / "keep"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    os.symlink(target, os.path.join(ws.root, "to-folder"))
    os.makedirs(os.path.join(ws.root, "box"))
    os.symlink(target / "precious.txt", os.path.join(ws.root, "box", "to-file"))
    ws.delete("to-folder")
    ws.delete("box")
    assert (target / "precious.txt").read_text() == "keep me"
    assert ws.list_dir(".") == ["a.txt", "empty.txt", "notes/"]


def test_counters_follow_operations(ws):
    """After any sequence of tool operations the incremental counters agree with a rescan of the disk."""
    ws.write_file("a/b/c.txt", "123")
    ws.make_dir("m/n")
    ws.move("a", "m/n/")
    ws.delete("notes/todo.txt")
    ws.write_file("empty.txt", "now 7", append=True)
    counted = (ws._bytes, ws._entries)
    assert counted == ws.rescan()


# ------------------------------------------------------------------------------------------- quotas
def test_per_file_limit_and_append():
    with Workspace({}, quota=Quota(max_file_bytes=10)) as w:
        assert w.write_file("f.txt", "x" * 10) == 10
        with pytest.raises(SandboxError, match="per-file limit is 10"):
            w.write_file("g.txt", "x" * 11)
        assert "g.txt" not in w.list_dir(".")  # a refused new file leaves nothing behind
        with pytest.raises(SandboxError, match="would be 11 bytes; the per-file limit is 10"):
            w.write_file("f.txt", "y", append=True)
        assert w.read_file("f.txt") == "x" * 10  # unchanged


def test_total_bytes_limit_counts_overwrites():
    with Workspace({}, quota=Quota(max_bytes=20, max_file_bytes=20)) as w:
        w.write_file("a", "x" * 15)
        with pytest.raises(SandboxError, match="exceed the workspace quota of 20 bytes"):
            w.write_file("b", "x" * 6)
        assert w.write_file("a", "y" * 20) == 20  # replacing a file counts its old size back
        w.delete("a")
        assert w.write_file("b", "z" * 20) == 20


def test_entries_limit():
    with Workspace({}, quota=Quota(max_entries=3)) as w:
        w.write_file("1", "")
        w.make_dir("d")
        w.write_file("d/2", "")
        with pytest.raises(SandboxError, match=r"already holds 3 files and folders \(limit 3\)"):
            w.write_file("3", "")
        with pytest.raises(SandboxError, match="already holds"):
            w.make_dir("e")
        w.delete("1")
        w.write_file("3", "")
        assert w.rescan() == (0, 3)


def test_refused_write_removes_the_folders_it_made():
    with Workspace({}, quota=Quota(max_entries=4)) as w:
        with pytest.raises(SandboxError, match="already holds"):
            w.write_file("a/b/c/d/e.txt", "x")
        assert w.list_dir(".") == [] and w.rescan() == (0, 0)


def test_refused_make_dir_stays_within_the_entry_limit():
    with Workspace({}, quota=Quota(max_entries=2)) as w:
        with pytest.raises(SandboxError, match="already holds"):
            w.make_dir("a/b/c/d")
        assert w.rescan()[1] <= 2


def test_move_respects_the_entry_limit():
    with Workspace({"x": "1"}, quota=Quota(max_entries=4)) as w:
        with pytest.raises(SandboxError, match="already holds"):
            w.move("x", "a/b/c/d/x")
        assert w.rescan()[1] <= 4


def test_path_limits_come_from_the_quota():
    with Workspace({}, quota=Quota(max_path_chars=10, max_depth=2)) as w:
        with pytest.raises(SandboxError, match="11 characters long; the limit is 10"):
            w.write_file("a" * 11, "")
        with pytest.raises(SandboxError, match="3 levels deep; the limit is 2"):
            w.write_file("a/b/c", "")
        w.write_file("a/b", "fine")


def test_rescan_sees_changes_made_outside_the_tools(ws):
    with open(os.path.join(ws.root, "by-code.txt"), "w") as fh:
        fh.write("x" * 100)
    os.mkdir(os.path.join(ws.root, "dir-by-code"))
    assert ws.rescan() == (15 + 100, 8)


# ------------------------------------------------------------------------------------------- snapshot, close, owner
def test_snapshot(ws):
    os.makedirs(os.path.join(ws.root, "hollow"))
    os.symlink("a.txt", os.path.join(ws.root, "alias"))
    os.symlink("notes", os.path.join(ws.root, "dir-alias"))
    os.mkfifo(os.path.join(ws.root, "pipe"))
    assert ws.snapshot() == {
        "a.txt": "alpha", "empty.txt": "", "notes/todo.txt": "buy milk", "notes/deep/x.bin": "\x00\x01",
        "hollow/": "", "alias": "<link>", "dir-alias": "<link>", "pipe": "<special>",
    }


def test_snapshot_caps_what_it_reads():
    with Workspace({}, quota=Quota(max_file_bytes=4)) as w:
        with open(os.path.join(w.root, "big"), "w") as fh:
            fh.write("0123456789")
        assert w.snapshot() == {"big": "0123"}


def test_close_removes_the_folder():
    w = Workspace({"a/b.txt": "x"})
    root = w.root
    w.close()
    assert not os.path.exists(root)
    w.close()  # twice is fine
    with Workspace({}) as inner:
        root = inner.root
    assert not os.path.exists(root)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_everything_created_belongs_to_the_owner():
    owner = sandbox_owner()
    assert owner and owner[0] not in (0, 65534)
    with Workspace({"t/a.txt": "x"}, owner=owner) as w:
        w.write_file("made/by/tool.txt", "y")
        w.make_dir("folder/sub")
        w.move("t/a.txt", "moved/here/a.txt")
        for dirpath, dirnames, filenames in os.walk(w.root):
            for name in [".", *dirnames, *filenames]:
                st = os.lstat(os.path.join(dirpath, name))
                assert (st.st_uid, st.st_gid) == owner, os.path.join(dirpath, name)
    assert sandbox_owner() != owner  # each workspace gets its own id
