"""APO's optional critic: a chat model that reads failed traces, writes a textual gradient, and rewrites the
instructions (agent-lightning's APO / ProTeGi: critique, then edit).

    critic = make_critic(cfg.apo)            # None unless apo.critic is set
    new = rewrite_instructions(critic, "Answer the question.", failures, max_tokens=256)

`apo.critic` is either the base URL of any OpenAI-compatible server (`http://host:port` or `.../v1`: vLLM, llama.cpp,
Ollama, `main_agent_lightning.py serve`, a hosted API with `apo.critic_api_key`), called with the official `openai`
client, or a local Hugging Face chat model folder run with transformers. The critic is called twice per rewrite:
once for the critique of up to four failures, once for the new instructions.

Not covered: scoring (the search in train/apo.py scores every rewrite on dev tasks like any other candidate), and
retries: a critic call that fails costs that round its rewrite (logged), not the search.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from agent_lightning.errors import UserError

CRITIQUE = """You are improving the instructions (the system prompt) given to a small language model.

Current instructions:
<instructions>
{instructions}
</instructions>

The model failed these tasks:
{failures}

In a few sentences, say what the model did wrong and what the instructions should tell it to do differently."""

EDIT = """Current instructions:
<instructions>
{instructions}
</instructions>

Critique of the instructions:
{critique}

Write improved instructions that fix these problems. Keep them short (at most three sentences). Reply with only
the new instructions, nothing else."""


class Critic(Protocol):
    name: str

    def complete(self, messages: list[dict[str, Any]], max_tokens: int) -> str: ...


class EndpointCritic:
    """Any OpenAI-compatible `/v1/chat/completions`, through the official `openai` client."""

    def __init__(self, base_url: str, model: str | None = None, api_key: str = "EMPTY"):
        from openai import OpenAI

        base = base_url.rstrip("/")
        self.client = OpenAI(base_url=base if base.endswith("/v1") else base + "/v1",
                             api_key=os.environ.get("OPENAI_API_KEY") or api_key, timeout=120.0, max_retries=1)
        self.model = model
        self.name = f"{base} ({model or 'its first model'})"

    def complete(self, messages: list[dict[str, Any]], max_tokens: int) -> str:
        if self.model is None:
            models = self.client.models.list().data
            if not models:
                raise UserError(f"apo.critic {self.name}: the server lists no models; set apo.critic_model.")
            self.model = models[0].id
        reply = self.client.chat.completions.create(model=self.model, messages=messages, max_tokens=max_tokens,
                                                    temperature=0.7)
        return reply.choices[0].message.content or ""


class LocalCritic:
    """A local Hugging Face chat model folder (its tokenizer's chat template), sampled on this machine's device."""

    def __init__(self, path: str):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise UserError(f"apo.critic {path}: not a loadable Hugging Face chat model folder "
                            f"({str(exc).splitlines()[0][:160]}); give a folder or an http(s):// base URL.") from None
        self.model.eval()
        self.name = path

    def complete(self, messages: list[dict[str, Any]], max_tokens: int) -> str:
        import torch

        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        with torch.no_grad():
            out = self.model.generate(**ids, max_new_tokens=max_tokens, do_sample=True, temperature=0.7,
                                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        return self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def make_critic(settings: Any) -> Critic | None:
    """The critic `apo.critic` names, or None when unset."""
    where = settings.critic
    if not where:
        return None
    if where.startswith(("http://", "https://")):
        return EndpointCritic(where, settings.critic_model, settings.critic_api_key)
    return LocalCritic(where)


def describe_failure(failure: dict[str, Any]) -> str:
    """One failed episode as the critic reads it: the task, what the model did (replies and tool calls), and why it
    failed."""
    lines = [f"Task: {failure['task']}"]
    for message in failure.get("messages", [])[:8]:
        role, content = message.get("role"), str(message.get("content") or "")[:300]
        calls = [c.get("function", {}) for c in message.get("tool_calls") or []]
        if calls:
            content += " " + "; ".join(f"call {c.get('name')}({c.get('arguments')})" for c in calls)
        lines.append(f"  {role}: {content.strip()}")
    if failure.get("expected") is not None:
        lines.append(f"  expected: {failure['expected']}")
    if failure.get("detail"):
        lines.append(f"  why it failed: {failure['detail']}")
    return "\n".join(lines)


def rewrite_instructions(critic: Critic, instructions: str, failures: list[dict[str, Any]], max_tokens: int) -> str:
    """Critique the instructions on `failures`, then have the critic write new ones (cleaned of quotes/tags)."""
    listing = "\n\n".join(describe_failure(f) for f in failures)
    critique = critic.complete([{"role": "user", "content": CRITIQUE.format(instructions=instructions,
                                                                             failures=listing)}], max_tokens)
    edited = critic.complete([{"role": "user", "content": EDIT.format(instructions=instructions,
                                                                       critique=critique.strip())}], max_tokens)
    text = edited.strip().removeprefix("<instructions>").removesuffix("</instructions>").strip().strip('"').strip()
    return " ".join(text.split())[:1000]
