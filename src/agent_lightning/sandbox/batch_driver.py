"""Runs INSIDE the sandbox (stdlib only) as the pid namespace's init: run many programs, each in a forked child,
printing one JSON result line per program as it finishes.

    python3 batch_driver.py JOBS.jsonl     # line 1: {"cpu_seconds": N, "wall_seconds": S, "max_output": C}
                                           # then per program two lines: {"program": "..."} and {"files": {...}}

Per program: a private scratch folder (/workspace/job-<i>) as cwd, its own process group and CPU rlimit, its
output in a file this driver created with O_EXCL and unlinked at once (only the driver's and the child's
descriptors reach it), and a wall-clock kill. The program's `files` are read and written into its folder only
AFTER it was forked, so its memory never holds them: a program can wait for a file it must not leak (see
environments/_code_harness.py); each appears whole, by a rename. After each program every other process in the namespace is killed (kill -1 from
init), so nothing of one program outlives it. The driver reads JOBS.jsonl line by line and unlinks it first, is
not dumpable (no ptrace or /proc access by the programs, which share its uid), and, as the namespace's init,
ignores signals the programs send it. Not covered: programs are isolated from each other only as processes.
"""

import ctypes
import json
import os
import resource
import select
import signal
import sys
import time
import traceback


def run_child(code, cpu_seconds, out_fd, work, jobs_fd):
    os.close(jobs_fd)  # the rest of JOBS.jsonl (later programs and their files) is not this program's business
    os.setpgid(0, 0)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    os.chdir(work)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    status = 0
    try:
        exec(compile(code, "<program>", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # report the program's frames only, not this driver's
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
        status = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def wait_child(pid, wall_seconds):
    """(returncode, timed_out): waits on a pidfd so a finished child is noticed at once."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], wall_seconds)
    finally:
        os.close(pidfd)
    try:
        if os.getpid() == 1:
            os.kill(-1, signal.SIGKILL)  # from init: every other process of the namespace, the child included
        else:
            os.killpg(pid, signal.SIGKILL)  # no pid namespace (weaker sandbox modes): the child's group only
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    while True:  # reap whatever else was alive (we are init)
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    return os.waitstatus_to_exitcode(status), not ready


def write_files(work, files):
    """Each file is written under a temporary name and renamed into place, so a program that waits for it (the
    harness polls for secret.json) sees it whole or not at all; never half-written (under load it would)."""
    for name, text in files.items():
        if "/" in name or name in ("", ".", ".."):
            continue
        partial = os.path.join(work, f".{name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.rename(partial, os.path.join(work, name))


def main():
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
    jobs = open(sys.argv[1])
    os.unlink(sys.argv[1])
    limits = json.loads(jobs.readline())
    index = 0
    while True:
        line = jobs.readline()
        if not line:
            break
        code = json.loads(line)["program"]
        work = os.path.join(os.getcwd(), f"job-{index}")
        os.mkdir(work, 0o700)
        out_path = f"/tmp/out-{index}"
        out_fd = os.open(out_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.unlink(out_path)
        start = time.perf_counter()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            run_child(code, limits["cpu_seconds"], out_fd, work, jobs.fileno())
        write_files(work, json.loads(jobs.readline()).get("files") or {})
        returncode, timed_out = wait_child(pid, limits["wall_seconds"])
        os.lseek(out_fd, 0, os.SEEK_SET)
        output = os.read(out_fd, limits["max_output"] * 4).decode("utf-8", errors="replace")[: limits["max_output"]]
        os.close(out_fd)
        print(json.dumps({"returncode": returncode, "timed_out": timed_out, "output": output,
                          "seconds": time.perf_counter() - start}), flush=True)
        index += 1


if __name__ == "__main__":
    main()
