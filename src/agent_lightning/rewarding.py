"""Turn configured reward specs into TRL reward functions: argument filtering, environments, isolation.

    suite = RewardSuite.from_config(cfg.rewards, env_cls)
    GRPOTrainer(..., reward_funcs=suite.functions, args=GRPOConfig(reward_weights=suite.weights, ...))

Each function in `suite.functions` has TRL's signature `(prompts, completions, completion_ids, **kwargs)` and
calls the user's reward with only the arguments it declares (or everything, if it takes **kwargs), plus the
keyword arguments configured for it (each must be a named parameter of the function: a typo is a config error,
not a silently ignored value). `async def` rewards are awaited. A spec's weight and on_error default to what the
reward's `@reward(...)` declares.

`environments`: for environments with tools TRL passes the rollout's instances (our cached rollout function also
passes each episode's messages and prompt as `rollout_messages` / `rollout_prompts`, which are scored and traced
as the completions and prompts); for single-turn environments the suite builds one per completion from the task
columns; either way it calls `_finish_episode(completion)` once, so every reward reads a verified `env.outcome`
(built once per batch, shared by all rewards).

Isolation: an exception, a timeout (`timeout_s`), a NaN/inf or non-number value, or a wrong-length result is
caught, logged once per reward with the sample that triggered it, scored by `on_error` ('zero' -> 0.0, 'skip' ->
None, 'raise' -> re-raise) and counted in `error_counts`. A timed-out synchronous reward cannot be killed: it
finishes in a daemon thread (which does not keep the process alive) and its late result is dropped. Values may
be any real numbers (numpy scalars and arrays included, as TRL accepts).

After every reward has scored a batch, the suite hands the scores to its `diagnostics` (signal health, see
observe/diagnostics.py) and, with `trace_dir` set, writes one trace line per rollout (observe/traces.py).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import numbers
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from agent_lightning.chat.messages import completion_text
from agent_lightning.config import RewardSpec
from agent_lightning.errors import UserError, close_matches
from agent_lightning.registry import REWARDS

log = logging.getLogger(__name__)

ON_ERROR = ("zero", "skip", "raise")
ROLLOUT_MESSAGES = "rollout_messages"  # a rollout function's episodes as messages: scored instead of TRL's re-parse
ROLLOUT_PROMPTS = "rollout_prompts"  # and their prompts as played: traced instead of the dataset's
TRL_ARGUMENTS = ("prompts", "completions", "completion_ids", "environments", "trainer_state", "log_metric",
                 "log_extra")


class EnvironmentFailures(UserError):
    """Too many episodes of a batch failed in the environment itself: the run stops (not isolated like a reward)."""


class RewardSuite:
    """The run's reward functions, their weights and their error counters."""

    def __init__(self, env_cls: type | None = None, on_failure: str = "zero", max_failure_share: float = 1.0):
        self.env_cls = env_cls
        self.on_failure, self.max_failure_share = on_failure, max_failure_share
        self.env_failures: Counter[str] = Counter()  # environment name -> episodes its reset or verifier failed
        self.functions: list[Any] = []
        self.weights: list[float] = []
        self.error_counts: Counter[str] = Counter()
        self.trace_dir: Path | None = None
        self.diagnostics: Any = None  # train.diagnostics.SignalDiagnostics, when set
        self._batch_completions: list[Any] | None = None  # held, so identity cannot be reused by a new batch
        self._batch_envs: list[Any] | None = None
        self._scores: dict[str, list[float | None]] = {}
        self._scored: list[Any] | None = None

    @classmethod
    def from_config(cls, specs: list[RewardSpec], env_cls: type | None = None, env: Any = None) -> "RewardSuite":
        """The suite of `specs`; `env` (the config's env section) sets how environment failures are handled."""
        if not specs:
            raise UserError("rewards: the config names no reward; add one, e.g. rewards: [{name: task_success}].")
        suite = cls(env_cls, *((env.on_failure, env.max_failure_share) if env is not None else ()))
        names = [spec.name for spec in specs]
        for name in names:
            if names.count(name) > 1:
                raise UserError(f"rewards: '{name}' is configured {names.count(name)} times; keep one entry (a reward "
                                "with other arguments needs its own registered name, e.g. a small wrapper in rewards/).")
        for spec in specs:
            plugin = REWARDS.get(spec.name)
            weight = spec.weight if spec.weight is not None else plugin.meta.get("weight", 1.0)
            on_error = spec.on_error or plugin.meta.get("on_error", "zero")
            if on_error not in ON_ERROR:
                raise UserError(f"rewards.{spec.name}.on_error: '{on_error}' is not one of {', '.join(ON_ERROR)}.")
            if spec.timeout_s is not None and spec.timeout_s <= 0:
                raise UserError(f"rewards.{spec.name}.timeout_s: expected a positive number of seconds, got {spec.timeout_s}.")
            check_kwargs(spec.name, plugin.obj, spec.kwargs)
            suite.add(spec.name, plugin.obj, weight, on_error, spec.kwargs, spec.timeout_s)
        return suite

    def add(self, name: str, fn: Any, weight: float = 1.0, on_error: str = "zero", kwargs: dict | None = None,
            timeout_s: float | None = None) -> None:
        self.functions.append(_BoundReward(self, name, fn, on_error, kwargs or {}, timeout_s))
        self.weights.append(float(weight))

    @property
    def names(self) -> list[str]:
        return [f.__name__ for f in self.functions]

    def totals(self, prompts: Any, completions: list[Any], **kwargs: Any) -> list[float]:
        """The weighted total reward of each completion, as TRL will sum it (None scores count 0), computed without
        recording metrics, traces or errors: a look-ahead that does not change what training logs."""
        totals = [0.0] * len(completions)
        for fn, weight in zip(self.functions, self.weights):
            for i, value in enumerate(fn.compute(prompts, completions, None, kwargs, count=False)):
                totals[i] += weight * (value or 0.0)
        return totals

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
                if getattr(env, "failure", None):
                    self.env_failures[getattr(env, "env_name", "") or type(env).__name__] += 1
        self._batch_completions, self._batch_envs = completions, envs
        failed = [env.failure for env in envs if getattr(env, "failure", None)]
        if envs and len(failed) / len(envs) > self.max_failure_share:
            raise EnvironmentFailures(
                f"environment '{getattr(envs[0], 'env_name', '')}': {len(failed)} of {len(envs)} episodes of this batch "
                f"failed in the environment itself (first: {failed[0]}); fix it, or raise env.max_failure_share "
                f"({self.max_failure_share}).")
        return envs

    def record(self, name: str, values: list[float | None], prompts: Any, completions: list[Any],
               kwargs: dict[str, Any]) -> None:
        """Collect one reward's scores; when the batch has all of them, feed diagnostics and write traces."""
        if completions is not self._scored:
            self._scored, self._scores = completions, {}
        self._scores[name] = values
        if len(self._scores) < len(set(self.names)):
            return
        scores, self._scored, self._scores = self._scores, None, {}
        state = kwargs.get("trainer_state")
        step = getattr(state, "global_step", 0) + 1  # the optimizer step this batch trains, as in metrics.jsonl
        if self.diagnostics is not None:
            self.diagnostics.observe(step, scores)
        if self.trace_dir is None:
            return
        from agent_lightning.observe.traces import weighted_total, write_batch

        envs = self.environments_for(completions, kwargs) if self.env_cls is not None else None
        weights = dict(zip(self.names, self.weights))
        task_ids = kwargs.get("task_id") or [None] * len(completions)
        records = []
        for i, completion in enumerate(completions):
            row = {n: v[i] for n, v in scores.items()}
            env = envs[i] if envs else None
            records.append({
                "step": step, "task_id": task_ids[i],
                "prompt": prompts[i] if prompts else None, "completion": completion,
                "outcome": env.outcome.to_dict() if env is not None else None,
                "calls": getattr(env, "calls", None) or None,
                "retrieved": getattr(env, "retrieved", None),
                "rewards": row, "reward": weighted_total(row, weights),
            })
        write_batch(self.trace_dir, step, records)


def check_kwargs(name: str, fn: Any, kwargs: dict[str, Any]) -> None:
    """Configured arguments must be named parameters of the reward and must not shadow what TRL passes."""
    params = inspect.signature(fn).parameters
    named = [p for p, v in params.items() if v.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
    settable = [p for p in named if p not in TRL_ARGUMENTS]
    for key in kwargs:
        if key in TRL_ARGUMENTS:
            raise UserError(f"rewards.{name}.{key}: '{key}' is passed by the trainer; it cannot be configured.")
        if key not in named:
            raise UserError(f"rewards.{name}.{key}: the reward has no parameter '{key}'.{close_matches(key, settable)} "
                            f"Its parameters: {', '.join(settable) or 'none'}.")


class RewardTimeout(Exception):
    pass


class _BoundReward:
    """One configured reward as a TRL reward function (see module docstring)."""

    def __init__(self, suite: RewardSuite, name: str, fn: Any, on_error: str, extra: dict[str, Any],
                 timeout_s: float | None = None):
        self.suite, self.fn, self.on_error, self.extra, self.timeout_s = suite, fn, on_error, extra, timeout_s
        self.__name__ = name
        params = inspect.signature(fn).parameters
        self.takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self.declared = {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))
        self._warned = False

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs: Any) -> list[float | None]:
        if ROLLOUT_MESSAGES in kwargs:  # our cached rollouts (rollout/trl_rollout.py): the episodes as played
            completions = kwargs.pop(ROLLOUT_MESSAGES)
        if ROLLOUT_PROMPTS in kwargs:
            prompts = kwargs.pop(ROLLOUT_PROMPTS)
        values = self.compute(prompts, completions, completion_ids, kwargs)
        try:
            self.suite.record(self.__name__, values, prompts, completions, kwargs)
        except Exception:  # noqa: BLE001 - a trace that cannot be written must not stop training
            log.exception("could not write the traces of this batch")
        return values

    def compute(self, prompts: Any, completions: list[Any], completion_ids: Any, kwargs: dict[str, Any],
                count: bool = True) -> list[float | None]:
        """The reward's values for a batch, isolated (a failure scores `on_error`); nothing is recorded. With
        `count` off a failure is not counted or warned about (a look-ahead score, e.g. signal-first sampling)."""
        n = len(completions)
        available = dict(kwargs, prompts=prompts, completions=completions, completion_ids=completion_ids)
        try:
            if "environments" in self.declared or self.takes_all:
                available["environments"] = self.suite.environments_for(completions, kwargs)
            args = available if self.takes_all else {k: v for k, v in available.items() if k in self.declared}
            values = self._validate(self._invoke({**args, **self.extra}), n)
            if self.suite.on_failure == "skip" and self.suite.env_cls is not None:
                envs = self.suite.environments_for(completions, kwargs) or []
                values = [None if getattr(env, "failure", None) else v for v, env in zip(values, envs)] or values
            return values
        except EnvironmentFailures:
            raise
        except Exception as exc:  # noqa: BLE001 - a reward must never stop training unless on_error=raise
            if self.on_error == "raise":
                raise
            if count:
                self.suite.error_counts[self.__name__] += 1
                if not self._warned:
                    self._warned = True
                    index = getattr(exc, "index", 0)
                    sample = completion_text(completions[index])[:200] if completions else ""
                    log.warning("reward '%s' failed (%s: %s); scoring it '%s'. Sample completion #%d: %r",
                                self.__name__, type(exc).__name__, exc, self.on_error, index, sample)
            return [0.0 if self.on_error == "zero" else None] * n

    def _invoke(self, args: dict[str, Any]) -> Any:
        if self.is_async:
            return _run_coroutine(self.fn(**args), self.timeout_s)
        if self.timeout_s is None:
            return self.fn(**args)
        return _run_with_timeout(self.fn, args, self.timeout_s)

    def _validate(self, values: Any, n: int) -> list[float | None]:
        if hasattr(values, "tolist") and not isinstance(values, (list, tuple)):
            values = values.tolist()  # numpy / torch arrays, as TRL accepts
        if not isinstance(values, (list, tuple)):
            raise TypeError(f"returned {type(values).__name__}, expected a list of {n} numbers")
        if len(values) != n:
            raise ValueError(f"returned {len(values)} values for {n} completions")
        out: list[float | None] = []
        for i, v in enumerate(values):
            if v is None:
                out.append(None)
                continue
            if type(v) not in (float, int) and not isinstance(v, numbers.Real):  # fast path: ABC checks are slow
                raise _at(TypeError(f"returned a non-number {v!r} for completion #{i}"), i)
            if not math.isfinite(v):
                raise _at(ValueError(f"returned {v} for completion #{i}"), i)
            out.append(float(v))
        return out


def _at(exc: Exception, index: int) -> Exception:
    exc.index = index  # type: ignore[attr-defined]
    return exc


def _run_with_timeout(fn: Any, args: dict[str, Any], timeout_s: float) -> Any:
    """Call `fn` in a daemon thread and wait `timeout_s`: a reward that hangs can neither stall training nor keep
    the process from exiting (its late result is dropped)."""
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = fn(**args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=call, daemon=True, name="reward-call")
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise RewardTimeout(f"took longer than timeout_s={timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _run_coroutine(coro: Any, timeout_s: float | None) -> Any:
    """Await an async reward from TRL's synchronous reward loop (in a helper thread if a loop already runs here).
    Only the timeout itself becomes a RewardTimeout; the reward's own exceptions (TimeoutError too) pass through.
    The loop is closed without waiting for work the reward left in threads."""

    async def bounded() -> Any:
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            task.cancel()
            raise RewardTimeout(f"took longer than timeout_s={timeout_s:g} s")
        return task.result()

    def run() -> Any:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(bounded())
        finally:
            loop.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    box: dict[str, Any] = {}

    def in_thread() -> None:
        try:
            box["value"] = run()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    thread = threading.Thread(target=in_thread, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
