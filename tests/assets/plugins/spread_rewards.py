"""Rewards for the multi-process and resume tests: numbers that differ between tasks and samples, and a failure.

Loaded with `--plugin-dir tests/assets/plugins`; not part of the reward library.
"""

import hashlib

from agent_lightning import reward


def _text(completion) -> str:
    if isinstance(completion, str):
        return completion
    return " ".join(str(m.get("content") or "") for m in completion)


@reward("task_hash")
def task_hash(completions, task_id, **kwargs):
    """A fixed number per task, so each process's share of a batch has its own mean."""
    return [int(hashlib.md5(t.encode()).hexdigest(), 16) % 100 / 100 for t in task_id]


@reward("vowel_share")
def vowel_share(completions, **kwargs):
    """Share of vowels in the completion: differs between samples of one prompt, so GRPO has a gradient."""
    return [sum(ch in "aeiouAEIOU" for ch in _text(c)) / max(1, len(_text(c))) for c in completions]


@reward("always_raises")
def always_raises(completions, **kwargs):
    """Fails on every call: each process counts its own failures."""
    raise RuntimeError("raised on purpose")
