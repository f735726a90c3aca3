"""Memory in rollouts: retrieved code and SOPs in an episode's prompt, and the search behind `search_code`.

    from agent_lightning.memory.context import configure
    configure(cfg.memory)          # once, before the trainer creates environments (train/grpo.py, evaluate.py)

TRL's `environment_factory` builds environments with no arguments, so they cannot be handed the config. The seam
is this module: `configure(section)` sets the process's active `MemoryContext`; every `Environment.reset()` (env.py
wraps each subclass's reset) then calls `inject(env, task, observation)`, which, with `memory.inject` on, appends
the top `code_k` code chunks and the top `sop_k` SOPs for the task's prompt to what reset returns (TRL appends
that to the user message), and records them on the environment as `env.retrieved`; the reward suite writes
`retrieved` into each rollout's trace line. The `tools` environment's `search_code(query)` uses `active()` too.
With no configure call, or `inject` off, reset is unchanged and `retrieved` is None.

This module imports nothing heavy until memory is used (env.py imports it on every reset). The injected text
starts with `[memory]` (MEMORY_MARKER) so SOP distillation can cut it from prompts. A store
that does not exist yet injects nothing (said once in the log), and no retrieval failure stops a rollout.

Not covered here: building the store (store.py, `memory index`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MEMORY_MARKER = "\n\n[memory]"   # injected text starts with it; SOP distillation cuts prompts there

_ACTIVE: MemoryContext | None = None


class MemoryContext:
    """Lazily opened code retriever and SOP store for one `memory` config section."""

    def __init__(self, section: Any):
        self.section = section
        self._retriever: Any = None
        self._sops: Any = None
        self._said_missing = False

    @property
    def store_dir(self) -> Path:
        return Path(self.section.store).expanduser()

    def retriever(self) -> Any:
        if self._retriever is None:
            from agent_lightning.memory.reranker import Reranker
            from agent_lightning.memory.retriever import Retriever
            from agent_lightning.memory.store import CodeStore

            s = self.section
            store = CodeStore(self.store_dir, s.embedder, s.max_tokens)
            reranker = Reranker(s.reranker) if s.reranker else None
            self._retriever = Retriever(store, s.candidates, s.code_k, reranker, s.hybrid)
        return self._retriever

    def sops(self) -> Any:
        if self._sops is None:
            from agent_lightning.memory.sop import SopStore

            self._sops = SopStore(self.store_dir, self.section.embedder, self.section.max_tokens)
        return self._sops

    def search_code(self, query: str, k: int | None = None) -> list[Any]:
        if not (self.store_dir / "chroma").is_dir():
            if not self._said_missing:
                self._said_missing = True
                log.warning("memory store %s does not exist yet: no code is retrieved (run `memory index PATH "
                            "--store %s`)", self.store_dir, self.store_dir)
            return []
        return self.retriever().search(query, k)

    def for_prompt(self, question: str) -> tuple[str, dict[str, Any]]:
        """(text to append to the prompt, what was retrieved) for one task's question."""
        s = self.section
        hits = self.search_code(question, s.code_k) if s.code_k > 0 else []
        sops = self.sops().query(question, s.sop_k) if s.sop_k > 0 and self.store_dir.is_dir() else []
        retrieved = {"query": question, "code": [h.to_dict() for h in hits],
                     "sops": [{"name": sop.name, "score": round(score, 4), "text": sop.to_text()} for sop, score in sops]}
        parts = []
        if hits:
            from agent_lightning.memory.retriever import format_hits

            parts.append("Code that may help:\n" + format_hits(hits))
        if sops:
            parts.append("Procedures that worked before:\n" + "\n\n".join(sop.to_text() for sop, _ in sops))
        text = (MEMORY_MARKER + "\n" + "\n\n".join(parts)) if parts else ""
        return text, retrieved


def configure(section: Any | None) -> MemoryContext | None:
    """Make `section` (a config's `memory`) the active memory of this process; None switches memory off."""
    global _ACTIVE
    if _ACTIVE is not None and _ACTIVE.section == section:
        return _ACTIVE  # same settings (training, then its end-of-stage eval): keep the opened store and models
    _ACTIVE = MemoryContext(section) if section is not None else None
    return _ACTIVE


def active() -> MemoryContext | None:
    return _ACTIVE


def inject(env: Any, task: dict[str, Any], observation: str | None) -> str | None:
    """What reset returns with memory added (see module docstring); sets `env.retrieved`."""
    env.retrieved = None
    ctx = _ACTIVE
    if ctx is None or not ctx.section.inject:
        return observation
    question = task.get("question")
    if not isinstance(question, str):
        prompt = task.get("prompt")
        if isinstance(prompt, list):
            users = [m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
            question = users[-1] if users else None
        else:
            question = prompt
    if not isinstance(question, str) or not question.strip():
        return observation
    try:
        text, env.retrieved = ctx.for_prompt(question)
    except Exception:  # noqa: BLE001 - memory is an aid: a failure is logged, the rollout goes on without it
        log.exception("memory retrieval failed; the episode runs without it")
        return observation
    if not text:
        return observation
    return (observation or "") + text
