"""Chat-message primitives every layer shares: the text of a message, and the parser's malformed-call mark.

    from agent_lightning.chat.messages import MALFORMED, content_text, completion_text

A message's `content` is a string, None, or a list of parts (`{"type": "text", "text": ...}`); a TRL completion
is a string (plain prompts) or a list of messages. These helpers read every shape and never raise.

`MALFORMED` is the argument name the tool-call parser (chat/tool_format.py) puts on a call it could not read:
`{"name": N, "arguments": {MALFORMED: error}}`. The environment contract turns it into a tool error the policy
reads (envs/base.py); rewards count it (rewards/_completion.py).

Not covered here: parsing tool calls (chat/segmenter.py, chat/tool_format.py).
"""

from __future__ import annotations

from typing import Any

MALFORMED = "__malformed__"


def content_text(content: Any) -> str:
    """The text of a message's content: a string, None (""), or a list of parts (their `text` joined by lines)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def completion_text(completion: Any) -> str:
    """Text of a TRL completion: a string, or a list of messages (the assistant turns are joined, tool results
    and other roles are left out)."""
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, (list, tuple)):
        return ""
    return "\n".join(content_text(m.get("content")) for m in completion
                     if isinstance(m, dict) and m.get("role", "assistant") == "assistant")
