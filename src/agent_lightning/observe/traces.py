"""Rollout traces: every rollout's turns, tool calls, tool results, verified outcome and rewards, as JSONL.

    python main_agent_lightning.py trace show runs/X [--step N] [--limit K] [--failed]

Written by the reward suite (rewarding.py) once all rewards of a batch are in, to
`RUN_DIR/traces/step-<NNNNN>.jsonl` (the step the batch was generated for; several batches of one step append to
one file). Under a multi-process launch each process traces its own share of the batch, process k > 0 into
`step-<NNNNN>.rank<k>.jsonl`, so no two processes append to one file; readers merge them. A line: {"step", "task_id", "prompt": [messages], "completion": [messages] or text,
"outcome": {...} or null, "rewards": {name: score or null}, "reward": weighted sum}. The environment's own
call log (`calls`: arguments, results, errors) is included for tool environments.

Not covered here: metrics (observe/callbacks.py), plots (observe/plots.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from agent_lightning.errors import UserError


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file (metrics.jsonl, a trace); [] when it is missing; a line cut by a crash
    mid-write is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash mid-write
    return rows


def trace_path(trace_dir: Path, step: int, rank: int = 0) -> Path:
    return trace_dir / (f"step-{step:05d}.jsonl" if rank == 0 else f"step-{step:05d}.rank{rank}.jsonl")


def step_of(path: Path) -> int:
    """The step of a trace file name (step-00012.jsonl or step-00012.rank1.jsonl -> 12)."""
    return int(path.name.split("-", 1)[1].split(".", 1)[0])


def trace_files(trace_dir: Path) -> dict[int, list[Path]]:
    """{step: its files, the main process's first}."""
    files: dict[int, list[Path]] = {}
    for path in sorted(Path(trace_dir).glob("step-*.jsonl"), key=lambda p: (len(p.name), p.name)):
        files.setdefault(step_of(path), []).append(path)
    return files


def write_batch(trace_dir: Path, step: int, records: list[dict[str, Any]]) -> None:
    from agent_lightning.distributed import rank

    trace_dir.mkdir(parents=True, exist_ok=True)
    with open(trace_path(trace_dir, step, rank()), "a") as fh:
        for record in records:
            fh.write(json.dumps(record, default=str) + "\n")


def truncate_after(trace_dir: Path, step: int) -> None:
    """Drop traces of steps after `step`, from every process (a resumed run regenerates them)."""
    for path in Path(trace_dir).glob("step-*.jsonl"):
        if step_of(path) > step:
            path.unlink()


def weighted_total(scores: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """TRL's sum: rewards that are None (not applicable) are left out."""
    values = [weights[n] * s for n, s in scores.items() if s is not None and not math.isnan(s)]
    return sum(values) if values else None


# ----------------------------------------------------------------------------- reading
def load_step(run_dir: Path, step: int | None) -> tuple[int, list[dict[str, Any]]]:
    steps = trace_files(Path(run_dir) / "traces")
    if not steps:
        raise UserError(f"{run_dir}: no traces/step-*.jsonl; is it a run directory of a finished or running job?")
    if step is None:
        step = max(steps)
    if step not in steps:
        raise UserError(f"--step {step}: {run_dir} has traces for steps {min(steps)}..{max(steps)}.")
    records = []
    for path in steps[step]:
        with open(path) as fh:
            records += [json.loads(line) for line in fh if line.strip()]
    return step, records


def render(records: list[dict[str, Any]], step: int, limit: int, failed_only: bool) -> str:
    """A readable transcript of up to `limit` rollouts."""
    if failed_only:
        records = [r for r in records if not (r.get("outcome") or {}).get("success")]
    out = [f"step {step}: {len(records)} rollout(s){' that failed' if failed_only else ''}, showing {min(limit, len(records))}"]
    for i, record in enumerate(records[:limit]):
        outcome = record.get("outcome") or {}
        rewards = ", ".join(f"{k}={_num(v)}" for k, v in record.get("rewards", {}).items())
        out += ["", "=" * 78,
                f"#{i}  task {record.get('task_id')}  reward {_num(record.get('reward'))}  ({rewards})",
                f"    outcome: success={outcome.get('success')} progress={_num(outcome.get('progress'))} "
                f"tool_calls={outcome.get('tool_calls')} tool_errors={outcome.get('tool_errors')} turns={outcome.get('turns')}"]
        failed = [k for k, ok in (outcome.get("checks") or {}).items() if not ok]
        if failed:
            out.append(f"    failed checks: {'; '.join(failed[:6])}{' ...' if len(failed) > 6 else ''}")
        if outcome.get("detail"):
            out.append(f"    detail: {outcome['detail']}")
        out.append("-" * 78)
        for message in record.get("prompt") or []:
            if message.get("role") == "user":
                out.append(_block("USER", message.get("content")))
        completion = record.get("completion")
        for message in completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]:
            out.append(_message(message))
    return "\n".join(out)


def _message(message: dict[str, Any]) -> str:
    role = message.get("role", "?")
    if role == "tool":
        return _block(f"TOOL RESULT ({message.get('name')})", message.get("content"))
    parts = [_block(role.upper(), message.get("content"))] if message.get("content") else []
    for call in message.get("tool_calls") or []:
        fn = call.get("function", {})
        parts.append(_block("TOOL CALL", f"{fn.get('name')}({json.dumps(fn.get('arguments'), ensure_ascii=False)})"))
    return "\n".join(parts) or _block(role.upper(), "")


def _block(label: str, text: Any, width: int = 600) -> str:
    text = str(text if text is not None else "")
    if len(text) > width:
        text = text[:width] + f" [... {len(text) - width} more characters]"
    return f"[{label}] " + text.replace("\n", "\n    ")


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else str(value)
