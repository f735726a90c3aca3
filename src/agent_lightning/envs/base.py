"""The environment contract: TRL's `environment_factory` plus a verified `outcome`.

An environment is a class registered with `@environment("name")`:

  - `tasks(split, size, seed)` (classmethod) returns task rows: dicts of JSON-able scalars with at least
    `task_id` and `prompt` (the user message). Other keys are the verifier's data (e.g. `answer`); they become
    dataset columns, so rewards can also declare them as arguments. `split` is 'train' or 'test'; a class that
    sets `has_dev_split = True` also serves 'dev': tasks for choosing recipes, built from material neither of
    the other splits uses (the filesystem environment: a third word pool), unseen in training as test tasks are.
    Without it, `eval --split dev` takes training-split tasks that training does not use (evaluate.split_tasks).
  - `reset(**task)` is TRL's hook: it receives the task row and returns extra prompt text or None. TRL keeps a
    pool of instances and resets them for every rollout, so `reset` must drop all state of the last episode.
  - public methods are the tools (type hints + Google-style docstrings, as TRL requires). A class with no
    public methods is single-turn: the completion is the answer.
  - `_finish(final_text)` verifies the episode and returns an `Outcome`, which every reward reads as
    `env.outcome`. `final_text` is the last assistant message. (Private, so TRL does not make it a tool.)
  - `for_run(cfg)` (optional classmethod) returns the class a run uses, bound to what the run configured: the
    `agent` environment reads its task file and agent command from the `agent` section this way. A run resolves
    its class once with `envs.environment_class(cfg)`; other environments never see the config.

Tools are wrapped when the subclass is created (`__init_subclass__`), so every environment gets the same
behaviour without writing it: each call is recorded in `self.calls`; a wrong argument list, a `SandboxError`,
a `ToolError`, or a malformed call from the parser (the `__malformed__` argument, see chat/tool_format.py) is
raised as a `ToolError` with a one-line message for the policy (TRL returns it as `{"error": ...}` and counts
it in `tools/failure_frequency`) and counted in `outcome.tool_errors`; long results are truncated to
`max_tool_output_chars`. Any other exception is a bug in the environment and keeps its traceback in the log,
but still reaches the policy as an error instead of stopping training. An exception in `reset` or in the verifier
(`_finish`) is isolated the same way: the episode is marked `failure` (a one-line reason), its outcome is a
failure, the traceback is logged once per distinct error, and the reward suite counts it and applies
`env.on_failure` / `env.max_failure_share` (rewarding.py). `reset` is wrapped too: an instance
built with a memory context (`environment_factory(env_cls, memory)` in envs/__init__.py sets `env.memory`)
appends what that context retrieves for the task (code chunks, SOPs) to what reset returns and records it in
`self.retrieved` (memory/context.py). The contract holds no process-wide state: what an instance knows, it was
handed.

Not covered here: sandboxing (see sandbox/), the tool loop itself (TRL runs it).
"""

from __future__ import annotations

import functools
import inspect
import logging
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from agent_lightning.chat.messages import MALFORMED, content_text
from agent_lightning.errors import UserError
from agent_lightning.sandbox.errors import SandboxError

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
RESERVED = ("reset", "get_reward")


class ToolError(Exception):
    """A tool call that failed in a way the policy should read and can fix."""


@dataclass
class Outcome:
    """What the environment verified about one episode."""

    success: bool = False
    checks: dict[str, bool] = field(default_factory=dict)
    answer: str | None = None
    expected: str | None = None
    tool_calls: int = 0
    tool_errors: int = 0
    turns: int = 0
    verified: bool = False
    detail: str = ""  # what the verifier saw beyond the check names, e.g. "extra files: a.txt"
    # Checks that measure the change the task asks for (the rest hold what must stay as it was). Empty: all are.
    targets: list[str] = field(default_factory=list)
    reward: float | None = None  # a reward the episode reported itself (the agent environment's agent); else None
    # Partial credit in [0, 1) of a failed check, by name (e.g. the share of a file's expected words it has); a
    # failed check not named here earns 0. Only `graded_progress` counts it.
    credit: dict[str, float] = field(default_factory=dict)

    @property
    def progress(self) -> float:
        """Share of the task's own checks passed (success as 0/1 when there are no per-check results).

        With `targets`, only the asked-for change earns credit and each other check that failed (something that
        had to stay as it was and did not) counts as one more failed check: an episode that does nothing scores
        0, not the share of the workspace it left alone. Without `targets`, the fraction of all checks passed."""
        return self._share(lambda name: float(self.checks[name]))

    @property
    def graded_progress(self) -> float:
        """`progress` with each failed check earning its `credit` instead of 0: a near miss (a file with one
        wrong word of four) scores above a miss (nothing written), so a group whose episodes all failed can still
        carry signal. Equals `progress` when no check has credit."""
        return self._share(lambda name: 1.0 if self.checks[name] else min(self.credit.get(name, 0.0), 1.0))

    def _share(self, score: Callable[[str], float]) -> float:
        """Sum of `score(check)` over the targets (all checks without targets), over their count plus the broken
        non-target checks (see `progress`); success as 0/1 when there are no checks."""
        if not self.checks:
            return float(self.success)
        if not self.targets:
            return sum(score(name) for name in self.checks) / len(self.checks)
        broken = sum(not ok for name, ok in self.checks.items() if name not in self.targets)
        return sum(score(name) for name in self.targets) / (len(self.targets) + broken)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "progress": self.progress, "graded_progress": self.graded_progress}


def _with_memory(reset: Any) -> Any:
    """Wrap a subclass's reset so the outermost call appends what the instance's memory retrieves to its result."""

    @functools.wraps(reset)
    def wrapped(self: Environment, *args: Any, **task: Any) -> str | None:
        outer = not getattr(self, "_in_reset", False)
        self._in_reset = True
        if outer:
            self.failure = None
        try:
            observation = reset(self, *args, **task)
        except Exception as exc:  # noqa: BLE001 - a broken environment fails its episode, not the run
            if not outer:
                raise
            self.task = task
            self._fail("reset", exc)
            return None
        finally:
            if outer:
                self._in_reset = False
        if not outer:
            return observation
        self.retrieved = None
        memory = getattr(self, "memory", None)
        return memory.augment(self, task, observation) if memory is not None else observation

    wrapped._adds_memory = True  # type: ignore[attr-defined]
    return wrapped


class Environment:
    """Base class; see the module docstring for the contract."""

    env_name: ClassVar[str] = ""
    system_prompt: ClassVar[str] = ""
    max_tool_output_chars: ClassVar[int] = 2000
    has_dev_split: ClassVar[bool] = False  # `tasks('dev', ...)` draws held-out dev tasks (see the module docstring)
    _failures_logged: ClassVar[set[str]] = set()  # which distinct errors have had their traceback logged

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, fn in list(vars(cls).items()):
            if isinstance(fn, staticmethod) and not name.startswith("_"):
                raise TypeError(f"{cls.__name__}.{name}: a public staticmethod would become a tool that TRL calls "
                                "without the environment; make it private (_{name}) or a module-level function.")
            if inspect.isfunction(fn) and not name.startswith("_") and name not in RESERVED \
                    and not getattr(fn, "_is_tool_wrapper", False):
                setattr(cls, name, _as_tool(fn))
        if inspect.isfunction(vars(cls).get("reset")) and not getattr(cls.reset, "_adds_memory", False):
            cls.reset = _with_memory(cls.reset)

    def __init__(self) -> None:
        self.task: dict[str, Any] = {}
        self.outcome = Outcome()
        self.calls: list[dict[str, Any]] = []
        self.retrieved: dict[str, Any] | None = None  # what memory put in this episode's prompt (memory/context.py)
        self.memory: Any = None  # a memory.context.MemoryContext, set by envs.environment_factory
        self.failure: str | None = None  # why the environment itself failed this episode (reset or verifier raised)

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    @classmethod
    def tool_names(cls) -> list[str]:
        return [
            name
            for name, _ in inspect.getmembers(cls, predicate=inspect.isfunction)
            if not name.startswith("_") and name not in RESERVED
        ]

    def reset(self, **task: Any) -> str | None:
        self.task = task
        self.outcome = Outcome()
        self.calls = []
        return None

    def _finish(self, final_text: str) -> Outcome:
        raise NotImplementedError

    def _finish_episode(self, completion: Any) -> Outcome:
        """Verify once after the rollout: `_finish` on the last assistant text, plus turn and tool counts."""
        messages = completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
        assistant = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
        try:
            outcome = Outcome() if self.failure else self._finish(
                content_text(assistant[-1].get("content")) if assistant else "")
        except Exception as exc:  # noqa: BLE001 - a verifier bug fails the episode, not the run
            self._fail("verifier", exc)
            outcome = Outcome()
        if self.failure:
            outcome.success, outcome.detail = False, f"environment failure: {self.failure}"
        outcome.turns = max(len(assistant), 1)
        outcome.tool_calls = len(self.calls)
        outcome.tool_errors = sum(1 for c in self.calls if not c["ok"])
        outcome.verified = True
        self.outcome = outcome
        return outcome


    def _fail(self, where: str, exc: Exception) -> None:
        """Mark this episode failed by the environment itself; the traceback is logged once per distinct error."""
        self.failure = f"{where} raised {type(exc).__name__}: {exc}".splitlines()[0][:300]
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        key = f"{type(self).__name__}:{where}:{type(exc).__name__}:{frame.filename if frame else ''}:" \
              f"{frame.lineno if frame else ''}"  # one error = one raising line, whatever its message says
        if key in Environment._failures_logged:
            log.warning("environment %s: %s", self.env_name or type(self).__name__, self.failure)
        else:
            Environment._failures_logged.add(key)
            log.error("environment %s: %s (the episode counts as failed; this traceback is shown once)",
                      self.env_name or type(self).__name__, self.failure, exc_info=exc)


Environment.reset = _with_memory(Environment.reset)  # type: ignore[method-assign]


def tool_message(env: Environment, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run one parsed tool call as TRL's tool loop does and return its `tool` message: the result, or
    `{'error': ...}` as text. Only the environment's tools can be called (not `reset` or private methods)."""
    if name not in env.tool_names():
        result: Any = {"error": f"Tool {name} not found."}
    else:
        try:
            result = getattr(env, name)(**arguments)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the policy
            result = {"error": str(exc)}
    return {"role": "tool", "name": name, "content": str(result)}


def _as_tool(fn: Any) -> Any:
    """Wrap one tool method (see module docstring); the signature, hints and docstring stay TRL-readable."""
    signature = inspect.signature(fn)
    usage = f"{fn.__name__}({', '.join(p for p in signature.parameters if p != 'self')})"

    @functools.wraps(fn)
    def tool(self: Environment, /, *args: Any, **kwargs: Any) -> Any:
        record = {"name": fn.__name__, "arguments": dict(kwargs), "ok": False}
        self.calls.append(record)
        try:
            if MALFORMED in kwargs:
                raise ToolError(str(kwargs[MALFORMED]))
            try:
                signature.bind(self, *args, **kwargs)
            except TypeError as exc:
                got = ", ".join(kwargs) or "no arguments"
                raise ToolError(f"{exc} (got {got}); call it as {usage}") from None
            result = fn(self, *args, **kwargs)
        except (ToolError, SandboxError) as exc:
            record["error"] = str(exc)
            raise ToolError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - an environment bug must not stop training
            log.exception("tool %s raised", fn.__name__)
            record["error"] = f"{type(exc).__name__}: {exc}"
            raise ToolError(f"internal error in {fn.__name__}: {type(exc).__name__}: {exc}") from None
        if isinstance(result, str) and len(result) > self.max_tool_output_chars:
            result = result[: self.max_tool_output_chars] + f"\n[... truncated at {self.max_tool_output_chars} characters]"
        record["ok"] = True
        record["result"] = result
        return result

    tool._is_tool_wrapper = True  # type: ignore[attr-defined]
    return tool


def tasks_in_tiers(env_cls: type, split: str, size: int, seed: int, tiers: list[int] | None) -> list[dict[str, Any]]:
    """The first `size` tasks of `split` whose `tier` is in `tiers` (all tasks when `tiers` is empty): the
    environment is asked for more tasks until enough match, so the rows are the same ones `tasks` gives, in order.
    Used for training tasks (`env.train_tiers`); the test split always keeps every tier."""
    if not tiers:
        return env_cls.tasks(split, size, seed)
    wanted, asked = set(tiers), size
    while True:
        rows = env_cls.tasks(split, asked, seed)
        kept = [row for row in rows if row.get("tier") in wanted]
        if not kept and rows:  # also when the split has fewer rows than asked: an empty selection is a mistake
            have = sorted({row.get("tier") for row in rows if row.get("tier") is not None}, key=str)
            theirs = f"theirs: {have}; pick tiers from that list" if have else "they have no tier"
            raise UserError(f"env.train_tiers={sorted(wanted)}: none of the first {len(rows)} {split} tasks of "
                            f"'{env_cls.env_name}' is in those tiers ({theirs}) or leave env.train_tiers empty "
                            "(--set env.train_tiers=[]).")
        if len(kept) >= size or len(rows) < asked:
            return kept[:size]
        asked = -(-asked * size // len(kept)) + 1  # enough at the rate seen so far, and at least one more


def check_split(split: str, splits: tuple[str, ...] = SPLITS) -> None:
    if split not in splits:
        raise UserError(f"split '{split}' is not one of {', '.join(splits)}.")
