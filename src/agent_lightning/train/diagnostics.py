"""Learning-signal diagnostics: is there anything for GRPO to learn from?

    diag = SignalDiagnostics(window=5)
    suite.diagnostics = diag                      # the reward suite feeds it every scored batch
    callbacks = [SignalCallback(diag), ...]       # warns, and puts flags in metrics and the progress line

GRPO learns only from differences inside a group of completions of one prompt. Over the last `window` steps it
flags:
  - `constant:NAME`  a reward that gave every completion the same value (it separates nothing),
  - `none:NAME`      a reward that was None (not applicable) for every completion (it is not used at all),
  - `no-signal`      more than `zero_signal_threshold` of the groups had identical total rewards
                     (TRL's `frac_reward_zero_std`), so most of each batch trains nothing.
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
}


class SignalDiagnostics:
    def __init__(self, window: int = 5, zero_signal_threshold: float = 0.9):
        self.window = window
        self.zero_signal_threshold = zero_signal_threshold
        self.scores: dict[str, deque[list[float | None]]] = {}
        self.zero_signal: deque[float] = deque(maxlen=window)
        self.flags: list[str] = []
        self.ever: list[str] = []

    def observe(self, step: int, scores: dict[str, list[float | None]]) -> None:
        """One scored batch: {reward name: values}."""
        for name, values in scores.items():
            self.scores.setdefault(name, deque(maxlen=self.window)).append(list(values))

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
