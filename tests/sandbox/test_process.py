"""run_python: output, exit codes, the workspace as cwd, limits in RunResult, isolation modes.

    .venv/bin/pytest -q tests/sandbox/test_process.py

The weaker modes ('unshare', 'rlimits') are forced with AGENT_LIGHTNING_SANDBOX in a subprocess, since
`isolation()` is probed once per process. Hostile programs are in test_security.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import replace

import pytest

from agent_lightning.sandbox import Limits, Workspace, isolation, run_python, sandbox_owner

FAST = Limits(wall_seconds=2, cpu_seconds=1, memory_bytes=256 << 20, max_processes=16, file_bytes=1 << 20)
HAS_BWRAP = shutil.which("bwrap") is not None


@pytest.fixture
def ws():
    w = Workspace({"data.txt": "3 4", "sub/in.txt": "inside"}, owner=sandbox_owner())
    yield w
    w.close()


def run_script(script: str, mode: str | None = None, timeout: int = 60) -> subprocess.CompletedProcess:
    """Run a Python script in a fresh interpreter (own `isolation()` cache), optionally forcing a mode."""
    env = {**os.environ, "AL_SANDBOX_TEST_SECRET": "AL-ENVSECRET-process-test"}
    if mode:
        env["AGENT_LIGHTNING_SANDBOX"] = mode
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=timeout, env=env)


# ------------------------------------------------------------------------------------------- basics
def test_output_and_success(ws):
    result = run_python("print(sum(map(int, open('data.txt').read().split())))", ws, FAST)
    assert (result.ok, result.returncode, result.stdout, result.stderr, result.limit) == (True, 0, "7\n", "", None)
    assert not result.timed_out and result.seconds < FAST.wall_seconds
    assert result.report() == "7"


def test_stderr_and_exit_codes(ws):
    result = run_python("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)", ws, FAST)
    assert (result.ok, result.returncode, result.stdout, result.stderr) == (False, 3, "out\n", "err\n")
    assert result.limit is None
    assert result.report() == "out\nstderr:\nerr\n[exit code 3]"
    crash = run_python("1 / 0", ws, FAST)
    assert crash.returncode == 1 and "ZeroDivisionError" in crash.stderr and crash.limit is None
    assert run_python("pass", ws, FAST).report() == "(no output)"
    assert run_python("raise SystemExit('bye')", ws, FAST).stderr == "bye\n"


def test_cwd_is_the_workspace_and_files_persist(ws):
    code = ("import os\nprint(os.getcwd())\nos.makedirs('out', exist_ok=True)\n"
            "open('out/r.txt', 'w').write('from code')\nopen('sub/in.txt', 'a').write(' and more')")
    result = run_python(code, ws, FAST)
    assert result.ok, result.report()
    assert result.stdout == ("/workspace\n" if isolation() == "bwrap" else ws.root + "\n")
    assert ws.read_file("out/r.txt") == "from code"
    assert ws.read_file("sub/in.txt") == "inside and more"
    assert ws.snapshot()["out/r.txt"] == "from code"
    assert ws.rescan() == (len("3 4") + len("inside and more") + len("from code"), 5)
    ws.write_file("out/r.txt", "tools can overwrite what code made")


def test_code_can_write_where_the_tools_made_folders(ws):
    ws.write_file("made/by/tool.txt", "x")
    ws.make_dir("empty/dir")
    code = "open('made/by/code.txt', 'w').write('y')\nopen('empty/dir/code.txt', 'w').write('z')"
    result = run_python(code, ws, FAST)
    assert result.ok, result.report()
    assert ws.read_file("made/by/code.txt") == "y"


@pytest.mark.skipif(os.geteuid() != 0, reason="per-workspace ids are used when running as root")
def test_code_runs_as_the_workspace_owner(ws):
    result = run_python("import os\nprint(os.getuid(), os.getgid(), os.getgroups())", ws, FAST)
    assert result.stdout == f"{ws.owner[0]} {ws.owner[1]} []\n"
    assert ws.owner[0] != 0


def test_arguments_and_a_plain_folder():
    folder = tempfile.mkdtemp(prefix="al-plain-")
    try:
        with open(os.path.join(folder, "a.txt"), "w") as fh:
            fh.write("plain")
        if os.geteuid() == 0:
            os.chown(folder, 65534, 65534)  # a plain folder runs as nobody
        result = run_python("import sys\nprint(sys.argv[1:], open('a.txt').read())", folder, FAST, args=["a", "b c"])
        assert result.stdout == "['a', 'b c'] plain\n", result.report()
    finally:
        shutil.rmtree(folder)


def test_code_with_a_nul_byte_returns_a_result(ws):
    result = run_python("print(1)\x00print(2)", ws, FAST)
    assert result.returncode is not None and "2" not in result.stdout


def test_code_with_a_lone_surrogate_returns_a_result(ws):
    result = run_python("print('\udc80')", ws, FAST)
    assert result.returncode is not None


# ------------------------------------------------------------------------------------------- limits
def test_wall_clock_limit(ws):
    result = run_python("import time\ntime.sleep(60)", ws, replace(FAST, wall_seconds=1))
    assert result.timed_out and not result.ok
    assert result.limit == "wall-clock limit of 1 s"
    assert result.report() == "[killed: wall-clock limit of 1 s]"
    assert result.seconds < 3


def test_cpu_limit(ws):
    result = run_python("while True:\n    pass", ws, replace(FAST, wall_seconds=8, cpu_seconds=1))
    assert not result.timed_out and result.limit.startswith("CPU limit of 1 s"), result
    assert result.seconds < 6


def test_memory_limit(ws):
    result = run_python("x = bytearray(1 << 30)", ws, replace(FAST, memory_bytes=128 << 20))
    assert result.returncode == 1 and "MemoryError" in result.stderr


def test_open_files_limit(ws):
    result = run_python("fs = [open('data.txt') for _ in range(100)]", ws, replace(FAST, open_files=16))
    assert result.returncode == 1 and "Too many open files" in result.stderr


def test_process_limit(ws):
    code = ("import threading, time\nfor _ in range(100):\n"
            "    threading.Thread(target=time.sleep, args=(3,), daemon=True).start()")
    result = run_python(code, ws, replace(FAST, max_processes=8))
    assert result.returncode == 1 and "can't start new thread" in result.stderr


def test_output_is_truncated(ws):
    result = run_python("print('x' * 10_000)", ws, replace(FAST, max_output_chars=100))
    assert result.ok
    assert result.stdout == "x" * 100 + "\n[... output truncated at 100 characters]"


def test_file_size_limit_stops_the_write(ws):
    result = run_python("open('big', 'wb').write(b'x' * (3 << 20))", ws, replace(FAST, file_bytes=1 << 20))
    assert result.returncode == 1 and "File too large" in result.stderr
    assert os.path.getsize(os.path.join(ws.root, "big")) <= 1 << 20


def test_file_size_limit_is_reported(ws):
    result = run_python("open('big', 'wb').write(b'x' * (3 << 20))", ws, replace(FAST, file_bytes=1 << 20))
    assert result.limit and "file size" in result.limit


def test_segfault_is_reported(ws):
    result = run_python("import ctypes\nctypes.string_at(0)", ws, FAST)
    assert result.limit == "segmentation fault"


@pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed")
def test_many_runs_in_one_workspace_under_a_subreaper():
    proc = run_script("""
        import ctypes, json
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come to us, as to a container's PID 1
        from agent_lightning.sandbox import Limits, Workspace, run_python, sandbox_owner
        with Workspace({}, owner=sandbox_owner()) as ws:
            print(json.dumps([run_python("print(1)", ws, Limits(max_processes=6)).stderr.strip() for _ in range(10)]))
        """)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    assert json.loads(proc.stdout) == [""] * 10


# ------------------------------------------------------------------------------------------- isolation modes
@pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed")
def test_isolation_is_bwrap_where_installed():
    assert isolation() == "bwrap"


WEAK_SCRIPT = """
    import json, dataclasses
    from agent_lightning.sandbox import Limits, Workspace, isolation, run_python, sandbox_owner
    limits = Limits(wall_seconds=1, cpu_seconds=1, memory_bytes=256 << 20, file_bytes=1 << 20)
    def run(code, **changes):
        r = run_python(code, ws, dataclasses.replace(limits, **changes))
        return {"returncode": r.returncode, "timed_out": r.timed_out, "limit": r.limit, "stdout": r.stdout,
                "stderr": r.stderr[-300:], "seconds": r.seconds}
    with Workspace({"a.txt": "x"}, owner=sandbox_owner()) as ws:
        out = {"mode": isolation()}
        out["sleep"] = run("import time; time.sleep(60)")
        out["cpu"] = run("while True: pass", wall_seconds=10)
        out["file"] = run("open('big', 'wb').write(b'x' * (3 << 20))")
        out["memory"] = run("x = bytearray(1 << 30)")
        out["env"] = run("import os; print(sorted(os.environ))")
        out["mode_again"] = isolation()
    print(json.dumps(out))
"""


@pytest.mark.parametrize("mode", ["unshare", "rlimits"])
def test_weaker_modes_still_enforce_limits_and_warn_once(mode):
    if mode == "unshare" and shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    proc = run_script(WEAK_SCRIPT, mode)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["mode"] == out["mode_again"] == mode
    assert proc.stderr.count("SANDBOX WEAKENED") == 1, proc.stderr
    assert ("no network" in proc.stderr) == (mode == "unshare") and "apt-get install bubblewrap" in proc.stderr
    assert out["sleep"]["timed_out"] and out["sleep"]["limit"] == "wall-clock limit of 1 s"
    assert out["sleep"]["seconds"] < 3
    assert not out["cpu"]["timed_out"] and out["cpu"]["limit"].startswith("CPU limit of 1 s"), out["cpu"]
    assert "File too large" in out["file"]["stderr"]
    assert "MemoryError" in out["memory"]["stderr"]
    assert "AL_SANDBOX_TEST_SECRET" not in out["env"]["stdout"] and out["env"]["returncode"] == 0


DAEMON_SCRIPT = """
    import json, os, signal, time
    from agent_lightning.sandbox import Limits, Workspace, run_python, sandbox_owner
    code = '''
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            open("pid", "w").write(str(os.getpid()))
            for _ in range(100):
                with open("grow.txt", "a") as fh:
                    fh.write("x")
                time.sleep(0.05)
            os._exit(0)
        os._exit(0)
    time.sleep(0.3)
    '''
    with Workspace({}, owner=sandbox_owner()) as ws:
        result = run_python(code, ws, Limits(wall_seconds=2))
        if not os.path.exists(os.path.join(ws.root, "grow.txt")):
            raise SystemExit(result.report())
        first = os.path.getsize(os.path.join(ws.root, "grow.txt"))
        time.sleep(0.5)
        grew = os.path.getsize(os.path.join(ws.root, "grow.txt")) > first
        if grew:  # clean up the escaped daemon (its pid is a host pid in these modes)
            os.kill(int(open(os.path.join(ws.root, "pid")).read()), signal.SIGKILL)
    print(json.dumps({"ok": result.ok, "grew": grew}))
"""


@pytest.mark.parametrize("mode", ["bwrap", "unshare", "rlimits"])
def test_a_daemon_does_not_outlive_the_run(mode, request):
    if mode == "bwrap" and not HAS_BWRAP:
        pytest.skip("bubblewrap is not installed")
    proc = run_script(DAEMON_SCRIPT, mode)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    out = json.loads(proc.stdout)
    if not out["ok"]:
        raise RuntimeError(f"the program failed: {out}")
    assert not out["grew"], "the daemon kept writing after the run returned"
