"""Trainer callbacks: `metrics.jsonl` (one line per logged step), a progress bar, a resumed run's intervals.

The metrics line keeps TRL's names and adds what a user of an RL run asks first:
`step`, `reward`, `reward_std`, `rewards/<name>/mean|std`, `frac_reward_zero_std` (groups with no learning
signal), `signal/flags` (observe/diagnostics.py), `step_seconds`, `tokens_per_second`, `reward_errors/<name>`,
`env_failures/<environment>` (episodes whose reset or verifier raised)
(isolated failures so far, summed over all processes).
Only the main process writes; TRL and the Trainer already gather rewards, loss and token counts across processes,
and the reward error counters are summed here (every process takes part in that exchange, so `on_log` runs the
same on all of them). `step_seconds` is the main process's own step time.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from agent_lightning.distributed import sum_counts


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsCallback(TrainerCallback):
    """Appends one JSON line per logged training step to `path`."""

    def __init__(self, path: Path, error_counts: dict[str, int] | None = None,
                 env_failures: dict[str, int] | None = None):
        self.path = Path(path)
        self.error_counts = error_counts if error_counts is not None else {}
        self.env_failures = env_failures if env_failures is not None else {}
        self._step_start: float | None = None
        self._step_seconds: list[float] = []
        self._last_tokens: float | None = None
        self.last: dict[str, Any] = {}

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_start is not None:
            self._step_seconds.append(time.perf_counter() - self._step_start)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not {"reward", "loss", "eval_loss"} & set(logs):
            return
        errors = sum_counts(self.error_counts)
        env_failures = sum_counts(self.env_failures)
        if not state.is_world_process_zero:
            self._step_seconds.clear()
            return
        seconds = sum(self._step_seconds) if self._step_seconds else None
        steps = len(self._step_seconds) or 1
        record: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch}
        record.update({k: _clean(v) for k, v in logs.items() if isinstance(v, (int, float, str)) or v is None})
        if seconds is not None:
            record["step_seconds"] = seconds / steps
            tokens = logs.get("num_tokens")
            if tokens is not None and self._last_tokens is not None and seconds > 0:
                record["tokens_per_second"] = (tokens - self._last_tokens) / seconds
            self._last_tokens = tokens
        for name, count in sorted(errors.items()):
            record[f"reward_errors/{name}"] = count
        for name, count in sorted(env_failures.items()):
            record[f"env_failures/{name}"] = count
        self._step_seconds.clear()
        self.last = record
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


class RichProgressCallback(TrainerCallback):
    """A one-line rich progress bar: step / total, reward, zero-signal fraction, step time, ETA."""

    def __init__(self, description: str = "GRPO"):
        self.description = description
        self.progress = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            auto_refresh=False,  # no refresh thread: it would preempt torch's worker threads on small CPUs
        )
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=state.max_steps, completed=state.global_step,
                                           stats="")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, refresh=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs:
            return
        if "reward" not in logs:
            if "loss" in logs:  # SFT
                self.progress.update(self.task, stats=f"loss {logs['loss']:.3f}", refresh=True)
            return
        zero = logs.get("frac_reward_zero_std")
        stats = f"reward {logs['reward']:.3f} ± {logs.get('reward_std') or 0:.3f}"
        if zero is not None:
            stats += f" | no-signal groups {zero:.0%}"
        if logs.get("signal/flags"):
            stats += f" | [yellow]⚠ {logs['signal/flags']}[/yellow]"
        self.progress.update(self.task, stats=stats, refresh=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class CurrentIntervalsCallback(TrainerCallback):
    """On `--resume`, checkpoint and logging intervals are the ones this run was given, not the checkpoint's.

    The Trainer restores its state from the checkpoint after computing the intervals from the arguments, so a run
    resumed with `--save-steps 1` would otherwise keep saving every `save_steps` of the interrupted run."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        state.compute_steps(args, state.max_steps)
