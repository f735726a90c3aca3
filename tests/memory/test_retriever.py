"""Retriever: hit formatting, reranking with a locally built cross-encoder, the unavailable fallback, BM25 + RRF."""

import logging

from agent_lightning.memory.lexical import BM25, identifier_tokens, rrf
from agent_lightning.memory.reranker import Reranker
from agent_lightning.memory.retriever import Retriever, format_hits


def test_format_is_numbered_scored_and_cites_lines(store):
    hits = Retriever(store, candidates=5, top_n=2).search("is a number prime")
    text = format_hits(hits)
    first = text.splitlines()[0]
    assert first.startswith("[1] (0.") and first.endswith("pkg/mathy.py:9-13 is_prime")
    assert "def is_prime(n):" in text and "\n\n[2] (" in text
    assert hits[0].to_dict().keys() == {"path", "start_line", "end_line", "symbol", "score", "text"}


def test_a_cross_encoder_reorders_candidates_by_its_own_scores(store, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    reranker = Reranker(str(tiny_cross_encoder), backend="torch")  # the ONNX engine: test_onnx_reranker.py
    assert reranker.available
    query = "add an item to the inventory"
    dense = Retriever(store, candidates=6, top_n=6).search(query)
    reranked = Retriever(store, candidates=6, top_n=6, reranker=reranker).search(query)
    assert {h.id for h in reranked} == {h.id for h in dense}
    expected = CrossEncoder(str(tiny_cross_encoder)).predict([(query, h.text) for h in dense])
    want = [h.id for _, h in sorted(zip(expected, dense), key=lambda p: -p[0])]
    assert [h.id for h in reranked] == want
    assert all("rerank" in h.scores and h.score == h.scores["rerank"] for h in reranked)


def test_an_unavailable_reranker_is_said_once_and_keeps_the_dense_order(store, caplog, tmp_path):
    missing = str(tmp_path / "no-such-cross-encoder")
    with caplog.at_level(logging.WARNING, logger="agent_lightning.memory.reranker"):
        a = Retriever(store, 5, 5, Reranker(missing)).search("fibonacci")
        b = Retriever(store, 5, 5, Reranker(missing)).search("prime")
    said = [r for r in caplog.records if "not available" in r.getMessage()]
    assert len(said) == 1 and missing in said[0].getMessage()
    assert [h.id for h in a] == [h.id for h in Retriever(store, 5, 5).search("fibonacci")]
    assert b and all("rerank" not in h.scores for h in a + b)


def test_hybrid_fuses_bm25_over_identifiers(store):
    hits = Retriever(store, candidates=5, top_n=3, hybrid=True).search("total_units")
    assert hits[0].symbol == "Inventory" and "def total_units" in hits[0].text and hits[0].scores["bm25"] > 0
    assert all("bm25" not in h.scores for h in hits if "total_units" not in h.text)


def test_lexical_pieces():
    assert identifier_tokens("parseToolCall(HTTPServer, max_len)") == [
        "parsetoolcall", "parse", "tool", "call", "httpserver", "http", "server", "max_len", "max", "len"]
    bm25 = BM25([["alpha", "beta"], ["beta", "gamma", "gamma"], ["delta"]])
    assert [i for i, _ in bm25.top(["gamma"], 3)] == [1]
    assert rrf([["a", "b", "c"], ["c", "a"]]) == ["a", "c", "b"]
