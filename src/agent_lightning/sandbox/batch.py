"""Run many independent programs in ONE sandboxed process: each in a forked child with its own limits.

    from agent_lightning.sandbox.batch import run_python_many
    results = run_python_many(["print(1)", "while True: pass"], Limits(wall_seconds=3, cpu_seconds=2))
    [r.ok for r in results]          # [True, False]; results[1].limit names the wall-clock limit

One jail start (~35 ms under bubblewrap) for the whole batch instead of one per program; a child costs a fork.
The jail is the same as `run_python`'s (see process.py); inside it, every program runs in its own process
group and scratch folder with a CPU rlimit and a wall-clock kill (see batch_driver.py). The programs share the
sandbox user and the jail, so they are isolated from the host but only as processes from each other: use it
for evaluation and verification batches, not to keep mutually hostile programs apart.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from agent_lightning.sandbox.process import Limits, RunResult, run_python, sandbox_owner
from agent_lightning.sandbox.workspace import Quota, Workspace

DRIVER = (Path(__file__).with_name("batch_driver.py")).read_text()


def run_python_many(programs: list[str], limits: Limits = Limits()) -> list[RunResult]:
    """Run each program (as `__main__`) under `limits`; results in order. Never raises for the programs' faults."""
    if not programs:
        return []
    jobs = {"cpu_seconds": limits.cpu_seconds, "wall_seconds": limits.wall_seconds,
            "max_output": limits.max_output_chars, "programs": programs}
    payload = json.dumps(jobs)
    room = len(programs) * (limits.max_output_chars * 2 + 200) + 4096
    outer = dataclasses.replace(
        limits, wall_seconds=len(programs) * (limits.wall_seconds + 0.5) + 10, cpu_seconds=len(programs) * limits.cpu_seconds + 10,
        max_output_chars=room, file_bytes=max(limits.file_bytes, 4 * room, len(payload) + 1),
    )
    quota = Quota(max_file_bytes=len(payload) + 1, max_bytes=len(payload) + (64 << 20), max_entries=4 * len(programs) + 64)
    with Workspace({"jobs.json": payload}, quota=quota, owner=sandbox_owner()) as ws:
        run = run_python(DRIVER, ws, outer, args=["jobs.json"])
    try:
        rows = json.loads(run.stdout)
    except ValueError:
        failure = RunResult(None, "", run.report(), run.timed_out, run.seconds, run.limit or "batch driver failed")
        return [failure] * len(programs)
    return [_result(row, limits) for row in rows]


def _result(row: dict, limits: Limits) -> RunResult:
    code = row["returncode"]
    limit = None
    if row["timed_out"]:
        limit = f"wall-clock limit of {limits.wall_seconds:g} s"
    elif code in (-24, -9):
        limit = f"CPU limit of {limits.cpu_seconds} s"
    return RunResult(code, row["output"], "", row["timed_out"], row["seconds"], limit)
