"""`agent`: your own agent program, trained and evaluated through the gateway; tasks from a JSONL file.

    python main_agent_lightning.py --algo grpo --set env.name=agent \\
        --set agent.command="python examples/openai_agent/agent.py" --set agent.tasks=examples/openai_agent/tasks.jsonl

The agent is a program of yours (any language or framework that speaks the OpenAI chat-completions API). Each
rollout runs it once against the gateway serving the policy being trained (serve/agents.py runs it, train/
agent_rollout.py hands its recorded tokens to TRL); this environment holds what that run verified, so the
built-in rewards (`task_success`, `answer_match`, `agent_reward`, ...) and traces read it as they read any other
environment's `outcome`.

Tasks (`agent.tasks`): one JSON object per line with at least `prompt` (a non-empty string); optional `task_id`
(unique; default `line-<n>`), `answer` (what a reply is checked against when the agent reports no reward),
`tier` (an integer, for `env.train_tiers` and per-tier reports), `split` (`train` or `test`) and any other fields
the agent reads: the agent gets the whole line (plus its `task_id`) as JSON. Rows without `split` are split by a
hash of their content (everything but `task_id`): one in five goes to `test`, deterministically, so a task is in
the same split however the file is ordered or grows. Lines with the same content are kept once, and content that
is in `test` is never in `train`. `tasks(split, size, seed)` returns the first `size` rows of the split in file
order (the seed is not used: the file fixes the tasks).

Binding: environments do not see the config, so the run's class comes from `for_run(cfg)` (called by
`envs.environment_class`): a subclass holding the `agent` section and the parsed task file. The class registered as
`agent` itself has no tasks, and says so.

Outcome of one rollout (set by `_record` from what the run left, verified by `_finish`):
  - the agent crashed (non-zero exit, or could not start), timed out (`agent.timeout_s`) or made no model call:
    the episode is an environment failure (`failure`, with the exit code and the end of its stderr), counted by
    the reward suite and scored by `env.on_failure`;
  - it reported a reward (POSTed to its rollout, else printed as its last stdout line `{"reward": x}`):
    `outcome.reward` is that number and `success` is `reward >= agent.success_reward`;
  - it reported nothing: its last reply is checked against the task's `answer` as `arithmetic` checks answers
    (the last number, or the last line, compared exactly); a task without `answer` makes it a failure.
`calls` lists the tool calls the policy wrote (a call the parser could not read counts as a failed one); whether the
agent's tools then succeeded is the agent's business and not recorded. Not covered: agents that need an
interactive terminal, tasks whose fields are not JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar

from agent_lightning import environment
from agent_lightning.chat.messages import MALFORMED
from agent_lightning.envs import Environment, Outcome, check_split
from agent_lightning.environments.arithmetic import NUMBER, final_answer
from agent_lightning.errors import UserError

SPLIT_FIELDS = ("task_id", "split")  # not part of a task's content (its split hash)


def agent_argv(command: str) -> list[str]:
    """The agent command as an argument list (one-line UserError for an empty or unparsable one, or a program that
    is not there). A bare `python` or `python3` is the interpreter running Agent Lightning (so the agent sees the
    packages installed with it); give a path to run another."""
    if not command or not command.strip():
        raise UserError('env.name=agent needs agent.command: the program to run per rollout, e.g. '
                        '--set agent.command="python examples/openai_agent/agent.py".')
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UserError(f"agent.command: cannot split {command!r} like a shell line ({exc}).") from None
    if not argv:
        raise UserError("agent.command: empty command.")
    if argv[0] in ("python", "python3"):  # the interpreter running this: the agent sees the same packages
        argv[0] = sys.executable
    program = argv[0]
    if shutil.which(program) is None and not (os.sep in program and Path(program).is_file()):
        raise UserError(f"agent.command: program '{program}' not found (on PATH, or as a file from {os.getcwd()}).")
    return argv


def content_key(row: dict[str, Any]) -> str:
    """The task's content as canonical JSON: every field but `task_id` and `split`."""
    return json.dumps({k: v for k, v in row.items() if k not in SPLIT_FIELDS}, sort_keys=True, ensure_ascii=False)


def split_of(row: dict[str, Any]) -> str:
    """`test` for one task in five, by a hash of its content; `train` otherwise (unless the row names its split)."""
    return "test" if int(hashlib.sha256(content_key(row).encode()).hexdigest()[:8], 16) % 5 == 0 else "train"


def load_tasks(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """{'train': rows, 'test': rows} of a task file (see the module docstring); one-line UserError naming the file
    and line for anything malformed."""
    path = Path(path)
    if not str(path) or not path.is_file():
        raise UserError(f"agent.tasks: no task file at '{path}' (a JSONL file: one {{\"prompt\": ...}} per line).")
    by_split: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    seen: dict[str, str] = {}  # content -> split
    ids: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise UserError(f"{where}: not valid JSON ({exc}).") from None
            if not isinstance(row, dict):
                raise UserError(f"{where}: expected a JSON object with a `prompt`, got {type(row).__name__}.")
            if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
                raise UserError(f"{where}: `prompt` must be a non-empty string.")
            split = row.get("split")
            if split is not None and split not in ("train", "test"):
                raise UserError(f"{where}: `split` must be 'train' or 'test', got {split!r}.")
            if "tier" in row and (isinstance(row["tier"], bool) or not isinstance(row["tier"], int)):
                raise UserError(f"{where}: `tier` must be an integer, got {row['tier']!r}.")
            task_id = str(row.get("task_id") or f"line-{number}")
            if task_id in ids:
                raise UserError(f"{where}: task_id '{task_id}' is used by an earlier line; task ids must be unique.")
            ids.add(task_id)
            key = content_key(row)
            split = split or split_of(row)
            if key in seen:
                if seen[key] == "train" and split == "test":  # the same content named as test later: test wins
                    by_split["train"] = [r for r in by_split["train"] if r["_key"] != key]
                    seen[key] = "test"
                    by_split["test"].append(_row(row, task_id, key))
                continue
            seen[key] = split
            by_split[split].append(_row(row, task_id, key))
    for rows in by_split.values():
        for row in rows:
            del row["_key"]
    if not by_split["train"] and not by_split["test"]:
        raise UserError(f"agent.tasks: {path} holds no task.")
    return by_split


def _row(line: dict[str, Any], task_id: str, key: str) -> dict[str, Any]:
    """A task row: the columns training and rewards read, and the whole line (`task`) for the agent."""
    task = {**{k: v for k, v in line.items() if k != "split"}, "task_id": task_id}
    answer = line.get("answer")
    return {"task_id": task_id, "prompt": line["prompt"], "answer": None if answer is None else str(answer),
            "tier": line.get("tier"), "task": json.dumps(task, ensure_ascii=False), "_key": key}


def is_agent_env(env_cls: Any) -> bool:
    """Whether `env_cls` is played by an agent program through the gateway (this environment, or a subclass)."""
    return bool(getattr(env_cls, "external_agent", False))


@environment("agent")
class AgentEnv(Environment):
    """Your own agent program (agent.command) on tasks from a JSONL file (agent.tasks), through the gateway."""

    external_agent: ClassVar[bool] = True  # rollouts are played by serve/agents.py, not the built-in loop
    agent: ClassVar[Any] = None  # the run's `agent` config section, bound by for_run
    _tasks: ClassVar[dict[str, list[dict[str, Any]]] | None] = None

    @classmethod
    def for_run(cls, cfg: Any) -> type["AgentEnv"]:
        """This environment bound to the run's `agent` section: its command checked and its task file read."""
        section = cfg.agent
        agent_argv(section.command)
        tasks = load_tasks(section.tasks) if section.tasks else None
        if tasks is None:
            raise UserError("env.name=agent needs agent.tasks: a JSONL file of tasks, one {\"prompt\": ...} per line "
                            "(e.g. --set agent.tasks=examples/openai_agent/tasks.jsonl).")
        return type(cls.__name__, (cls,), {"agent": section, "_tasks": tasks, "__module__": cls.__module__,
                                           "__doc__": cls.__doc__, "__qualname__": cls.__qualname__})

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        check_split(split)
        if cls._tasks is None:
            raise UserError("env 'agent' reads its tasks from the file agent.tasks: run it with "
                            "--set agent.tasks=FILE --set agent.command=\"...\".")
        return [dict(row) for row in cls._tasks[split][:size]]

    def reset(self, **task: Any) -> str | None:
        super().reset(**task)
        self._reported: float | None = None
        self._final_text: str | None = None
        return None

    def _record(self, *, reward: float | None, failure: str | None, final_text: str | None,
                tool_calls: list[dict[str, Any]]) -> None:
        """What the rollout left: the reward the agent reported (or None), why it failed (or None), its last reply
        and the tool calls the policy wrote ({"name", "arguments"} each)."""
        self._reported, self._final_text = reward, final_text
        self.failure = failure
        self.calls = [{"name": call.get("name"), "arguments": call.get("arguments"),
                       "ok": not (isinstance(call.get("arguments"), dict) and MALFORMED in call["arguments"])}
                      for call in tool_calls]

    def _finish(self, final_text: str) -> Outcome:
        text = self._final_text if getattr(self, "_final_text", None) is not None else final_text
        expected = self.task.get("answer")
        numeric = expected is not None and bool(NUMBER.fullmatch(str(expected)))
        answer = final_answer(text, numeric) if expected is not None else None
        reported = getattr(self, "_reported", None)
        if reported is not None:
            ok = reported >= getattr(self.agent, "success_reward", 1.0)
            return Outcome(success=ok, checks={"reward": ok}, answer=answer, expected=expected, reward=reported,
                           detail=f"the agent reported reward {reported:g}")
        if expected is not None:
            ok = answer == str(expected) if numeric else answer.lower() == str(expected).lower()
            return Outcome(success=ok, checks={"answer": ok}, answer=answer, expected=str(expected),
                           detail="the agent reported no reward; its last reply was checked against the task's answer")
        self.failure = "the agent reported no reward and the task has no `answer` to check its reply against"
        return Outcome()
