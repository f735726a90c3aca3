"""Rollout recording: the calls an agent made through the gateway, their rewards, and the training samples they make.

    store = RolloutStore()
    rollout = store.open()                                  # or store.add_call(rid, call) opens `rid` itself
    store.add_call(rollout.rollout_id, Call(prompt_ids, completion_ids, logprobs, messages, response, ...))
    store.set_reward(rid, reward=1.0)                       # the rollout's reward, and/or
    store.set_reward(rid, rewards=[None, 0.5])              # one number (or None) per recorded call
    store.finish(rid)
    store.get(rid).to_dict()    # {"rollout_id", "finished", "reward", "calls": [...], "samples": [...]}

A call holds exactly what the policy read and wrote: `prompt_ids` (the rendered conversation, tokenized as it was
fed), `completion_ids` (the generated tokens, the end-of-turn token included when the policy ended its turn) and
`logprobs` (one per generated token, under the distribution it was sampled from).

Samples (`merge_calls`, pure): a call whose `prompt_ids` start with the whole token sequence (prompt + completion) of
an earlier sample of the same rollout continues that sample, newest sample first: the tokens between them (tool
results, the template's next turn header) are appended with `generated_mask` 0 and logprob 0.0, then the call's own
completion with mask 1 and its logprobs. This is the trajectory `rollout.episodes` records for a multi-turn episode
(`prompt_ids`, `completion_ids`, `generated_mask`), for agents that send the conversation back as the policy wrote
it. A call that continues no sample (the agent rewrote the history, or the re-rendered reply is not token-identical
to what was generated) starts a sample of its own. A sample's reward is the rollout's reward when one was set,
else the sum of its calls' own rewards (None when there are neither).

Not covered: persistence (rollouts live in memory until deleted or the process ends) and limits on their number;
merging a call into a sample that a later call already continued (it starts its own sample).
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

ROLLOUT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class UnknownRollout(KeyError):
    """No rollout with this id."""


class RolloutClosed(ValueError):
    """The rollout was finished: it takes rewards but no more calls."""


class BadRollout(ValueError):
    """A malformed rollout id or reward."""


@dataclass
class Call:
    """One chat completion made under a rollout."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    messages: list[dict[str, Any]] = field(default_factory=list)  # the request's conversation, as rendered
    response: dict[str, Any] = field(default_factory=dict)  # the assistant message returned (OpenAI format)
    finish_reason: str = "stop"
    tools: list[dict[str, Any]] | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    reward: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_ids": self.prompt_ids, "completion_ids": self.completion_ids, "logprobs": self.logprobs,
                "messages": self.messages, "response": self.response, "finish_reason": self.finish_reason,
                "tools": self.tools, "sampling": self.sampling, "reward": self.reward}


@dataclass
class Sample:
    """One training sequence: a prompt and everything after it, with the policy's own tokens marked."""

    prompt_ids: list[int]
    completion_ids: list[int]
    generated_mask: list[int]
    logprobs: list[float]
    calls: list[int]  # indices of the calls merged into it, in order
    reward: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_ids": self.prompt_ids, "completion_ids": self.completion_ids,
                "generated_mask": self.generated_mask, "logprobs": self.logprobs, "calls": self.calls,
                "reward": self.reward}


def merge_calls(calls: list[Call], reward: float | None = None) -> list[Sample]:
    """The samples of a rollout's `calls` (see the module docstring); `reward` is the rollout's own."""
    samples: list[Sample] = []
    for k, call in enumerate(calls):
        for sample in reversed(samples):
            seq = len(sample.prompt_ids) + len(sample.completion_ids)
            if len(call.prompt_ids) >= seq and call.prompt_ids[:len(sample.prompt_ids)] == sample.prompt_ids \
                    and call.prompt_ids[len(sample.prompt_ids):seq] == sample.completion_ids:
                gap = call.prompt_ids[seq:]
                sample.completion_ids += gap + call.completion_ids
                sample.generated_mask += [0] * len(gap) + [1] * len(call.completion_ids)
                sample.logprobs += [0.0] * len(gap) + list(call.logprobs)
                sample.calls.append(k)
                break
        else:
            samples.append(Sample(list(call.prompt_ids), list(call.completion_ids), [1] * len(call.completion_ids),
                                  list(call.logprobs), [k]))
    for sample in samples:
        own = [calls[k].reward for k in sample.calls if calls[k].reward is not None]
        sample.reward = reward if reward is not None else (sum(own) if own else None)
    return samples


@dataclass
class Rollout:
    """The calls of one agent run, its reward and whether it is finished."""

    rollout_id: str
    created: float = field(default_factory=time.time)
    calls: list[Call] = field(default_factory=list)
    reward: float | None = None
    finished: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"rollout_id": self.rollout_id, "created": self.created, "finished": self.finished,
                "reward": self.reward, "calls": [c.to_dict() for c in self.calls],
                "samples": [s.to_dict() for s in merge_calls(self.calls, self.reward)]}

    def summary(self) -> dict[str, Any]:
        return {"rollout_id": self.rollout_id, "created": self.created, "finished": self.finished,
                "reward": self.reward, "calls": len(self.calls)}


def check_rollout_id(rollout_id: str) -> str:
    if not isinstance(rollout_id, str) or not ROLLOUT_ID.fullmatch(rollout_id):
        raise BadRollout(f"rollout id {rollout_id!r}: use 1-128 letters, digits, '.', '_', ':' or '-'.")
    return rollout_id


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRollout(f"{what}: expected a finite number, got {value!r}.")
    return float(value)


class RolloutStore:
    """Rollouts by id, safe to use from several threads."""

    def __init__(self) -> None:
        self._rollouts: dict[str, Rollout] = {}
        self._lock = threading.Lock()

    def open(self, rollout_id: str | None = None) -> Rollout:
        """The rollout `rollout_id` (opened now if new; a fresh id when None)."""
        rollout_id = check_rollout_id(rollout_id) if rollout_id is not None else f"ro-{uuid.uuid4().hex[:16]}"
        with self._lock:
            return self._rollouts.setdefault(rollout_id, Rollout(rollout_id))

    def get(self, rollout_id: str) -> Rollout:
        with self._lock:
            if rollout_id not in self._rollouts:
                raise UnknownRollout(f"no rollout '{rollout_id}' (open one with POST /rollouts, or make a call "
                                     f"under /rollouts/{rollout_id}/v1).")
            return self._rollouts[rollout_id]

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._rollouts)

    def summaries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rollout.summary() for rollout in self._rollouts.values()]

    def check_open(self, rollout_id: str) -> None:
        """Raise BadRollout for a malformed id and RolloutClosed for a finished rollout (checked before generating);
        an unknown id is fine: its first call opens it."""
        check_rollout_id(rollout_id)
        with self._lock:
            rollout = self._rollouts.get(rollout_id)
        if rollout is not None and rollout.finished:
            raise RolloutClosed(f"rollout '{rollout_id}' is finished; open another one for more calls.")

    def add_call(self, rollout_id: str, call: Call) -> int:
        """Record `call` (opening the rollout if new); its index among the rollout's calls."""
        rollout = self.open(rollout_id)
        with self._lock:
            if rollout.finished:
                raise RolloutClosed(f"rollout '{rollout_id}' is finished; open another one for more calls.")
            rollout.calls.append(call)
            return len(rollout.calls) - 1

    def set_reward(self, rollout_id: str, reward: Any = None, rewards: Any = None) -> Rollout:
        """Set the rollout's `reward` and/or one reward per call (`rewards`: a number or None for each call)."""
        rollout = self.get(rollout_id)
        if reward is None and rewards is None:
            raise BadRollout('give "reward": a number, and/or "rewards": one number (or null) per recorded call.')
        value = _number(reward, "reward") if reward is not None else None
        per_call = None
        if rewards is not None:
            if not isinstance(rewards, list) or len(rewards) != len(rollout.calls):
                raise BadRollout(f"rewards: expected a list of {len(rollout.calls)} numbers or nulls (one per "
                                 f"recorded call), got {rewards!r}."[:300])
            per_call = [None if r is None else _number(r, f"rewards[{i}]") for i, r in enumerate(rewards)]
        with self._lock:
            if value is not None:
                rollout.reward = value
            for call, r in zip(rollout.calls, per_call or []):
                call.reward = r
        return rollout

    def finish(self, rollout_id: str) -> Rollout:
        rollout = self.get(rollout_id)
        with self._lock:
            rollout.finished = True
        return rollout

    def delete(self, rollout_id: str) -> None:
        with self._lock:
            if self._rollouts.pop(rollout_id, None) is None:
                raise UnknownRollout(f"no rollout '{rollout_id}'.")
