"""Cross-encoder reranking of retrieved chunks, with an honest fallback when no cross-encoder can be loaded.

    from agent_lightning.memory.reranker import Reranker
    hits = Reranker("cross-encoder/ms-marco-MiniLM-L-6-v2").rerank("parse a tool call", hits)

Any sentence-transformers `CrossEncoder` folder, or hub id already in the local Hugging Face cache, works
(`memory.reranker`; nothing is downloaded at run time: fetch a model beforehand). Hub downloads are not possible
here and no PyPI package carries a cross-encoder, so the default usually cannot load: the reranker then says so
once per process (a warning naming the model and the fix) and returns the hits in their embedding order. Whether
the model's files are on disk is checked first (model_files.py, a few file-system calls), so a missing model
costs no torch import. `available` tells callers (and benchmarks) which path ran. Pairs are cut at 256 word
pieces (a chunk is sized for a 256-piece embedder window; longer pairs cost time, not accuracy, here), or at the
length a reranker trained by `memory train-reranker` learned at; such a reranker's score is fused with the dense
one by the weight its training chose (its training.json).

Engines (`memory.backend`, as for the embedder): `onnx` runs the cross-encoder with onnxruntime (onnx_reranker.py:
exported once per folder, checked against CrossEncoder.predict, int8 weights under `memory.int8`; no torch imported
once the export is cached), `torch` with sentence-transformers' CrossEncoder, `auto` onnx when it can be made,
else torch. `engine` says which ran.

Not covered here: training a cross-encoder (reranker_training.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L-6-v2"
_WARNED: set[str] = set()


def training_recipe(folder: Path) -> dict[str, Any]:
    """The recipe of a reranker trained by `memory train-reranker` (its training.json), else {}."""
    try:
        return dict(json.loads((folder / "training.json").read_text())["recipe"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


class Reranker:
    """A CrossEncoder loaded on first use; `available` is False (and said once) when it cannot be loaded."""

    def __init__(self, model: str | None = DEFAULT_RERANKER, max_length: int = 256, batch_size: int = 32,
                 backend: str = "auto", int8: bool = True):
        self.name = model or ""
        self.max_length, self.batch_size = max_length, batch_size
        self.backend, self.int8 = backend, int8
        self.engine = ""           # "onnx" or "torch" once loaded
        self.fusion_weight = 1.0   # share of the cross-encoder in a hit's score; the rest is its dense score
        self._model: Any = None
        self._failed = not self.name

    @property
    def available(self) -> bool:
        if self._model is None and not self._failed:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from agent_lightning.memory.model_files import local_model_dir

                folder = local_model_dir(self.name)
                if folder is None:
                    raise FileNotFoundError("not a folder, and not in the local Hugging Face cache")
                recipe = training_recipe(folder)
                self.max_length = int(recipe.get("max_length") or self.max_length)
                self.fusion_weight = float(recipe.get("fusion_weight", 1.0))
                if self.backend in ("auto", "onnx"):
                    self._model, self.engine = self._load_onnx(folder), "onnx"
                if self._model is None:
                    from sentence_transformers import CrossEncoder

                    from agent_lightning.memory.embedder import _device

                    self._model = CrossEncoder(str(folder), device=_device(), max_length=self.max_length,
                                               local_files_only=True)
                    self.engine = "torch"
            except Exception as exc:  # noqa: BLE001 - unavailable offline is the common case, not a bug
                self._failed = True
                if self.name not in _WARNED:
                    _WARNED.add(self.name)
                    detail = str(exc).splitlines()[0][:120] if str(exc) else ""
                    log.warning("reranker '%s' is not available here (%s); keeping the embedding order. Set "
                                "memory.reranker to a local CrossEncoder folder, or to '' (or pass --no-rerank) to "
                                "skip reranking.", self.name, f"{type(exc).__name__}: {detail}" if detail
                                else type(exc).__name__)
        return self._model is not None

    def _load_onnx(self, folder: Path) -> Any:
        """The onnxruntime engine (exported once, checked, cached), or None: then torch runs it (said once)."""
        try:
            from agent_lightning.memory.onnx_reranker import load_onnx_reranker

            return load_onnx_reranker(folder, self.max_length, self.int8)
        except Exception as exc:  # noqa: BLE001 - the torch engine computes the same scores
            if self.backend == "onnx":
                raise
            log.info("reranker '%s': no ONNX engine (%s: %s); using torch", self.name, type(exc).__name__,
                     str(exc).splitlines()[0][:120] if str(exc) else "")
            return None

    def scores(self, query: str, texts: list[str]) -> list[float]:
        if self.engine == "onnx":
            return self._model.predict([(query, t) for t in texts])
        raw = self._model.predict([(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False)
        values = [float(v) if not hasattr(v, "__len__") else float(v[-1]) for v in raw]
        if any(v < 0.0 or v > 1.0 for v in values):  # logits: squash for display, order unchanged
            values = [1.0 / (1.0 + math.exp(-v)) for v in values]
        return values

    def rerank(self, query: str, hits: list[Any]) -> list[Any]:
        """Hits sorted by cross-encoder score (their `score` becomes it), or unchanged when unavailable."""
        if not hits or not self.available:
            return hits
        w = self.fusion_weight
        for hit, score in zip(hits, self.scores(query, [h.text for h in hits])):
            hit.scores["rerank"] = score
            hit.score = w * score + (1.0 - w) * hit.scores.get("dense", hit.score) if w < 1.0 else score
        return sorted(hits, key=lambda h: -h.score)
