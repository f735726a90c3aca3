"""The environment contract: TRL's `environment_factory` plus a verified `outcome`.

An environment is a class registered with `@environment("name")`:

  - `tasks(split, size, seed)` (classmethod) returns task rows: dicts of JSON-able scalars with at least
    `task_id` and `prompt` (the user message). Other keys are the verifier's data (e.g. `answer`); they become
    dataset columns, so rewards can also declare them as arguments.
  - `reset(**task)` is TRL's hook: it receives the task row and returns extra prompt text or None.
  - public methods are the tools (type hints + Google-style docstrings, as TRL requires). A class with no
    public methods is single-turn: the completion is the answer.
  - `_finish(completion_text)` is called once after the rollout; it verifies and returns an `Outcome`, which
    every reward then reads as `env.outcome`. (It is private so TRL does not mistake it for a tool.)

Not covered here: sandboxing (see sandbox/), multi-turn tool execution (TRL's tool loop runs the tools).
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from agent_lightning.errors import UserError

SPLITS = ("train", "test")


@dataclass
class Outcome:
    """What the environment verified about one episode."""

    success: bool = False
    checks: dict[str, bool] = field(default_factory=dict)
    answer: str | None = None
    expected: str | None = None
    tool_errors: int = 0
    turns: int = 0
    verified: bool = False

    @property
    def progress(self) -> float:
        """Fraction of verifier checks passed (success as 0/1 when there are no per-check results)."""
        if not self.checks:
            return float(self.success)
        return sum(self.checks.values()) / len(self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "progress": self.progress}


class Environment:
    """Base class; see the module docstring for the contract."""

    env_name: ClassVar[str] = ""
    system_prompt: ClassVar[str] = ""

    def __init__(self) -> None:
        self.task: dict[str, Any] = {}
        self.outcome = Outcome()

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    @classmethod
    def tool_names(cls) -> list[str]:
        return [
            name
            for name, _ in inspect.getmembers(cls, predicate=inspect.isfunction)
            if not name.startswith("_") and name not in ("reset", "get_reward")
        ]

    def reset(self, **task: Any) -> str | None:
        self.task = task
        self.outcome = Outcome()
        return None

    def _finish(self, completion_text: str) -> Outcome:
        raise NotImplementedError


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise UserError(f"split '{split}' is not one of {', '.join(SPLITS)}.")
