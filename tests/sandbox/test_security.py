"""The sandbox as a security boundary: a corpus of hostile inputs, kept as data, must produce 0 escapes.

    .venv/bin/pytest -q tests/sandbox/test_security.py

Corpus (tests/assets/hostile/):
  - tool_calls.jsonl: file-tool calls against a `FileToolsEnvironment` subclass. Each line is a case of steps:
    {"call": TOOL, "args": {...}, "error": REGEX} (a one-line ToolError matching REGEX), {"call": ..., "ok": REGEX}
    (a result matching REGEX), an optional "repeat": N (string arguments get {i} and {next}; an "error" must come
    before N calls), and {"run": CODE} (code run in the workspace first, e.g. to plant a symlink; it must succeed).
  - programs/*.py: code for `run_python`, with header comments: `# expect: {json}` (ok, returncode or "nonzero",
    timed_out, limit (REGEX or null), stdout/stderr/report REGEX, stdout_not REGEX), `# limits: {json}`,
    `# after: {json}` (host_absent, stops_growing, over_quota, max_file_size, usable), `# xfail: reason`.
  Strings may name {{canary_file}}, {{canary_dir}}, {{marker}}, {{host_port}} and {{abstract_socket}}.

Every case also asserts: the canary secret (a world-readable file in a host temp folder) and a secret planted in
this process's environment never appear in any output, error or workspace file; the canary folder is unchanged;
no sandbox process outlives its run. After the corpus the sandbox still works, nothing named after the marker
exists outside the workspaces, and the host listeners never saw a connection.

Races: a process of the workspace's uid (playing code that is still running) keeps planting or swapping links
while the host resets, snapshots or uses the file tools on the workspace.

Not covered: the weaker isolation modes (tests/sandbox/test_process.py) and kernel-level attacks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from agent_lightning.envs import ToolError
from agent_lightning.sandbox import Limits, Quota, SandboxError, Workspace, isolation, run_python, sandbox_owner
from agent_lightning.sandbox import workspace as workspace_module
from agent_lightning.envs.file_tools import FileToolsEnvironment

HOSTILE = Path(__file__).resolve().parents[1] / "assets" / "hostile"
SECRET = f"AL-CANARY-{uuid.uuid4().hex}"
ENV_SECRET = f"AL-ENVSECRET-{uuid.uuid4().hex}"
MARKER = f"al-hostile-{uuid.uuid4().hex[:12]}"
TEMPLATE = {"a.txt": "hello", "notes/todo.txt": "buy milk", "d/inner.txt": "inner"}
PROGRAM_LIMITS = Limits(wall_seconds=2, cpu_seconds=1, memory_bytes=512 << 20, max_processes=16,
                        file_bytes=1 << 20, open_files=64, max_output_chars=4000)
PROGRAM_QUOTA = Quota(max_bytes=2 << 20, max_entries=64, max_file_bytes=256 << 10)

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


class HostileEnv(FileToolsEnvironment):
    """The six file tools with small quotas, plus an append tool (environments may add tools)."""

    quota = Quota(max_bytes=64 << 10, max_entries=32, max_file_bytes=16 << 10)

    def append_file(self, path: str, content: str) -> str:
        """Append text to a file.

        Args:
            path: File path relative to the workspace.
            content: Text to add at the end.
        """
        return f"{path} is now {self.ws.write_file(path, content, append=True)} bytes"


# --------------------------------------------------------------------------------------------- the host side
@dataclass
class Host:
    canary_dir: str
    canary_file: str
    port: int
    abstract: str
    listeners: list[socket.socket] = field(default_factory=list)

    def substitute(self, value):
        if isinstance(value, str):
            for key, sub in (("canary_file", self.canary_file), ("canary_dir", self.canary_dir), ("marker", MARKER),
                             ("host_port", str(self.port)), ("abstract_socket", self.abstract)):
                value = value.replace("{{" + key + "}}", sub)
            return value
        if isinstance(value, dict):
            if set(value) == {"repeat", "times"}:
                return value["repeat"] * value["times"]
            return {k: self.substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        return value

    def assert_untouched(self, *texts: str) -> None:
        for text in texts:
            assert SECRET not in text and ENV_SECRET not in text, "a secret leaked into the output"
        assert sorted(os.listdir(self.canary_dir)) == ["secret.txt"], "something was created in the host canary folder"
        assert Path(self.canary_file).read_text() == SECRET, "the host canary file changed"
        assert not [p for p in os.listdir("/tmp") if p.startswith(MARKER)], "a file was created in the host's /tmp"


@pytest.fixture(scope="module")
def host():
    canary_dir = tempfile.mkdtemp(prefix="al-canary-")
    os.chmod(canary_dir, 0o755)  # world-readable on purpose: only the sandbox keeps it out of reach
    canary_file = os.path.join(canary_dir, "secret.txt")
    Path(canary_file).write_text(SECRET)
    os.chmod(canary_file, 0o644)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    abstract = f"al-hostile-{uuid.uuid4().hex[:12]}"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind("\0" + abstract)
    unix.listen(8)
    unix.setblocking(False)
    os.environ["AL_SANDBOX_TEST_SECRET"] = ENV_SECRET
    try:
        yield Host(canary_dir, canary_file, tcp.getsockname()[1], abstract, [tcp, unix])
    finally:
        os.environ.pop("AL_SANDBOX_TEST_SECRET", None)
        for s in (tcp, unix):
            s.close()
        shutil.rmtree(canary_dir, ignore_errors=True)


def sandbox_processes() -> list[int]:
    """Live processes of another user (the sandbox's) that belong to this test process's workspaces (their mounts
    or cwd name our workspace folder), so that sandboxes of other processes on the machine do not count."""
    base = os.path.basename(workspace_module._base_dir())  # mountinfo shows paths relative to their filesystem
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == os.geteuid():
                continue
            mounts = Path(f"/proc/{entry}/mountinfo").read_text()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue  # gone, or a zombie
        if base in mounts or base in cwd:
            found.append(int(entry))
    return found


def wait_no_sandbox_processes(seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while (left := sandbox_processes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"sandbox processes outlived their run: {left}"


class Alarm:
    """Fail instead of hanging (e.g. on a FIFO) when a case takes longer than `seconds`."""

    def __init__(self, seconds: int):
        self.seconds = seconds

    def __enter__(self):
        def on_alarm(signum, frame):
            raise TimeoutError(f"case did not finish within {self.seconds} s")

        self.previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)


# --------------------------------------------------------------------------------------------- the corpus
def _load_tool_cases() -> list:
    cases = []
    for line in (HOSTILE / "tool_calls.jsonl").read_text().splitlines():
        if line.strip():
            case = json.loads(line)
            marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if "xfail" in case else []
            if any("run" in step for step in case["steps"]):
                marks.append(needs_bwrap)
            cases.append(pytest.param(case, id=f"{case['category']}:{case['id']}", marks=marks))
    return cases


@dataclass
class Program:
    name: str
    category: str
    code: str
    expect: dict
    limits: dict
    after: dict
    xfail: str | None


def _load_programs() -> list:
    params = []
    for path in sorted((HOSTILE / "programs").glob("*.py")):
        code = path.read_text()
        header = dict(re.findall(r"^# (category|expect|limits|after|xfail): (.*)$", code, re.M))
        expect, limits, after = (json.loads(header.get(k, "{}")) for k in ("expect", "limits", "after"))
        prog = Program(path.stem, header["category"], code, expect, limits, after, header.get("xfail"))
        marks = [needs_bwrap, *([pytest.mark.xfail(strict=True, reason=prog.xfail)] if prog.xfail else [])]
        params.append(pytest.param(prog, id=f"{prog.category}:{prog.name}", marks=marks))
    return params


TOOL_CASES = _load_tool_cases()
PROGRAMS = _load_programs()


def test_corpus_size_and_coverage():
    tool_categories = {p.values[0]["category"] for p in TOOL_CASES}
    program_categories = {p.values[0].category for p in PROGRAMS}
    assert len(TOOL_CASES) + len(PROGRAMS) >= 70
    assert {"traversal", "absolute", "home", "control", "long", "arguments", "workspace-root", "symlink",
            "hardlink", "special", "quota"} <= tool_categories
    assert {"network", "host-read", "host-write", "env-leak", "process", "limits", "privilege", "hardlink",
            "exit", "signal"} <= program_categories


@needs_bwrap
def test_isolation_is_bwrap():
    assert isolation() == "bwrap"


# --------------------------------------------------------------------------------------------- tool calls
@pytest.fixture
def env():
    """A fresh environment per case (its own workspace and sandbox uid), as TRL would pool them."""
    e = HostileEnv()
    yield e
    if e.workspace is not None:
        e.workspace.close()


def _run_setup(env: HostileEnv, code: str, host: Host) -> None:
    result = run_python(code, env.ws, PROGRAM_LIMITS)
    host.assert_untouched(result.stdout, result.stderr)
    assert result.ok, f"setup code failed: {result.report()}"


def _call(env: HostileEnv, name: str, args: dict):
    try:
        return True, getattr(env, name)(**args)
    except ToolError as exc:
        return False, str(exc)


@pytest.mark.parametrize("case", TOOL_CASES)
def test_hostile_tool_call(case, env, host):
    env.reset(files=json.dumps(TEMPLATE))
    seen: list[str] = []
    with Alarm(20):
        for step in case["steps"]:
            if "run" in step:
                _run_setup(env, host.substitute(step["run"]), host)
                continue
            args = host.substitute(step["args"])
            for i in range(step.get("repeat", 1)):
                call_args = {k: v.replace("{i}", str(i)).replace("{next}", str(i + 1)) if isinstance(v, str) else v
                             for k, v in args.items()}
                ok, out = _call(env, step["call"], call_args)
                seen.append(str(out))
                if "error" in step:
                    if not ok:
                        break
                    continue
                assert ok, f"{step['call']}({call_args}) failed: {out}"
                if isinstance(step.get("ok"), str):
                    assert re.search(step["ok"], out), out
            if "error" in step:
                assert not ok, f"{step['call']}({call_args}) was accepted: {out!r}"
                assert re.search(step["error"], out, re.I), f"unclear error: {out!r}"
                assert "\n" not in out and not out.startswith("internal error"), f"not a clean refusal: {out!r}"
    snapshot = env.ws.snapshot()
    host.assert_untouched(*seen, json.dumps(snapshot))


# --------------------------------------------------------------------------------------------- programs
def _check_expect(prog: Program, result, limits: Limits) -> None:
    exp = prog.expect
    shown = f"{prog.name}: {result}"
    if "ok" in exp:
        assert result.ok is exp["ok"], shown
    if "returncode" in exp:
        if exp["returncode"] == "nonzero":
            assert result.returncode not in (0, None), shown
        else:
            assert result.returncode == exp["returncode"], shown
    if "timed_out" in exp:
        assert result.timed_out is exp["timed_out"], shown
    if "limit" in exp:
        if exp["limit"] is None:
            assert result.limit is None, shown
        else:
            assert result.limit and re.search(exp["limit"], result.limit), shown
    for key in ("stdout", "stderr"):
        if key in exp:
            assert re.search(exp[key], getattr(result, key), re.M), shown
    if "report" in exp:
        assert re.search(exp["report"], result.report(), re.M), shown
    if "stdout_not" in exp:
        assert not re.search(exp["stdout_not"], result.stdout + result.stderr), shown
    assert result.seconds < limits.wall_seconds + 3, shown


def _check_after(prog: Program, ws: Workspace, limits: Limits, host: Host) -> None:
    after = host.substitute(prog.after)
    for path in after.get("host_absent", []):
        assert not os.path.lexists(path), f"{path} was created on the host"
    if "stops_growing" in after:
        target = os.path.join(ws.root, after["stops_growing"])
        first = os.path.getsize(target)
        time.sleep(0.5)
        assert first > 0 and os.path.getsize(target) == first, "a process kept writing after the run ended"
    if "max_file_size" in after:
        assert os.path.getsize(os.path.join(ws.root, after["max_file_size"])) <= limits.file_bytes
    if after.get("over_quota"):
        total, entries = ws.rescan()
        assert total > ws.quota.max_bytes or entries > ws.quota.max_entries, (total, entries)
        with pytest.raises(SandboxError, match="quota|already holds"):
            ws.write_file("one-more.txt", "x" * 100)
    if after.get("usable"):
        ws.reset()
        assert ws.snapshot() == {"template.txt": "hello"}
        assert ws.rescan() == (5, 1)


def _remove(ws: Workspace) -> None:
    try:
        ws.close()
    except RecursionError:
        pass
    if os.path.exists(ws.root):  # a tree too deep for shutil.rmtree (see limit_deep_nesting)
        subprocess.run(["rm", "-rf", "--one-file-system", ws.root], check=False)


@pytest.mark.parametrize("prog", PROGRAMS)
def test_hostile_program(prog, host):
    limits = replace(PROGRAM_LIMITS, **prog.limits)
    ws = Workspace({"template.txt": "hello"}, quota=PROGRAM_QUOTA, owner=sandbox_owner())
    try:
        result = run_python(host.substitute(prog.code), ws, limits)
        host.assert_untouched(result.stdout, result.stderr, result.report())
        _check_expect(prog, result, limits)
        wait_no_sandbox_processes()
        _check_after(prog, ws, limits, host)
        try:
            files = json.dumps(ws.snapshot())
        except OSError:
            files = ""
        host.assert_untouched(files)
    finally:
        wait_no_sandbox_processes()
        _remove(ws)


@needs_bwrap
def test_a_run_right_after_a_fork_bomb_works(host):
    """The next run in the same workspace must not pay for the last one's fork bomb."""
    ws = Workspace({}, owner=sandbox_owner())
    try:
        bomb = run_python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                          ws, replace(PROGRAM_LIMITS, wall_seconds=1))
        if not bomb.timed_out:
            raise RuntimeError(f"the fork bomb did not run to the wall-clock limit: {bomb}")
        after = run_python("print(1 + 1)", ws, PROGRAM_LIMITS)
        wait_no_sandbox_processes()
        assert after.ok and after.stdout == "2\n", after.report()
    finally:
        wait_no_sandbox_processes()
        ws.close()



# --------------------------------------------------------------------------------------------- afterwards
def test_sandbox_still_works_after_the_corpus(env, host):
    env.reset(files=json.dumps(TEMPLATE))
    assert env.write_file(path="after/check.txt", content="still fine") == "wrote 10 bytes to after/check.txt"
    assert env.read_file(path="after/check.txt") == "still fine"
    result = run_python("print(1+1)", env.ws, PROGRAM_LIMITS)
    assert result.ok and result.stdout == "2\n", result.report()
    wait_no_sandbox_processes()
    host.assert_untouched()
    for folder in ("/", "/tmp", "/var/tmp", "/dev/shm", "/usr", "/root", host.canary_dir):
        if os.path.isdir(folder):
            assert not [p for p in os.listdir(folder) if MARKER in p], f"a hostile file reached {folder}"
    for listener in host.listeners:
        with pytest.raises(BlockingIOError):
            listener.accept()


# --------------------------------------------------------------------------------------------- races
# Code of the sandbox user can still be running while the host works on the workspace: an escaped daemon in the
# weaker modes (test_process.py::test_a_daemon_does_not_outlive_the_run) or, under bwrap, the few milliseconds
# after a timed-out run returns (test_a_run_right_after_a_fork_bomb_works). These tests play that code with a
# process of the workspace's uid that keeps planting links, and check that host-side operations never follow them.
RACER = """
import os, sys, time
target, mode = sys.argv[1], sys.argv[2]
end = time.time() + 3
while time.time() < end:
    try:
        if mode == "plant":
            os.symlink(target, "a.txt")
        else:
            os.symlink(target, "L")
            os.rename("L", "f")
            open("R", "w").write("harmless")
            os.rename("R", "f")
    except OSError:
        pass
"""


def _racer(ws: Workspace, target: str, mode: str) -> subprocess.Popen:
    from agent_lightning.sandbox.process import interpreter

    owner = ws.owner or (os.getuid(), os.getgid())
    return subprocess.Popen([interpreter(), "-c", RACER, target, mode], cwd=ws.root, user=owner[0], group=owner[1],
                            extra_groups=[], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def private_target():
    folder = tempfile.mkdtemp(prefix="al-race-")  # 0700 root: the sandbox user cannot reach it itself
    target = os.path.join(folder, "root-only.txt")
    Path(target).write_text("ORIGINAL")
    os.chmod(target, 0o600)
    yield target
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a separate sandbox uid (root)")
def test_reset_never_follows_links_planted_during_it(private_target):
    with Workspace({"a.txt": "TEMPLATE"}, owner=sandbox_owner()) as ws:
        racer = _racer(ws, private_target, "plant")
        try:
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                try:
                    ws.reset()
                except SandboxError:
                    continue  # refusing to build the workspace under attack is fine; writing through a link is not
                st = os.stat(private_target)
                if st.st_uid != 0 or Path(private_target).read_text() != "ORIGINAL":
                    break
        finally:
            racer.kill()
            racer.wait()
        st = os.stat(private_target)
        assert (st.st_uid, Path(private_target).read_text()) == (0, "ORIGINAL"), "reset wrote through a planted link"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a separate sandbox uid (root)")
def test_snapshot_never_follows_links_swapped_during_it(private_target):
    with Workspace({"f": "harmless"}, owner=sandbox_owner()) as ws:
        racer = _racer(ws, private_target, "swap")
        leaked = False
        try:
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline and not leaked:
                try:
                    leaked = "ORIGINAL" in ws.snapshot().get("f", "")
                except OSError:
                    pass
        finally:
            racer.kill()
            racer.wait()
        assert not leaked, "snapshot read a host file through a swapped link"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a separate sandbox uid (root)")
def test_file_tools_never_follow_links_swapped_during_them(private_target):
    with Workspace({"f": "harmless"}, owner=sandbox_owner()) as ws:
        racer = _racer(ws, private_target, "swap")
        outcomes = set()
        try:
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                for op in (lambda: ws.read_file("f"), lambda: ws.write_file("f", "mine")):
                    try:
                        result = op()
                        assert "ORIGINAL" not in str(result)
                        outcomes.add("ok")
                    except SandboxError as exc:
                        assert re.search("symbolic link|does not exist|hard link|already", str(exc)), exc
                        outcomes.add("refused")
        finally:
            racer.kill()
            racer.wait()
    assert Path(private_target).read_text() == "ORIGINAL" and os.stat(private_target).st_uid == 0
    assert outcomes == {"ok", "refused"}  # the race really happened


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a separate sandbox uid (root)")
def test_list_dir_tolerates_entries_vanishing_during_it(private_target):
    with Workspace({"f": "harmless"}, owner=sandbox_owner()) as ws:
        racer = _racer(ws, private_target, "swap")
        try:
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                names = ws.list_dir(".")
                assert "f" in names or "f@" in names
        finally:
            racer.kill()
            racer.wait()
