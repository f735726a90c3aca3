"""Turn configured reward specs into TRL reward functions: argument filtering, environments, isolation.

    suite = RewardSuite.from_config(cfg.rewards, env_cls)
    GRPOTrainer(..., reward_funcs=suite.functions, args=GRPOConfig(reward_weights=suite.weights, ...))

Each function in `suite.functions` has TRL's signature `(prompts, completions, completion_ids, **kwargs)` and
calls the user's reward with only the arguments it declares (or everything, if it takes **kwargs).

`environments`: for environments with tools TRL passes the rollout's instances; for single-turn environments
the suite builds one per completion from the task columns and calls `_finish_episode(completion)`, so every reward reads
a verified `env.outcome` either way (built once per batch, shared by all rewards).

Traces: with `trace_dir` set, once every reward has scored a batch the suite writes one line per rollout
(prompt, completion messages, verified outcome, per-reward scores, weighted total) via traces.py.

Isolation: an exception, a NaN/inf or non-number value, or a wrong-length result is caught, logged once per
reward with the sample that triggered it, scored by the spec's `on_error` ('zero' -> 0.0, 'skip' -> None,
'raise' -> re-raise) and counted in `error_counts`. Not covered here: per-call timeouts.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

from agent_lightning.config import RewardSpec
from agent_lightning.errors import UserError
from agent_lightning.registry import REWARDS

log = logging.getLogger(__name__)

ON_ERROR = ("zero", "skip", "raise")


def completion_text(completion: Any) -> str:
    """Text of a TRL completion: a string, or a list of messages (the assistant turns are joined)."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "\n".join(parts)


class RewardSuite:
    """The run's reward functions, their weights and their error counters."""

    def __init__(self, env_cls: type | None = None):
        self.env_cls = env_cls
        self.functions: list[Any] = []
        self.weights: list[float] = []
        self.error_counts: Counter[str] = Counter()
        self._batch_completions: list[Any] | None = None  # held, so identity cannot be reused by a new batch
        self._batch_envs: list[Any] | None = None
        self.trace_dir: Path | None = None
        self._scores: dict[str, list[float | None]] = {}
        self._scored: list[Any] | None = None

    @classmethod
    def from_config(cls, specs: list[RewardSpec], env_cls: type | None = None) -> "RewardSuite":
        if not specs:
            raise UserError("rewards: the config names no reward; add one, e.g. rewards: [{name: exact_answer}].")
        suite = cls(env_cls)
        for spec in specs:
            if spec.on_error not in ON_ERROR:
                raise UserError(f"rewards.{spec.name}.on_error: '{spec.on_error}' is not one of {', '.join(ON_ERROR)}.")
            plugin = REWARDS.get(spec.name)
            suite.add(spec.name, plugin.obj, spec.weight, spec.on_error, spec.kwargs)
        return suite

    def add(self, name: str, fn: Any, weight: float = 1.0, on_error: str = "zero", kwargs: dict | None = None) -> None:
        self.functions.append(_BoundReward(self, name, fn, on_error, kwargs or {}))
        self.weights.append(float(weight))

    @property
    def names(self) -> list[str]:
        return [f.__name__ for f in self.functions]

    def environments_for(self, completions: list[Any], kwargs: dict[str, Any]) -> list[Any] | None:
        """Environments with verified outcomes for this batch (TRL's, or built here for single-turn envs)."""
        envs = kwargs.get("environments")
        if self.env_cls is None:
            return envs
        if completions is self._batch_completions:
            return self._batch_envs
        if envs is None:
            envs = []
            for i in range(len(completions)):
                env = self.env_cls()
                task = {k: v[i] for k, v in kwargs.items() if isinstance(v, list) and len(v) == len(completions)}
                env.reset(**task)
                envs.append(env)
        for env, completion in zip(envs, completions, strict=True):
            if not env.outcome.verified:
                env._finish_episode(completion)
        self._batch_completions, self._batch_envs = completions, envs
        return envs


    def record(self, name: str, values: list[float | None], prompts: Any, completions: list[Any],
               kwargs: dict[str, Any]) -> None:
        """Collect one reward's scores; when the batch has all of them, write its traces."""
        if self.trace_dir is None:
            return
        if completions is not self._scored:
            self._scored, self._scores = completions, {}
        self._scores[name] = values
        if len(self._scores) < len(set(self.names)):
            return
        from agent_lightning.traces import weighted_total, write_batch

        envs = self.environments_for(completions, kwargs) if self.env_cls is not None else None
        state = kwargs.get("trainer_state")
        step = getattr(state, "global_step", 0) + 1  # the optimizer step this batch trains, as in metrics.jsonl
        weights = dict(zip(self.names, self.weights))
        task_ids = kwargs.get("task_id") or [None] * len(completions)
        records = []
        for i, completion in enumerate(completions):
            scores = {n: v[i] for n, v in self._scores.items()}
            env = envs[i] if envs else None
            records.append({
                "step": step, "task_id": task_ids[i],
                "prompt": prompts[i] if prompts else None, "completion": completion,
                "outcome": env.outcome.to_dict() if env is not None else None,
                "calls": getattr(env, "calls", None) or None,
                "rewards": scores, "reward": weighted_total(scores, weights),
            })
        write_batch(self.trace_dir, step, records)
        self._scored, self._scores = None, {}


class _BoundReward:
    """One configured reward as a TRL reward function (see module docstring)."""

    def __init__(self, suite: RewardSuite, name: str, fn: Any, on_error: str, extra: dict[str, Any]):
        self.suite, self.fn, self.on_error, self.extra = suite, fn, on_error, extra
        self.__name__ = name
        params = inspect.signature(fn).parameters
        self.takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self.declared = {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
        self._warned = False

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs: Any) -> list[float | None]:
        n = len(completions)
        available = dict(kwargs, prompts=prompts, completions=completions, completion_ids=completion_ids)
        try:
            if "environments" in self.declared or self.takes_all:
                available["environments"] = self.suite.environments_for(completions, kwargs)
            args = available if self.takes_all else {k: v for k, v in available.items() if k in self.declared}
            values = self._validate(self.fn(**args, **self.extra), n)
        except Exception as exc:  # noqa: BLE001 - a reward must never stop training unless on_error=raise
            if self.on_error == "raise":
                raise
            self.suite.error_counts[self.__name__] += 1
            if not self._warned:
                self._warned = True
                sample = completion_text(completions[0])[:200] if completions else ""
                log.warning("reward '%s' failed (%s: %s); scoring it '%s'. Sample completion: %r",
                            self.__name__, type(exc).__name__, exc, self.on_error, sample)
            values = [0.0 if self.on_error == "zero" else None] * n
        try:
            self.suite.record(self.__name__, values, prompts, completions, kwargs)
        except Exception:  # noqa: BLE001 - a trace that cannot be written must not stop training
            log.exception("could not write the traces of this batch")
        return values

    def _validate(self, values: Any, n: int) -> list[float | None]:
        if not isinstance(values, (list, tuple)):
            raise TypeError(f"returned {type(values).__name__}, expected a list of {n} numbers")
        if len(values) != n:
            raise ValueError(f"returned {len(values)} values for {n} completions")
        out: list[float | None] = []
        for v in values:
            if v is None:
                out.append(None)
                continue
            if not isinstance(v, (int, float)):
                raise TypeError(f"returned a non-number {v!r}")
            if not math.isfinite(v):
                raise ValueError(f"returned {v}")
            out.append(float(v))
        return out
