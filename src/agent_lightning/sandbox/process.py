"""Run untrusted Python in a separate, jailed process with a workspace as its only writable folder.

    from agent_lightning.sandbox import Workspace, run_python, sandbox_owner
    ws = Workspace({"data.txt": "3 4"}, owner=sandbox_owner())
    result = run_python("print(sum(map(int, open('data.txt').read().split())))", ws)
    result.ok, result.stdout        # True, '7\\n'

Isolation, chosen once per process by `isolation()` (the first that works here):
  "bwrap"    bubblewrap (Debian: `apt-get install bubblewrap`): new user, pid, net, ipc, uts and cgroup
             namespaces, read-only /usr (the interpreter and its stdlib), the workspace bound read-write at
             /workspace, a private /tmp, /proc of the new pid namespace, a minimal /dev, empty environment,
             all capabilities dropped, `--die-with-parent`. No /etc, /home, /root, /proc of the host.
  "unshare"  `unshare -rn`: no network, but the host filesystem is visible with the unprivileged user's rights.
  "rlimits"  resource limits and the process-group kill only.
Weaker modes are announced once, loudly, with exactly what they stop guarding.

In every mode: the code runs as an unprivileged user (as root: the workspace's own uid from an unused range, see
`owners.sandbox_owner`; run as a plain folder path: nobody), in its own session, with
rlimits set by `prlimit` before exec (CPU seconds, address space, processes, file size, open files, no core
dumps), stdin closed, stdout/stderr captured to private files (their size is bounded by the file-size limit
and only the first `max_output_chars` are returned), and a wall-clock timeout that kills the whole process
group. Under bwrap the program is the pid namespace's init (`--as-pid-1`, a direct child of bwrap, so it is never
orphaned); the timeout kills it by its host pid (from `--info-fd`), which takes the whole namespace with it, and
bwrap reaps it: when `run_python` returns, nothing of the run is alive and no zombie holds the uid's process
limit. In the weaker
modes, as root, every process of the workspace's uid is killed after the run (daemons that called setsid).
`RunResult.limit` names the limit that ended a run; an exit status alone is not trusted (a CPU verdict also
needs the run to have lasted the CPU limit).

Not guarded: CPU time shared with the host (use cgroups for hard CPU/memory isolation of many parallel
rollouts), the total disk used by many files each under the size limit (callers `rescan()` the workspace
against its quota afterwards), kernel exploits, and side channels. When not run as root, the process limit is per
user and shared by every sandbox of that user.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from agent_lightning.sandbox.owners import NOBODY, SANDBOX_IDS
from agent_lightning.sandbox.workspace import Workspace

log = logging.getLogger(__name__)

WORKDIR = "/workspace"


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0
    cpu_seconds: int = 5
    memory_bytes: int = 1 << 30
    max_processes: int = 32
    file_bytes: int = 1 << 20
    open_files: int = 64
    max_output_chars: int = 4000


@dataclass
class RunResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    limit: str | None = None  # which limit ended the run, when one did

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def report(self) -> str:
        """What the policy reads: output, then how the process ended when it did not end well."""
        parts = [self.stdout.rstrip()] if self.stdout.strip() else []
        if self.stderr.strip():
            parts.append("stderr:\n" + self.stderr.rstrip())
        if self.limit:
            parts.append(f"[killed: {self.limit}]")
        elif self.returncode:
            parts.append(f"[exit code {self.returncode}]")
        return "\n".join(parts) or "(no output)"


def interpreter() -> str:
    """The Python that runs sandboxed code: the system one under /usr when present (readable by nobody and
    inside the read-only /usr bind), else this interpreter."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    return os.path.realpath(sys.executable)


def _bwrap_prefix(workspace_root: str, python: str) -> list[str]:
    cmd = ["bwrap", "--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64"):
        host = Path("/") / top
        if host.is_symlink():
            cmd += ["--symlink", os.readlink(host), f"/{top}"]
        elif host.is_dir():
            cmd += ["--ro-bind", str(host), f"/{top}"]
    prefix = os.path.dirname(os.path.dirname(python))
    if not python.startswith("/usr/"):
        cmd += ["--ro-bind", prefix, prefix]
    return cmd + [
        "--bind", workspace_root, WORKDIR, "--chdir", WORKDIR,
        "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev",
        "--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1", "--cap-drop", "ALL",
        "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", WORKDIR,
        "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
    ]


_WEAKER = {
    "unshare": "bubblewrap is not available: sandboxed code has no network, but can READ the host filesystem "
               "with the rights of an unprivileged user and see host processes; unless we run as root (which kills "
               "every process of the workspace's uid after each run), a program that leaves its process group "
               "(setsid) can outlive the run. Install it: apt-get install bubblewrap",
    "rlimits": "neither bubblewrap nor `unshare -rn` works here: sandboxed code runs only under resource limits "
               "and a timeout, WITH NETWORK ACCESS and read access to the host filesystem; unless we run as root "
               "(which kills every process of the workspace's uid after each run), a program that leaves its "
               "process group (setsid) can outlive the run. "
               "Install bubblewrap: apt-get install bubblewrap",
}


@functools.cache
def isolation() -> str:
    """The strongest isolation that works on this machine ('bwrap', 'unshare' or 'rlimits'), probed once."""
    forced = os.environ.get("AGENT_LIGHTNING_SANDBOX")
    candidates = [forced] if forced else ["bwrap", "unshare", "rlimits"]
    with tempfile.TemporaryDirectory() as probe_dir:
        owner = NOBODY if os.geteuid() == 0 else None
        if owner:
            os.chown(probe_dir, *owner)
        for mode in candidates:
            if mode == "rlimits" or _probe(mode, probe_dir, owner):
                break
        else:
            mode = "rlimits"
    if mode in _WEAKER:
        log.warning("SANDBOX WEAKENED: %s", _WEAKER[mode])
    return mode


def _probe(mode: str, probe_dir: str, owner: tuple[int, int] | None) -> bool:
    if shutil.which(mode) is None:
        return False
    try:
        proc = subprocess.run(_command(mode, probe_dir, ["-c", "pass"], Limits()), cwd=probe_dir, env=_env(),
                              capture_output=True, timeout=20, **_user_kwargs(owner))
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}


def _user_kwargs(owner: tuple[int, int] | None) -> dict:
    return {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}


def _command(mode: str, workspace_root: str, args: list[str], limits: Limits) -> list[str]:
    python = interpreter()
    rlimits = [
        "prlimit", f"--cpu={limits.cpu_seconds}", f"--as={limits.memory_bytes}", f"--fsize={limits.file_bytes}",
        f"--nofile={limits.open_files}", "--core=0", f"--nproc={_nproc(limits)}", "--",
    ]
    if mode == "bwrap":
        return rlimits + _bwrap_prefix(workspace_root, python) + [python, "-I", *args]
    if mode == "unshare":  # (--pid --fork would lose the exit status of a killed program in util-linux 2.38)
        return rlimits + ["unshare", "-rn", "--", python, "-I", *args]
    return rlimits + [python, "-I", *args]


def _nproc(limits: Limits) -> int:
    """RLIMIT_NPROC counts every process of the user: add what a non-root caller already runs."""
    if os.geteuid() == 0:
        return limits.max_processes
    running = sum(1 for p in Path("/proc").iterdir() if p.name.isdigit() and _owned(p))
    return running + limits.max_processes


def _owned(path: Path) -> bool:
    try:
        return path.stat().st_uid == os.geteuid()
    except OSError:
        return False


def run_python(code: str, workspace: Workspace | str, limits: Limits = Limits(), args: list[str] | None = None) -> RunResult:
    """Run `code` as a script (cwd = the workspace) under `isolation()` and `limits`; never raises for the
    code's own failures (they are in the result). When it returns, no process of the run is left."""
    root = workspace.root if isinstance(workspace, Workspace) else str(workspace)
    owner = workspace.owner if isinstance(workspace, Workspace) else (NOBODY if os.geteuid() == 0 else None)
    mode = isolation()
    with tempfile.TemporaryDirectory(prefix="al-run-") as private:
        script = os.path.join(private, "main.py")
        with open(script, "w", encoding="utf-8", errors="surrogatepass") as fh:
            fh.write(code)  # an unpaired surrogate becomes bytes Python rejects: a SyntaxError in the result
        os.chmod(private, 0o755)
        os.chmod(script, 0o644)
        info_read, info_write = os.pipe()
        # The script lives outside the workspace; under bwrap it is bound read-only at /run/main.py.
        if mode == "bwrap":
            cmd = _command(mode, root, ["/run/main.py", *(args or [])], limits)
            at = cmd.index("--bind")
            cmd[at:at] = ["--ro-bind", script, "/run/main.py", "--info-fd", str(info_write)]
        else:
            cmd = _command(mode, root, [script, *(args or [])], limits)
        out_path, err_path = os.path.join(private, "out"), os.path.join(private, "err")
        try:
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                start = time.perf_counter()
                proc = subprocess.Popen(cmd, cwd=root, env=_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        start_new_session=True, pass_fds=(info_write,), **_user_kwargs(owner))
                os.close(info_write)
                info_write = -1
                timed_out = False
                try:
                    proc.wait(timeout=limits.wall_seconds)
                except subprocess.TimeoutExpired:
                    timed_out = True
                finally:
                    sandbox_pid = _sandbox_pid(info_read) if mode == "bwrap" else None
                    if timed_out and _kill(sandbox_pid):
                        try:
                            proc.wait(timeout=2)  # the namespace dies with its init; bwrap exits
                        except subprocess.TimeoutExpired:
                            pass
                    _kill_group(proc.pid)
                    proc.wait()
                    _reap(sandbox_pid)
                    if mode != "bwrap":
                        _kill_user(owner)
                seconds = time.perf_counter() - start
        finally:
            os.close(info_read)
            if info_write >= 0:
                os.close(info_write)
        stdout = _read_capped(out_path, limits.max_output_chars)
        stderr = _read_capped(err_path, limits.max_output_chars)
    if isinstance(workspace, Workspace):
        workspace.rescan()
    limit = _limit_hit(proc.returncode, timed_out, limits, seconds, stderr, mode)
    return RunResult(proc.returncode, stdout, stderr, timed_out, seconds, limit)


def _sandbox_pid(info_fd: int) -> int | None:
    """The host pid of the sandbox's init, which bwrap writes to --info-fd right after creating it."""
    os.set_blocking(info_fd, False)
    try:
        pid = json.loads(os.read(info_fd, 4096).decode() or "{}").get("child-pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and pid > 1 else None


def _kill(pid: int | None) -> bool:
    """SIGKILL the sandbox's init: the kernel then kills everything in its pid namespace."""
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _reap(pid: int | None, wait_seconds: float = 2.0) -> None:
    """If the sandbox's init was orphaned to us (we are PID 1 or a subreaper, e.g. in a container), reap it so
    no zombie of the workspace's uid holds its process limit; otherwise its parent already did."""
    if pid is None:
        return
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # not (or no longer) ours: reaped already
        if done or time.monotonic() > deadline:
            return
        time.sleep(0.001)


def _kill_user(owner: tuple[int, int] | None) -> None:
    """Weaker modes as root: kill every process of the workspace's own uid (daemons that left the group).
    Only ever for a uid of our private range, never for a real account."""
    if owner and owner[0] >= SANDBOX_IDS and owner[1] >= SANDBOX_IDS and os.geteuid() == 0:
        subprocess.run(["kill", "-KILL", "-1"], user=owner[0], group=owner[1], extra_groups=[],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_capped(path: str, max_chars: int) -> str:
    with open(path, "rb") as fh:
        data = fh.read(max_chars * 4 + 4)
    text = data.decode("utf-8", errors="replace")
    if len(text) > max_chars or os.path.getsize(path) > len(data):
        return text[:max_chars] + f"\n[... output truncated at {max_chars} characters]"
    return text


def _limit_hit(returncode: int | None, timed_out: bool, limits: Limits, seconds: float, stderr: str,
               mode: str) -> str | None:
    """Which limit ended the run. Exit codes are not trusted alone: a program can exit with 152 or kill itself,
    so a CPU verdict also needs the run to have lasted the CPU limit (the sandbox's CPU time is not visible
    here: its processes are reaped inside bwrap's pid namespace)."""
    if timed_out:
        return f"wall-clock limit of {limits.wall_seconds:g} s"
    if returncode is not None and returncode > 128 and mode == "bwrap":
        returncode = 128 - returncode  # bwrap reports a child killed by signal N as exit code 128 + N
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL) and seconds >= limits.cpu_seconds * 0.9:
        return f"CPU limit of {limits.cpu_seconds} s"
    if returncode == -signal.SIGXFSZ or "File too large" in stderr:
        return f"file size limit of {limits.file_bytes} bytes"
    if returncode == -signal.SIGSEGV:
        return "segmentation fault"
    return None
