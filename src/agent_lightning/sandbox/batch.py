"""Run many independent programs in ONE sandboxed process: each in a forked child with its own limits.

    from agent_lightning.sandbox.batch import run_python_many
    results = run_python_many(["print(1)", "while True: pass"], Limits(wall_seconds=3, cpu_seconds=2))
    [r.ok for r in results]          # [True, False]; results[1].limit names the wall-clock limit
    run_python_many([harness] * n, limits, files=[{"solution.py": ..., "secret.json": ...}, ...])

One jail start (~35 ms under bubblewrap) for the whole batch instead of one per program; a child costs a fork.
The jail is the same as `run_python`'s (see process.py); inside it the driver (batch_driver.py) is the pid
namespace's init: every program runs in its own process group and scratch folder with a CPU rlimit and a
wall-clock kill, gets its `files` only after it was forked, and nothing of it survives it. Programs share the
sandbox user, so they are isolated from each other only as processes (they cannot ptrace or signal the driver,
nor reach each other's output files or files).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from agent_lightning.sandbox.owners import sandbox_owner
from agent_lightning.sandbox.process import Limits, RunResult, run_python
from agent_lightning.sandbox.workspace import Quota, Workspace

DRIVER = (Path(__file__).with_name("batch_driver.py")).read_text()


def run_python_many(programs: list[str], limits: Limits = Limits(),
                    files: list[dict[str, str]] | None = None) -> list[RunResult]:
    """Run each program (as `__main__`) under `limits`, with `files[i]` written into program i's folder after it
    started; results in order. Never raises for the programs' faults."""
    if not programs:
        return []
    files = files or [{} for _ in programs]
    header = {"cpu_seconds": limits.cpu_seconds, "wall_seconds": limits.wall_seconds, "max_output": limits.max_output_chars}
    lines = [json.dumps(header)]
    for program, extra in zip(programs, files, strict=True):
        lines += [json.dumps({"program": program}), json.dumps({"files": extra})]
    payload = "\n".join(lines) + "\n"
    room = len(programs) * (limits.max_output_chars * 2 + 200) + 4096
    outer = dataclasses.replace(
        limits, wall_seconds=len(programs) * (limits.wall_seconds + 0.5) + 10,
        cpu_seconds=len(programs) * limits.cpu_seconds + 10, max_output_chars=room,
        file_bytes=max(limits.file_bytes, 4 * room, len(payload) + 1),
    )
    quota = Quota(max_file_bytes=len(payload) + 1, max_bytes=len(payload) + (64 << 20), max_entries=4 * len(programs) + 64)
    with Workspace({"jobs.jsonl": payload}, quota=quota, owner=sandbox_owner()) as ws:
        run = run_python(DRIVER, ws, outer, args=["jobs.jsonl"])
    results: list[RunResult] = []
    for line in run.stdout.splitlines():
        try:
            results.append(_result(json.loads(line), limits))
        except (ValueError, KeyError, TypeError):
            break
    failure = RunResult(None, "", run.report(), run.timed_out, run.seconds, run.limit or "the batch driver stopped")
    return (results + [failure] * len(programs))[: len(programs)]


def _result(row: dict, limits: Limits) -> RunResult:
    code, seconds = row["returncode"], float(row["seconds"])
    if not isinstance(code, int) or not isinstance(row["output"], str):
        raise TypeError("malformed result line")
    limit = None
    if row["timed_out"]:
        limit = f"wall-clock limit of {limits.wall_seconds:g} s"
    elif code in (-24, -9) and seconds >= 0.9 * limits.cpu_seconds:
        limit = f"CPU limit of {limits.cpu_seconds} s"
    return RunResult(code, row["output"], "", bool(row["timed_out"]), seconds, limit)
