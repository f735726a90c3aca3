"""Execute scripted tool calls against one fresh environment instance: `env run-calls`.

    python main_agent_lightning.py env run-calls --env filesystem --calls calls.jsonl [--task-id fs-test-00003]

Each input line is `{"name": TOOL, "arguments": {...}}` and yields exactly one output line, in order:
`{"ok": true, "output": ...}` or `{"ok": false, "error": "..."}` (also for a line that is not JSON, not an
object, or names an unknown tool). The calls go through the same wrapped tool methods TRL calls during
training, in one sandbox: the task's starting workspace with --task-id, an empty one without.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from agent_lightning.errors import UserError, close_matches


def find_task(env_cls: type, task_id: str, seed: int, sizes: dict[str, int]) -> dict[str, Any]:
    for split in ("test", "train"):
        for row in env_cls.tasks(split, sizes[split], seed):
            if row["task_id"] == task_id:
                return row
    raise UserError(f"--task-id {task_id}: no such task in the test ({sizes['test']}) or train "
                    f"({sizes['train']}) split with env.seed={seed}; see its ids in a trace or the env's tasks().")


def run_calls(env: Any, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    tools = env.tool_names()
    for number, line in enumerate(lines, start=1):
        try:
            call = json.loads(line)
        except ValueError as exc:
            yield {"ok": False, "error": f"line {number}: not JSON ({exc.msg}); expected {{\"name\": TOOL, \"arguments\": {{...}}}}"}
            continue
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            yield {"ok": False, "error": f"line {number}: expected an object with a \"name\" string"}
            continue
        name, arguments = call["name"], call.get("arguments", {})
        if name not in tools:
            yield {"ok": False, "error": f"line {number}: unknown tool '{name}'.{close_matches(name, tools)} Tools: {', '.join(tools)}"}
            continue
        if not isinstance(arguments, dict):
            yield {"ok": False, "error": f"line {number}: \"arguments\" must be an object"}
            continue
        try:
            yield {"ok": True, "output": getattr(env, name)(**arguments)}
        except Exception as exc:  # noqa: BLE001 - every tool failure is reported, one line per call
            yield {"ok": False, "error": str(exc)}
