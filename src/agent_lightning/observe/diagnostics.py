"""Learning-signal diagnostics: is there anything for GRPO to learn from?

    diag = SignalDiagnostics(window=5)
    suite.diagnostics = diag                      # the reward suite feeds it every scored batch
    callbacks = [SignalCallback(diag), ...]       # warns, and puts flags in metrics and the progress line

GRPO learns only from differences inside a group of completions of one prompt. Over the last `window` steps it
flags:
  - `constant:NAME`  a reward that gave every completion the same value (it separates nothing),
  - `none:NAME`      a reward that was None (not applicable) for every completion (it is not used at all),
  - `no-signal`      more than `zero_signal_threshold` of the groups had identical total rewards
                     (TRL's `frac_reward_zero_std`), so most of each batch trains nothing;
  - `shaping-only:NAME`  (given the group size and the outcome reward NAME, the run's first) more than
                     `shaping_threshold` of the groups that train anything scored the same NAME for every
                     completion: their advantages come from the other rewards alone, and the policy learns what
                     those pay for instead of the outcome. Seen here: in groups where every rollout failed, a
                     penalty per failed call was the only difference, and GRPO taught the policy to call less.
Each flag is logged once as a warning with a hint when it appears (and again if it comes back after clearing);
current flags go to metrics.jsonl as `signal/flags` and to the progress line; the run summary lists them.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)

HINTS = {
    "constant": "it gives every completion the same score, so it cannot tell better from worse; check its inputs, "
                "or give partial credit (e.g. partial_progress)",
    "none": "it returns None (not applicable) for every completion; check that it suits this environment",
    "no-signal": "most groups score all their completions alike; raise grpo.temperature or grpo.num_generations, "
                 "add a partial-credit reward, or warm-start the policy with SFT",
    "shaping-only": "most groups that train anything gave every completion the same score on it, so their "
                    "advantages come from the other rewards alone; check that doing less cannot score better under "
                    "them (a penalty per call, credit for state left untouched), or lower their weights",
}


class SignalDiagnostics:
    def __init__(self, window: int = 5, zero_signal_threshold: float = 0.9, group_size: int | None = None,
                 weights: dict[str, float] | None = None, outcome: str | None = None,
                 shaping_threshold: float = 0.5):
        self.window = window
        self.zero_signal_threshold = zero_signal_threshold
        self.group_size, self.weights, self.outcome = group_size, weights or {}, outcome
        self.shaping_threshold = shaping_threshold
        self.scores: dict[str, deque[list[float | None]]] = {}
        self.zero_signal: deque[float] = deque(maxlen=window)
        self.groups: deque[tuple[int, int]] = deque(maxlen=window)  # (groups with signal, of them shaping-only)
        self.flags: list[str] = []
        self.ever: list[str] = []

    def observe(self, step: int, scores: dict[str, list[float | None]]) -> None:
        """One scored batch: {reward name: values}."""
        for name, values in scores.items():
            self.scores.setdefault(name, deque(maxlen=self.window)).append(list(values))
        if self.group_size and self.outcome in scores:
            self.groups.append(self._group_signal(scores))

    def _group_signal(self, scores: dict[str, list[float | None]]) -> tuple[int, int]:
        """(groups whose weighted total varies, those of them whose outcome reward does not). Completions of one
        prompt are consecutive, `group_size` at a time, as TRL samples them; None counts as 0, as in TRL's sum."""
        n = len(scores[self.outcome])
        totals = [sum(self.weights.get(name, 1.0) * (values[i] or 0.0) for name, values in scores.items())
                  for i in range(n)]
        signal = shaping = 0
        for start in range(0, n - n % self.group_size, self.group_size):
            group = range(start, start + self.group_size)
            if max(totals[i] for i in group) - min(totals[i] for i in group) <= 1e-9:
                continue
            signal += 1
            outcome = {scores[self.outcome][i] or 0.0 for i in group}
            shaping += len(outcome) == 1
        return signal, shaping

    def observe_zero_signal(self, fraction: float | None) -> None:
        if fraction is not None and math.isfinite(fraction):
            self.zero_signal.append(fraction)

    def update(self) -> list[str]:
        """Recompute the flags; returns the ones that are new since the last update."""
        flags = []
        for name, batches in self.scores.items():
            if len(batches) < self.window:
                continue
            values = [v for batch in batches for v in batch]
            present = [v for v in values if v is not None]
            if not present:
                flags.append(f"none:{name}")
            elif len(present) > 1 and max(present) == min(present):
                flags.append(f"constant:{name}")
        if len(self.zero_signal) == self.window and min(self.zero_signal) > self.zero_signal_threshold:
            flags.append("no-signal")
        signal = sum(g[0] for g in self.groups)
        if len(self.groups) == self.window and signal and sum(g[1] for g in self.groups) / signal > self.shaping_threshold:
            flags.append(f"shaping-only:{self.outcome}")
        new = [f for f in flags if f not in self.flags]
        self.flags = flags
        self.ever += [f for f in new if f not in self.ever]
        return new

    @staticmethod
    def message(flag: str, window: int) -> str:
        kind, _, name = flag.partition(":")
        subject = f"reward '{name}'" if name else "the batch"
        return f"learning signal: {subject} over the last {window} steps: {HINTS[kind]}."


class SignalCallback(TrainerCallback):
    """Feeds TRL's zero-std fraction to the diagnostics, warns on new flags, and adds them to the logs."""

    def __init__(self, diagnostics: SignalDiagnostics):
        self.diagnostics = diagnostics

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if not logs or "reward" not in logs:
            return
        self.diagnostics.observe_zero_signal(logs.get("frac_reward_zero_std"))
        for flag in self.diagnostics.update():
            if state.is_world_process_zero:
                log.warning(self.diagnostics.message(flag, self.diagnostics.window))
        logs["signal/flags"] = ",".join(self.diagnostics.flags)
