"""What the policy is told before a task: instructions (the system prompt) and few-shot demonstrations.

    prompt = Prompt.load("runs/apo/prompt.yaml")       # what `--algo apo` writes; `--set policy.prompt=...`
    messages = prompt.messages() + [{"role": "user", "content": task["prompt"]}]
    prompt.fingerprint                                   # 12 hex digits: traces and reports name the prompt by it

A demonstration is a whole verified conversation after the system prompt: the user's task, then the assistant's
turns (with their tool calls and the real tool results for tool environments). `messages()` puts the instructions
first, then every demonstration's turns in order, so the policy reads them as earlier turns of its own chat, in its
own chat template and tool-call format.

prompt.yaml:
    instructions: "Answer the question. Reply with only the answer."   # null: the environment's own
    demonstrations:                                                    # lists of chat messages
      - [{role: user, content: "What is 3 + 4?"}, {role: assistant, content: "7"}]
    meta: {env: arithmetic, algorithm: apo, dev_score: 0.41}            # free-form, informational

Not covered: choosing a prompt (train/apo.py), tools' schemas (the environment supplies them), memory injection.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_lightning.errors import UserError

ROLES = ("user", "assistant", "tool")


@dataclass
class Prompt:
    instructions: str | None = None
    demonstrations: list[list[dict[str, Any]]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def messages(self, default_instructions: str | None = None) -> list[dict[str, Any]]:
        """The prefix of every conversation: the system message (these instructions, else `default_instructions`),
        then each demonstration's turns."""
        system = self.instructions if self.instructions is not None else default_instructions
        head = [{"role": "system", "content": system}] if system else []
        return head + [dict(m) for demo in self.demonstrations for m in demo]

    @property
    def fingerprint(self) -> str:
        body = json.dumps({"instructions": self.instructions, "demonstrations": self.demonstrations}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"instructions": self.instructions, "demonstrations": self.demonstrations, "meta": self.meta}

    def save(self, path: str | Path) -> Path:
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=120))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Prompt:
        """Read and check a prompt.yaml: one line naming the file and what is wrong with it otherwise."""
        import yaml

        path = Path(path)
        if path.is_dir():
            path = path / "prompt.yaml"
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise UserError(f"policy.prompt {path}: {exc.strerror}; expected a prompt.yaml (what --algo apo writes "
                            "into its run directory).") from None
        except yaml.YAMLError as exc:
            raise UserError(f"policy.prompt {path}: not YAML ({str(exc).splitlines()[0]}).") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: Any, where: str = "prompt") -> Prompt:
        if not isinstance(data, dict) or not {"instructions", "demonstrations"} & set(data):
            raise UserError(f"{where}: expected a mapping with `instructions` and/or `demonstrations`.")
        instructions = data.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise UserError(f"{where}: `instructions` must be text or null, got {type(instructions).__name__}.")
        demos = data.get("demonstrations") or []
        if not isinstance(demos, list):
            raise UserError(f"{where}: `demonstrations` must be a list of conversations (lists of messages).")
        for n, demo in enumerate(demos, start=1):
            problem = demonstration_problem(demo)
            if problem:
                raise UserError(f"{where}: demonstration {n}: {problem}.")
        return cls(instructions, [list(d) for d in demos], dict(data.get("meta") or {}))


def demonstration_problem(demo: Any) -> str | None:
    """Why `demo` is not a usable demonstration (None: it is): user first, assistant last, no system turns."""
    if not isinstance(demo, list) or not demo:
        return "expected a non-empty list of chat messages"
    for message in demo:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"each message needs a role in {ROLES} (no system messages inside a demonstration), got {message!r}"
    if demo[0]["role"] != "user" or demo[-1]["role"] != "assistant":
        return "a demonstration starts with the user's task and ends with the assistant's answer"
    return None


def prefix_messages(system: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A conversation's prefix from what callers pass: a system prompt (text), a list of messages, or None."""
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    return [dict(m) for m in system]
