"""Memory in rollouts: retrieved code and SOPs in an episode's prompt, and the search behind `search_code`.

    memory = MemoryContext.for_run(cfg.memory)          # None when the run uses no memory
    make_env = envs.environment_factory(env_cls, memory)  # every environment it builds carries `env.memory`

A run builds one `MemoryContext` and hands it to the environments it creates (train/grpo.py, evaluate.py,
rollout/): nothing is process-wide. `Environment.reset()` (envs/base.py wraps each subclass's reset) calls
`env.memory.augment(env, task, observation)`, which, with `memory.inject` on, appends the top `code_k` code
chunks and the top `sop_k` SOPs for the task's prompt to what reset returns (TRL appends that to the user
message), and records them on the environment as `env.retrieved`; the reward suite writes `retrieved` into each
rollout's trace line. The `tools` environment's `search_code(query)` searches `env.memory` too. An environment
built without a context (or with `inject` off) resets unchanged and `retrieved` is None.

This module imports nothing heavy until memory is used. The injected text starts with `[memory]`
(MEMORY_MARKER) so SOP distillation can cut it from prompts. A store that does not exist yet injects nothing
(said once in the log), and no retrieval failure stops a rollout.

Not covered here: building the store (store.py, `memory index`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

from agent_lightning.memory import MEMORY_MARKER


class MemoryContext:
    """Lazily opened code retriever and SOP store for one `memory` config section."""

    def __init__(self, section: Any):
        self.section = section
        self._retriever: Any = None
        self._sops: Any = None
        self._said_missing = False

    @classmethod
    def for_run(cls, section: Any | None) -> MemoryContext | None:
        """The context a run hands its environments: None when memory is neither injected nor searched
        (`section` None)."""
        return cls(section) if section is not None else None

    @property
    def store_dir(self) -> Path:
        return Path(self.section.store).expanduser()

    def retriever(self) -> Any:
        if self._retriever is None:
            from agent_lightning.memory.reranker import Reranker
            from agent_lightning.memory.reranker_training import resolve_reranker
            from agent_lightning.memory.retriever import Retriever
            from agent_lightning.memory.store import CodeStore

            s = self.section
            store = CodeStore(self.store_dir, s.embedder, s.max_tokens, backend=s.backend, int8=s.int8)
            name = resolve_reranker(s.reranker, self.store_dir)
            reranker = Reranker(name, backend=s.backend, int8=s.int8) if name else None
            self._retriever = Retriever(store, s.candidates, s.code_k, reranker, s.hybrid)
        return self._retriever

    def sops(self) -> Any:
        if self._sops is None:
            from agent_lightning.memory.sop import SopStore

            s = self.section
            self._sops = SopStore(self.store_dir, s.embedder, s.max_tokens, s.backend, s.int8)
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

    def augment(self, env: Any, task: dict[str, Any], observation: str | None) -> str | None:
        """What reset returns with memory added (see module docstring); sets `env.retrieved`."""
        env.retrieved = None
        if not self.section.inject:
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
            text, env.retrieved = self.for_prompt(question)
        except Exception:  # noqa: BLE001 - memory is an aid: a failure is logged, the rollout goes on without it
            log.exception("memory retrieval failed; the episode runs without it")
            return observation
        if not text:
            return observation
        return (observation or "") + text
