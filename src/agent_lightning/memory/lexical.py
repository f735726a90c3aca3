"""Lexical search over code identifiers (BM25) and reciprocal-rank fusion with the dense ranking.

    bm25 = BM25([identifier_tokens(t) for t in texts]);  bm25.top(identifier_tokens(query), k=20)
    fused = rrf([dense_ids, lexical_ids])

Identifiers are split the way code names are built (`parse_tool_call`, `parseToolCall`, `HTTPServer` ->
parse, tool, call, http, server) and lowercased, and the whole identifier is kept as one more token. BM25 is the
usual Okapi form (k1=1.2, b=0.75). Reciprocal-rank fusion scores an item by sum(1 / (60 + rank)) over rankings.

Not covered here: whether the fusion helps (benchmarks/retrieval.py measures it).
"""

from __future__ import annotations

import math
import re
from collections import Counter

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
STOP = {"the", "a", "an", "of", "to", "in", "is", "and", "or", "for", "if", "it", "be", "that", "this", "with",
        "as", "on", "by", "are", "from", "at", "return", "returns", "self", "def", "none", "not", "true", "false",
        "given", "list", "int", "str"}


def identifier_tokens(text: str) -> list[str]:
    out = []
    for ident in _IDENT.findall(text):
        parts = [p.lower() for piece in ident.split("_") for p in _CAMEL.findall(piece)]
        if len(parts) > 1:
            out.append(ident.lower())
        out.extend(p for p in parts if len(p) > 1 and p not in STOP)
    return out


class BM25:
    def __init__(self, docs: list[list[str]], k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.tfs = [Counter(d) for d in docs]
        self.lengths = [len(d) for d in docs]
        self.avg = (sum(self.lengths) / len(docs)) if docs else 0.0
        df: Counter = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.postings: dict[str, list[int]] = {}
        for i, tf in enumerate(self.tfs):
            for t in tf:
                self.postings.setdefault(t, []).append(i)

    def scores(self, query: list[str]) -> dict[int, float]:
        out: dict[int, float] = {}
        for t in set(query):
            idf = self.idf.get(t)
            if idf is None:
                continue
            for i in self.postings[t]:
                f = self.tfs[i][t]
                norm = f + self.k1 * (1 - self.b + self.b * self.lengths[i] / (self.avg or 1.0))
                out[i] = out.get(i, 0.0) + idf * f * (self.k1 + 1) / norm
        return out

    def top(self, query: list[str], k: int) -> list[tuple[int, float]]:
        return sorted(self.scores(query).items(), key=lambda kv: -kv[1])[:k]


def rrf(rankings: list[list[str]], k: int = 60) -> list[str]:
    """Reciprocal-rank fusion of several rankings of ids, best first."""
    score: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            score[item] = score.get(item, 0.0) + 1.0 / (k + rank + 1)
    return sorted(score, key=lambda i: -score[i])
