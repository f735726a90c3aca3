"""Helpers shared by the built-in rewards: read a completion and an environment in any shape, never raise.

Not a reward (the registry skips modules whose name starts with "_"); a built-in reward imports it as
`from agent_lightning.rewards import _completion as _c`.

A TRL completion is a string (plain prompts) or a list of messages (conversational prompts): assistant turns,
assistant turns with `tool_calls` ({"type": "function", "function": {"name": ..., "arguments": {...}}}) and
`{"role": "tool", ...}` results. Content may be a string, None, or a list of parts ({"text": ...}). Anything
else (a missing role, a non-dict item) is read as leniently as possible: a string item is an assistant turn,
a dict without a role is an assistant turn, other items are ignored.

`outcome_of(env, completion)` is the verified outcome: the reward suite verifies every environment before the
rewards run; a reward passed straight to TRL gets unverified instances, so it verifies them here the same way
(`env._finish_episode(completion)`, once: the outcome is marked verified).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent_lightning.chat.messages import MALFORMED, content_text



@dataclass
class Message:
    role: str  # "assistant" or "tool"
    content: str = ""
    tool_calls: list[Any] = field(default_factory=list)  # TRL's parsed calls (assistant turns only)


def messages(completion: Any) -> list[Message]:
    """The completion's assistant turns and tool results, in order (user/system messages are dropped)."""
    if isinstance(completion, str):
        return [Message("assistant", completion)]
    if isinstance(completion, dict):
        completion = [completion]
    if not isinstance(completion, (list, tuple)):
        return []
    out = []
    for item in completion:
        if isinstance(item, str):
            out.append(Message("assistant", item))
        elif isinstance(item, dict):
            role = item.get("role", "assistant")
            if role == "assistant":
                calls = item.get("tool_calls")
                calls = list(calls) if isinstance(calls, list) else []
                out.append(Message("assistant", content_text(item.get("content")), calls))
            elif role == "tool":
                out.append(Message("tool", content_text(item.get("content"))))
    return out


def assistant_turns(completion: Any) -> list[Message]:
    return [m for m in messages(completion) if m.role == "assistant"]


def call_error(call: Any, tool_names: list[str] | None) -> str | None:
    """Why a TRL-parsed call is malformed, or None when it is well-formed (a known tool, JSON-object arguments)."""
    if not isinstance(call, dict):
        return "not a JSON object"
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        return "no tool name"
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return "arguments are not JSON"
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return "arguments are not a JSON object"
    if MALFORMED in arguments:
        return str(arguments[MALFORMED])
    if tool_names is not None and name not in tool_names:
        return f"unknown tool '{name}'"
    return None


def tool_names(env: Any) -> list[str]:
    """The environment's tools ([] for a single-turn environment or no environment)."""
    try:
        names = env.tool_names() if env is not None else []
    except Exception:  # noqa: BLE001 - an object that is not one of our environments
        return []
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else []


def environments_for(environments: Any, n: int) -> list[Any]:
    """One environment (or None) per completion."""
    if isinstance(environments, (list, tuple)) and len(environments) == n:
        return list(environments)
    return [None] * n


def outcome_of(env: Any, completion: Any) -> Any:
    """The environment's verified outcome (verifying it now if nobody has), or None without an environment."""
    outcome = getattr(env, "outcome", None)
    if outcome is None:
        return None
    if not getattr(outcome, "verified", True) and hasattr(env, "_finish_episode"):
        outcome = env._finish_episode(completion)
    return outcome


def column(values: Any, n: int) -> list[Any]:
    """A dataset column as one value per completion ([None] * n when the column is missing or misaligned)."""
    if isinstance(values, (list, tuple)) and len(values) == n:
        return list(values)
    return [None] * n
