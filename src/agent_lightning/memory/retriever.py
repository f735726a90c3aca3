"""Retrieval over the code store: dense top-k, optional BM25 fusion, cross-encoder rerank, top-n.

    from agent_lightning.memory.retriever import Retriever, format_hits
    retriever = Retriever(CodeStore(".agent_lightning/memory"), candidates=20, top_n=3)
    print(format_hits(retriever.search("where are tool calls parsed?")))
    # [1] (0.89) chat/tool_format.py:40-77 parse_tool_calls
    # <the chunk's code>

Stages: (1) the `candidates` nearest chunks by cosine similarity (store.py); (2) with `hybrid`, the same number of
BM25 hits over code identifiers (lexical.py) fused with the dense ranking by reciprocal rank; (3) a cross-encoder
reorders the candidates when one is configured and loadable (reranker.py: otherwise it says so once and the order
is kept); (4) the first `top_n` are returned. Each hit keeps its per-stage scores in `hit.scores`.

The BM25 index is built from every chunk in the store on first hybrid query and rebuilt when the store's chunk
count changes (seconds for a large store, once per process).

Not covered here: SOPs (sop.py), prompt injection (context.py).
"""

from __future__ import annotations

from typing import Any

from agent_lightning.memory.lexical import BM25, identifier_tokens, rrf
from agent_lightning.memory.reranker import Reranker
from agent_lightning.memory.store import CodeStore, Hit


class Retriever:
    def __init__(self, store: CodeStore, candidates: int = 20, top_n: int = 3, reranker: Reranker | None = None,
                 hybrid: bool = False):
        self.store, self.candidates, self.top_n = store, candidates, top_n
        self.reranker, self.hybrid = reranker, hybrid
        self._lexical: tuple[int, BM25, list[str], list[str], list[dict[str, Any]]] | None = None

    def search(self, query: str, top_n: int | None = None) -> list[Hit]:
        n = self.top_n if top_n is None else top_n
        if not query.strip() or n <= 0:
            return []
        hits = self.store.dense(query, max(self.candidates, n))
        if self.hybrid:
            hits = self._fuse(query, hits)
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits)
        return hits[:n]

    def _fuse(self, query: str, dense: list[Hit]) -> list[Hit]:
        count, bm25, ids, docs, metas = self._bm25()
        lexical = bm25.top(identifier_tokens(query), self.candidates)
        by_id = {h.id: h for h in dense}
        for i, score in lexical:
            if ids[i] not in by_id:
                m = metas[i]
                by_id[ids[i]] = Hit(ids[i], m["path"], int(m["start_line"]), int(m["end_line"]), m.get("symbol", ""),
                                    docs[i], 0.0, m.get("kind", ""), m.get("signature", ""), {})
            by_id[ids[i]].scores["bm25"] = score
        fused = rrf([[h.id for h in dense], [ids[i] for i, _ in lexical]])[: self.candidates]
        out = [by_id[i] for i in fused]
        for hit in out:  # a fused hit's score stays its cosine similarity (0 if only BM25 found it)
            hit.score = hit.scores.get("dense", 0.0)
        return out

    def _bm25(self) -> tuple[int, BM25, list[str], list[str], list[dict[str, Any]]]:
        count = self.store.count()
        if self._lexical is None or self._lexical[0] != count:
            ids, docs, metas = self.store.all_chunks()
            texts = [f"{m.get('path', '')} {m.get('symbol', '')} {d}" for d, m in zip(docs, metas)]
            self._lexical = (count, BM25([identifier_tokens(t) for t in texts]), ids, docs, metas)
        return self._lexical


def format_hits(hits: list[Hit], max_chars: int = 1500) -> str:
    """`[1] (0.89) path:start-end symbol` blocks, each followed by its code (cut at `max_chars`)."""
    blocks = []
    for i, hit in enumerate(hits, start=1):
        text = hit.text if len(hit.text) <= max_chars else hit.text[:max_chars] + "\n..."
        title = f"[{i}] ({hit.score:.2f}) {hit.path}:{hit.start_line}-{hit.end_line}"
        blocks.append(f"{title} {hit.symbol}".rstrip() + "\n" + text)
    return "\n\n".join(blocks)
