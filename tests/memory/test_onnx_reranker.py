"""memory/onnx_reranker.py: a cross-encoder exported to ONNX scores pairs as sentence-transformers' CrossEncoder does
(fp32 within 1e-3, int8 within 0.03), on every usable core whatever the load, the Reranker picks the engine by
memory.backend, and a query with a cached export imports no torch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from .test_onnx_embedder import HEAVY, REPO, _imported

PAIRS = [("count the vowels of a word", "def tally(word):\n    return sum(c in 'aeiou' for c in word)"),
         ("count the vowels of a word", "def digest(path):\n    return hashlib.sha256(open(path).read())"),
         ("join two paths", "def join(a, *p):\n    return a + '/' + '/'.join(p)"),
         ("x", "y")]


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENT_LIGHTNING_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_export_scores_like_the_cross_encoder_and_int8_stays_close(tiny_cross_encoder, cache):
    from sentence_transformers import CrossEncoder

    from agent_lightning.memory.onnx_reranker import load_onnx_reranker, reranker_bundle_dir

    reference = np.asarray(CrossEncoder(str(tiny_cross_encoder), max_length=64).predict(PAIRS))
    fp32 = load_onnx_reranker(tiny_cross_encoder, 64, int8=False)
    assert np.abs(np.asarray(fp32.predict(PAIRS)) - reference).max() < 1e-3
    int8 = load_onnx_reranker(tiny_cross_encoder, 64, int8=True)
    assert int8.model_file.name == "model_int8.onnx"
    assert np.abs(np.asarray(int8.predict(PAIRS)) - reference).max() < 0.03
    bundle = reranker_bundle_dir(tiny_cross_encoder)
    assert bundle.parent.name == "memory-rerankers" and {p.name for p in bundle.iterdir()} == {
        "model.onnx", "model_int8.onnx", "tokenizer.json", "reranker.json"}


def test_the_reranker_uses_onnx_by_default_and_torch_when_asked(tiny_cross_encoder, cache):
    from agent_lightning.memory.reranker import Reranker

    onnx, torch = Reranker(str(tiny_cross_encoder), max_length=64), Reranker(str(tiny_cross_encoder), max_length=64,
                                                                              backend="torch")
    assert onnx.available and torch.available and (onnx.engine, torch.engine) == ("onnx", "torch")
    query, texts = PAIRS[0][0], [t for _, t in PAIRS]
    assert np.abs(np.asarray(onnx.scores(query, texts)) - np.asarray(torch.scores(query, texts))).max() < 0.03


def test_a_folder_that_is_not_a_one_logit_classifier_falls_back_to_torch(tmp_path, cache, caplog):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from agent_lightning.memory.embedder import resolve_model
    from agent_lightning.memory.reranker import Reranker

    folder = tmp_path / "two-labels"
    BertForSequenceClassification(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=64, num_labels=2)
                                  ).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model(None)).save_pretrained(folder)
    reranker = Reranker(str(folder), max_length=64)
    assert reranker.available and reranker.engine == "torch"
    assert not Reranker(str(folder), max_length=64, backend="onnx").available  # onnx only: said, not raised
    assert "only one-logit cross-encoders are exported" in caplog.text


def test_a_query_with_a_cached_onnx_reranker_imports_no_torch(store, tiny_cross_encoder, tmp_path):
    env = {**os.environ, "GLIBC_TUNABLES": "", "AGENT_LIGHTNING_CACHE": str(tmp_path / "cache")}
    base = [sys.executable, str(REPO / "main_agent_lightning.py"), "memory", "query", "is n a prime number",
            "--store", str(store.dir), "-k", "2", "--json", "--set", f"memory.reranker={tiny_cross_encoder}"]
    first = subprocess.run(base, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]  # exports the reranker (torch, once)
    done = subprocess.run([sys.executable, "-X", "importtime", *base[1:]], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == first.stdout and '"reranked_by"' in done.stdout
    modules = _imported(done.stderr)
    assert "onnxruntime" in modules and not modules & HEAVY, sorted(modules & HEAVY)


def test_a_rerank_runs_on_every_usable_core_even_under_load(tiny_cross_encoder, cache, monkeypatch):
    from agent_lightning.memory.onnx_embedder import usable_cores
    from agent_lightning.memory.onnx_reranker import load_onnx_reranker

    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))  # every core busy, by the load average
    reranker = load_onnx_reranker(tiny_cross_encoder, 64, int8=False)
    assert reranker.session.get_session_options().intra_op_num_threads == usable_cores()
