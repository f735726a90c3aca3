"""Runs INSIDE the sandbox (stdlib only): execute many programs, each in a forked child, and print a JSON list.

    python3 batch_driver.py JOBS.json      # JOBS: {"cpu_seconds": N, "wall_seconds": S, "max_output": C,
                                           #        "programs": ["...", ...]}

Each child gets its own process group, a CPU rlimit, a private scratch folder (/workspace/job-<i>) as cwd, its
stdout/stderr in a private file, and is killed (with its whole group) at its wall-clock limit. The children are
forked from this interpreter (no new interpreter start), which is what makes a batch cheap. They share the
sandbox's user, so they are isolated from the host by the sandbox but from each other only as processes.
"""

import json
import os
import resource
import select
import signal
import sys
import time
import traceback


def run_child(index, code, cpu_seconds):
    os.setpgid(0, 0)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    work = os.path.join(os.getcwd(), f"job-{index}")
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    fd = os.open(f"/tmp/out-{index}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
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
    timed_out = not ready
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), timed_out


def main():
    with open(sys.argv[1]) as fh:
        jobs = json.load(fh)
    results = []
    for index, code in enumerate(jobs["programs"]):
        start = time.perf_counter()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            run_child(index, code, jobs["cpu_seconds"])
        returncode, timed_out = wait_child(pid, jobs["wall_seconds"])
        path = f"/tmp/out-{index}"
        with open(path, "rb") as fh:
            output = fh.read(jobs["max_output"] * 4).decode("utf-8", errors="replace")[: jobs["max_output"]]
        os.unlink(path)
        results.append({"returncode": returncode, "timed_out": timed_out, "output": output,
                        "seconds": time.perf_counter() - start})
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":
    main()
