"""The ONNX embedder against the sentence-transformers one it replaces: the same vectors (fp32), close ones (int8),
batches on OpenVINO as onnxruntime embeds them, the export cached and checked, the torch fallback, and a
`memory query` process that never imports torch (nor OpenVINO)."""

import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from agent_lightning.errors import UserError
from agent_lightning.memory.chunker import chunk_text
from agent_lightning.memory.embedder import ChromaEmbedding, Embedder, get_embedder
from agent_lightning.memory.model_files import local_model_dir
from agent_lightning.memory import onnx_embedder
from agent_lightning.memory.onnx_embedder import OnnxEmbedder, bundle_dir
from agent_lightning.memory.store import CodeStore

from conftest import REPO

from .assets import JS_UTIL, PY_MATH, PY_TOOLS

PROSE = [
    "where are tool calls parsed?", "add up the numbers of a file", "Return the n-th Fibonacci number.",
    "How do I deploy the site to the staging server?", "a reward that checks the final answer",
    "Sum the numbers of a file into another file.", "prime", "Which function formats a price in euros?",
    "The store keeps one writer at a time; a second gets an error naming the holder.",
    "  Leading spaces, UPPER CASE, ünïcödé and emoji 🚀  ",
]
HEAVY = {"torch", "transformers", "sentence_transformers", "bitsandbytes", "trl", "peft", "openvino"}


def texts() -> list[str]:
    """A few dozen code chunks (this package's memory modules and the test corpus) and prose queries."""
    out = []
    for name in ("store.py", "retriever.py", "sop.py"):
        path = REPO / "src/agent_lightning/memory" / name
        out += [c.embedding_text() for c in chunk_text(name, path.read_text(), max_chars=800)[0][:8]]
    for name, source in (("tools.py", PY_TOOLS), ("mathy.py", PY_MATH), ("util.js", JS_UTIL)):
        out += [c.embedding_text() for c in chunk_text(name, source, max_chars=800)[0]]
    return out + PROSE


def cosines(a, b) -> np.ndarray:
    return (np.asarray(a) * np.asarray(b)).sum(axis=1)


@pytest.fixture(scope="module")
def reference():
    torch_embedder = Embedder(backend="torch")
    return {"texts": texts(), "vectors": torch_embedder.embed(texts()), "embedder": torch_embedder}


def test_onnx_reproduces_sentence_transformers_in_batches_and_one_by_one(reference):
    fast = Embedder(backend="onnx", int8=False)
    assert fast.backend == "onnx" and fast.dimension == 384 and len(reference["texts"]) >= 36
    batched = cosines(reference["vectors"], fast.embed(reference["texts"]))
    single = cosines(reference["vectors"], [fast.embed([t])[0] for t in reference["texts"]])
    assert batched.min() >= 0.999 and single.min() >= 0.999, (batched.min(), single.min())
    assert np.allclose(np.linalg.norm(fast.embed(reference["texts"]), axis=1), 1.0, atol=1e-5)


def test_int8_the_default_stays_within_cosine_099_of_sentence_transformers(reference):
    quantized = Embedder(backend="onnx")
    assert quantized.backend == "onnx" and quantized._onnx.model_file.name == "model_int8.onnx"
    c = cosines(reference["vectors"], quantized.embed(reference["texts"]))
    assert c.min() >= 0.99, c.min()


def test_batches_run_on_openvino_with_onnxruntimes_vectors_and_queries_stay_on_onnxruntime(reference):
    fast = Embedder(backend="onnx")                                     # the default: int8, runtime auto
    plain = Embedder(backend="onnx", bulk="onnxruntime")
    batch, before = fast.embed(reference["texts"]), plain.embed(reference["texts"])
    assert fast._onnx.bulk_runtime == "openvino" and plain._onnx.bulk_runtime == "onnxruntime"
    assert cosines(before, batch).min() >= 0.999
    assert cosines(reference["vectors"], batch).min() >= 0.99          # and still the model's vectors
    query = reference["texts"][:3]                                      # SMALL_BATCH or fewer: onnxruntime
    assert np.array_equal(np.asarray(fast.embed(query)), np.asarray(plain.embed(query)))


def test_openvino_that_fails_its_check_leaves_batches_on_onnxruntime(reference, monkeypatch, caplog):
    bundle = bundle_dir(local_model_dir(None))
    monkeypatch.setattr(onnx_embedder, "MIN_COSINE_BULK", 1.01)        # no runtime can pass it
    with caplog.at_level(logging.WARNING, logger="agent_lightning.memory.onnx_embedder"):
        auto = OnnxEmbedder(bundle, 128, int8=True)
        vectors = auto.embed(reference["texts"])
    assert auto.bulk_runtime == "onnxruntime" and vectors.shape == (len(reference["texts"]), 384)
    said = [r.getMessage() for r in caplog.records if "OpenVINO cannot run" in r.getMessage()]
    assert len(said) == 1 and "cosine" in said[0], said
    with pytest.raises(RuntimeError, match="OpenVINO cannot run .*model_int8.onnx .*cosine"):
        OnnxEmbedder(bundle, 128, int8=True, bulk="openvino").embed(reference["texts"])
    monkeypatch.setenv("AGENT_LIGHTNING_BULK_RUNTIME", "gpu")
    with pytest.raises(ValueError, match="bulk runtime 'gpu': expected one of auto, openvino, onnxruntime"):
        OnnxEmbedder(bundle, 128)


def test_truncation_follows_max_tokens_like_sentence_transformers():
    long = [PY_TOOLS * 3, " ".join(PROSE) * 4, PY_MATH]
    ref = Embedder(max_tokens=32, backend="torch").embed(long)
    fast = Embedder(max_tokens=32, backend="onnx", int8=False)
    assert cosines(ref, fast.embed(long)).min() >= 0.999
    assert cosines(Embedder(backend="onnx", int8=False).embed(long)[:2], fast.embed(long)[:2]).max() < 0.99  # cut


def test_the_export_is_cached_checked_and_named_by_the_model_files():
    folder = local_model_dir(None)
    bundle = bundle_dir(folder)
    Embedder(backend="onnx").backend  # noqa: B018 - exports (and quantizes) unless cached
    assert bundle == bundle_dir(folder) and (bundle / "model.onnx").is_file() and (bundle / "model_int8.onnx").is_file()
    spec = __import__("json").loads((bundle / "embedder.json").read_text())
    assert spec["pooling"] == ["mean"] and spec["max_seq_length"] == 256 and spec["cosine"] >= 0.9999
    assert spec["int8_cosine"] >= 0.995
    assert bundle.parent.parent == __import__("pathlib").Path(os.environ["AGENT_LIGHTNING_CACHE"])


def test_a_model_onnx_cannot_reproduce_falls_back_to_torch_once(tmp_path, caplog):
    from sentence_transformers import SentenceTransformer, models

    word = models.Transformer(str(local_model_dir(None)), max_seq_length=64)
    folder = tmp_path / "with-dense"
    SentenceTransformer(modules=[word, models.Pooling(384), models.Dense(384, 16)], device="cpu").save(str(folder))
    with caplog.at_level(logging.WARNING, logger="agent_lightning.memory.embedder"):
        auto = Embedder(str(folder), backend="auto")
        assert auto.backend == "torch" and len(auto.embed(["def f(): pass"])[0]) == 16
    said = [r.getMessage() for r in caplog.records if "cannot run on ONNX" in r.getMessage()]
    assert len(said) == 1 and "Transformer + Pooling + Dense" in said[0], said
    with pytest.raises(UserError, match="memory.backend onnx: embedder .* cannot run on ONNX"):
        Embedder(str(folder), backend="onnx").backend  # noqa: B018
    with pytest.raises(UserError, match="memory.backend: expected one of auto, onnx, torch"):
        Embedder(backend="gpu")


def test_a_store_built_with_torch_answers_the_same_through_onnx(corpus, tmp_path):
    built = CodeStore(tmp_path / "store", backend="torch")
    built.index(corpus, progress=False)
    assert built.embedder.backend == "torch"
    exact = CodeStore(tmp_path / "store", backend="onnx", int8=False)
    quantized = CodeStore(tmp_path / "store", backend="onnx")
    for query in ("is n a prime number", "format a price", "deploy to staging"):
        a, b, c = built.dense(query, k=4), exact.dense(query, k=4), quantized.dense(query, k=4)
        assert [h.id for h in a] == [h.id for h in b] and a[0].id == c[0].id
        assert max(abs(x.score - y.score) for x, y in zip(a, b)) < 1e-3
        assert max(abs(x.score - y.score) for x, y in zip(a, c)) < 1e-2


def test_the_chroma_embedding_function_round_trips_its_config():
    fn = ChromaEmbedding(get_embedder())
    vectors = fn(["def add(a, b): return a + b", "hello"])
    assert len(vectors) == 2 and vectors[0].shape == (384,) and vectors[0].dtype == np.float32
    again = ChromaEmbedding.build_from_config(fn.get_config())
    assert again.embedder is fn.embedder and fn.name() == "agent_lightning_sentence_transformer"


def _imported(stderr: str) -> set[str]:
    """Top-level modules named in a `python -X importtime` report."""
    return {m.group(1).split(".")[0] for m in re.finditer(r"^import time:.*\|\s*([\w.]+)\s*$", stderr, re.M)}


def test_memory_query_imports_no_torch_and_a_missing_reranker_costs_no_model_library(store, tmp_path):
    env = {**os.environ, "GLIBC_TUNABLES": "", "HF_HUB_CACHE": str(tmp_path / "empty-hub-cache")}
    base = [sys.executable, "-X", "importtime", str(REPO / "main_agent_lightning.py"), "memory", "query",
            "is n a prime number", "--store", str(store.dir), "-k", "1"]
    for extra, says_reranker in (([], True), (["--no-rerank"], False)):
        done = subprocess.run(base + extra, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.startswith("[1] (") and "pkg/mathy.py:9-13 is_prime" in done.stdout
        modules = _imported(done.stderr)
        assert {"chromadb", "onnxruntime", "tokenizers"} <= modules
        assert not modules & HEAVY, sorted(modules & HEAVY)
        assert ("reranker 'cross-encoder/ms-marco-MiniLM-L-6-v2' is not available" in done.stderr) == says_reranker
