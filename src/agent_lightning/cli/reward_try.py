"""Score one completion with one reward, outside training, and show every argument the reward received.

    python main_agent_lightning.py rewards try task_success --env filesystem --task-id fs-test-00003 \\
        --completion my_answer.txt [--set rewards.0.kwargs...] [--plugin-dir DIR]

The completion file is either plain text (the assistant's reply, in any tool-call format the parser reads) or a
JSON list of chat messages (e.g. a `completion` copied from a trace). Its tool calls are executed for real in a
fresh sandbox of the task (the same wrapped tools TRL calls), the episode is verified, and the reward is called
through the same `RewardSuite` path as in training: argument filtering, configured kwargs, isolation. Not
covered: `completion_ids` (no tokenizer is loaded; rewards that need token ids see None) and `trainer_state`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from agent_lightning.errors import UserError


def load_completion(path: str) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UserError(f"--completion {path}: {exc.strerror}.") from None
    try:
        data = json.loads(text)
    except ValueError:
        return text
    return data if isinstance(data, list) and all(isinstance(m, dict) for m in data) else text


def play(env: Any, completion: Any) -> list[dict[str, Any]]:
    """Run the completion's tool calls in `env`; return it as TRL's message list (tool results filled in)."""
    from agent_lightning.chat.segmenter import parse_response_text
    from agent_lightning.chat.messages import MALFORMED
    from agent_lightning.envs import tool_message

    tools = env.tool_names()
    assistant_turns = [completion] if isinstance(completion, str) else [
        m for m in completion if m.get("role", "assistant") == "assistant"]
    messages: list[dict[str, Any]] = []
    for turn in assistant_turns:
        if isinstance(turn, str):
            parsed = parse_response_text(turn, tools)
            calls = [{"name": c.name or (tools[0] if tools else "?"),
                      "arguments": {MALFORMED: c.error} if c.error else c.arguments} for c in parsed.calls]
            content = parsed.content
        else:
            calls = [c.get("function", c) for c in turn.get("tool_calls") or []]
            content = turn.get("content") or ""
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls and tools:
            message["tool_calls"] = [{"type": "function", "function": c} for c in calls]
        messages.append(message)
        for call in calls if tools else []:
            messages.append(tool_message(env, call["name"], call.get("arguments", {})))
    return messages


def try_reward(name: str, env_cls: type, task: dict[str, Any], completion: Any, spec: Any) -> dict[str, Any]:
    """{"received": {argument: value}, "score": float | None, "errors": int, "outcome": {...}}."""
    from agent_lightning.registry import REWARDS
    from agent_lightning.rewarding import RewardSuite, check_kwargs

    plugin = REWARDS.get(name)
    received: dict[str, Any] = {}

    @functools.wraps(plugin.obj)
    def spy(*args: Any, **kwargs: Any) -> Any:
        received.update(kwargs)
        return plugin.obj(*args, **kwargs)

    check_kwargs(name, plugin.obj, spec.kwargs)
    suite = RewardSuite(env_cls)
    suite.add(name, spy, 1.0, "zero", spec.kwargs, spec.timeout_s)
    env = env_cls()
    env.reset(**task)
    messages = play(env, completion) if env.tool_names() else [
        {"role": "assistant", "content": completion if isinstance(completion, str) else json.dumps(completion)}]
    prompt = [{"role": "user", "content": task.get("prompt", "")}]
    columns = {k: [v] for k, v in task.items() if k != "prompt"}
    kwargs = dict(environments=[env] if env.tool_names() else None, trainer_state=None, **columns)
    score = suite.functions[0](prompts=[prompt], completions=[messages], completion_ids=None, **kwargs)
    verified = suite.environments_for([messages], {k: v for k, v in kwargs.items() if v is not None})
    return {"received": received, "score": score[0], "errors": suite.error_counts[name],
            "outcome": verified[0].outcome.to_dict() if verified else None}


def describe(value: Any, width: int = 300) -> str:
    if isinstance(value, list) and value and hasattr(value[0], "outcome"):
        value = [f"<{type(e).__name__} outcome={e.outcome.to_dict()}>" for e in value]
    text = repr(value)
    return text if len(text) <= width else text[:width] + f"... ({len(text)} characters)"
