"""Train a cross-encoder reranker on the indexed corpus itself: no labels, no downloads.

    python main_agent_lightning.py memory train-reranker [--store DIR] [--queries 1500] [--epochs 1]
    python main_agent_lightning.py memory query "..." --set memory.reranker=trained     # then use it

    from agent_lightning.memory.reranker_training import mine_pairs, train_reranker
    report = train_reranker(CodeStore(".agent_lightning/memory"))      # saves STORE/reranker

How (the recipe, and why):
- Queries are mined from the store's chunks (`mine_pairs`): the first line of a Python definition's docstring
  ("doc"), and, for a share of the other definitions (any language), its name split into words
  (`parse_tool_calls` -> "parse tool calls"). The chunk holding the definition is the positive.
- Every chunk shown to the model has its docstrings removed (`strip_docstrings`), positive and negatives alike:
  a query copied from a docstring would otherwise be matched by copying, and a positive that alone lacks a
  docstring would be told apart by that. The model has to match the words to the code.
- Hard negatives: the store's own dense top-k for the query, minus the positive (ranks 1..k: the candidates the
  reranker will be asked to reorder). A naive fine-tune on ~1,000 random pairs did not learn (MRR 0.23); hard
  negatives and a listwise loss are this recipe's answer (what it reaches: docs/results.md#code-memory).
- Model: the embedder's transformer (default: the packaged all-MiniLM-L6-v2) under a fresh one-logit head,
  trained with sentence-transformers' `CrossEncoderTrainer` and `MultipleNegativesRankingLoss` (the positive
  against its hard negatives and one in-batch negative), pairs cut at `max_length` word pieces (128: the query,
  the signature and the start of the body; reranking then reads pairs at the same length).
- Held out: `eval_queries` mined queries of other chunks score dense order against the trained reranker (MRR over
  the same `candidates`). The final score of a candidate is `w * sigmoid(logit) + (1 - w) * dense cosine`; `w`
  (1, 0.75, 0.5 or 0.25) is the one with the best held-out MRR, so a reranker that knows less than the embedder
  about some queries does not throw the embedder's order away. Kept in `STORE/reranker/training.json` with the
  recipe; reranker.py applies it.

Not covered here: using the reranker (reranker.py: `memory.reranker: trained` resolves to STORE/reranker), other
languages' doc comments (not mined, not stripped: their chunks are used as they are), GPUs (it runs where torch
does; the numbers in docs/results.md are from 2 CPU cores).
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent_lightning.errors import UserError

log = logging.getLogger(__name__)

RERANKER_DIR = "reranker"          # under the store
TRAINED = "trained"                # memory.reranker value that means STORE/reranker
DEFINITION_KINDS = {"function", "method", "class", "async_function"}
_DOCSTRING = re.compile(r'(?P<lead>:[ \t]*(?:#[^\n]*)?\n)(?P<indent>[ \t]*)[rRuUbB]{0,2}(?P<q>"""|\'\'\')'
                        r"(?P<body>.*?)(?P=q)[ \t]*\n?", re.DOTALL)
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@dataclass
class Pair:
    """One mined training query: its text, the positive chunk and the hard negatives (texts, docstrings removed)."""

    query: str
    positive: str
    negatives: list[str]
    chunk_id: str
    source: str            # "doc" or "name"


@dataclass
class RerankerReport:
    folder: str
    pairs: int
    eval_queries: int
    dense_mrr: float
    reranked_mrr: float
    seconds: float
    recipe: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)  # held-out MRR during training (curve_points)

    def line(self) -> str:
        return (f"trained on {self.pairs} mined queries in {self.seconds / 60:.1f} min; held-out MRR over "
                f"{self.recipe.get('candidates')} candidates ({self.eval_queries} queries): dense "
                f"{self.dense_mrr:.3f} -> reranked {self.reranked_mrr:.3f}; saved {self.folder}")


def trained_reranker_dir(store_dir: str | Path) -> Path:
    return Path(store_dir).expanduser() / RERANKER_DIR


def resolve_reranker(name: str | None, store_dir: str | Path) -> str:
    """`memory.reranker` as a loadable name: "trained" becomes STORE/reranker (an error if it was never trained)."""
    if name != TRAINED:
        return name or ""
    folder = trained_reranker_dir(store_dir)
    if not (folder / "config.json").is_file():
        raise UserError(f"memory.reranker=trained: {folder} holds no trained reranker; run `memory train-reranker "
                        f"--store {Path(store_dir).expanduser()}` first.")
    return str(folder)


def strip_docstrings(code: str) -> str:
    """`code` without the docstrings of the definitions in it (a string literal right after a `...:` line)."""
    return _DOCSTRING.sub(lambda m: m.group("lead"), code)


def name_phrase(symbol: str) -> str:
    """`Class.parse_tool_calls` -> "parse tool calls" (the last part's words, lower case)."""
    words = _WORDS.findall(symbol.rsplit(".", 1)[-1])
    return " ".join(w.lower() for w in words)


def mine_queries(ids: list[str], docs: list[str], metas: list[dict[str, Any]], name_share: float = 0.3,
                 seed: int = 0) -> list[tuple[str, int, str]]:
    """(query, chunk index, source) per definition chunk: its docstring's first line (Python, at least 4 words),
    else, for `name_share` of the rest, its name in words (at least 2)."""
    rng = random.Random(seed)
    found = []
    for i, meta in enumerate(metas):
        if meta.get("kind") not in DEFINITION_KINDS or not meta.get("symbol"):
            continue
        doc = " ".join(str(meta.get("doc") or "").split())
        if len(doc.split()) >= 4 and meta.get("language") == "python":  # the docs strip_docstrings removes
            found.append((doc, i, "doc"))
        elif rng.random() < name_share and len(name_phrase(meta["symbol"]).split()) >= 2:
            found.append((name_phrase(meta["symbol"]), i, "name"))
    return found


def mine_pairs(store: Any, max_queries: int = 1500, negatives: int = 3, candidates: int = 20, seed: int = 0,
               progress: bool = True) -> list[Pair]:
    """Mine up to `max_queries` (query, positive, hard negatives) from `store` (a CodeStore), chosen at random."""
    ids, docs, metas = store.all_chunks()
    queries = mine_queries(ids, docs, metas, seed=seed)
    random.Random(seed).shuffle(queries)
    queries = queries[:max_queries]
    rng = random.Random(seed + 1)
    pairs: list[Pair] = []
    for query, index, source in _progress(queries, "mining hard negatives", progress):
        hits = [h for h in store.dense(query, candidates + 1) if h.id != ids[index]][:candidates]
        if len(hits) < negatives:
            continue
        # mostly the hardest, one drawn further down: the reranker must also keep easy ones below
        chosen = hits[: negatives - 1] + [rng.choice(hits[negatives - 1:])]
        pairs.append(Pair(query, strip_docstrings(docs[index]), [strip_docstrings(h.text) for h in chosen],
                          ids[index], source))
    return pairs


def _progress(items: list[Any], label: str, enabled: bool) -> Any:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=label, unit="query", leave=False)


FUSION_WEIGHTS = (1.0, 0.75, 0.5, 0.25)   # share of the reranker's score in the final one; the rest is dense


def fused(dense: list[float], rerank: list[float], weight: float) -> list[float]:
    """weight * sigmoid(reranker logit) + (1 - weight) * dense cosine, per candidate."""
    return [weight / (1.0 + math.exp(-r)) + (1.0 - weight) * d for d, r in zip(dense, rerank)]


def held_out_mrr(store: Any, scorer: Any, queries: list[tuple[str, str]],
                 candidates: int) -> tuple[float, dict[float, float]]:
    """(dense MRR, {fusion weight: reranked MRR}) of `queries` [(text, relevant chunk id)] over `candidates` dense
    candidates; candidates' docstrings are removed, as in training. `scorer(query, texts)` returns logits."""
    dense_rr, fused_rr = [], {w: [] for w in FUSION_WEIGHTS}

    def rr(ids: list[str], scores: list[float], relevant: str) -> float:
        order = [ids[i] for i in sorted(range(len(ids)), key=lambda i: -scores[i])]
        return 1.0 / (order.index(relevant) + 1) if relevant in order else 0.0

    for text, relevant in queries:
        hits = store.dense(text, candidates)
        ids, dense = [h.id for h in hits], [h.score for h in hits]
        dense_rr.append(rr(ids, dense, relevant))
        logits = scorer(text, [strip_docstrings(h.text) for h in hits])
        for w in FUSION_WEIGHTS:
            fused_rr[w].append(rr(ids, fused(dense, logits, w), relevant))
    n = max(len(queries), 1)
    return sum(dense_rr) / n, {w: sum(v) / n for w, v in fused_rr.items()}


def train_reranker(store: Any, out_dir: str | Path | None = None, max_queries: int = 1500, negatives: int = 3,
                   epochs: float = 1.0, batch_size: int = 8, learning_rate: float = 5e-5, max_length: int = 128,
                   candidates: int = 20, eval_queries: int = 60, base: str | None = None, seed: int = 0,
                   progress: bool = True, curve_points: int = 0) -> RerankerReport:
    """Mine pairs from `store`, fine-tune a cross-encoder on them, save it (default STORE/reranker), and report
    dense vs reranked MRR on held-out mined queries. With `curve_points` N, the held-out MRR is also measured
    before training and at N evenly spaced steps (the learning curve: `curve` in training.json, and curve.png)."""
    started = time.perf_counter()
    if store.count() == 0:
        raise UserError(f"memory store {store.dir} holds no code; run `memory index PATH --store "
                        f"{store.dir}` first.")
    pairs = mine_pairs(store, max_queries + eval_queries, negatives, candidates, seed, progress)
    if len(pairs) < 2 * batch_size + eval_queries:
        raise UserError(f"memory store {store.dir}: only {len(pairs)} definitions with a docstring or a "
                        f"multi-word name to learn from; index more code (at least "
                        f"{2 * batch_size + eval_queries}), or rerank with a CrossEncoder folder instead.")
    held, train = pairs[:eval_queries], pairs[eval_queries:]
    out = Path(out_dir) if out_dir else trained_reranker_dir(store.dir)
    held_queries = [(p.query, p.chunk_id) for p in held]
    curve: list[dict[str, Any]] = []
    measured: list[tuple[float, dict[float, float]]] = []  # (dense, by weight) of each point; the last is the end

    def measure(model: Any, step: int, loss: float | None) -> None:  # one point of the learning curve
        dense, weights = held_out_mrr(store, _scorer(model), held_queries, candidates)
        measured.append((dense, weights))
        best = max(FUSION_WEIGHTS, key=lambda w: (weights[w], w))
        curve.append({"step": step, "queries_seen": step * batch_size, "loss": loss, "dense_mrr": round(dense, 4),
                      "reranker_alone_mrr": round(weights[1.0], 4), "best_fused_mrr": round(weights[best], 4),
                      "best_weight": best})
        log.info("reranker curve: step %d, held-out MRR alone %.3f, fused %.3f (w %s), dense %.3f",
                 step, weights[1.0], weights[best], best, dense)

    model = _fit(train, out, base, epochs, batch_size, learning_rate, max_length, seed, progress,
                 measure if curve_points > 0 else None, curve_points)
    dense_mrr, by_weight = measured[-1] if measured else held_out_mrr(store, _scorer(model), held_queries,
                                                                      candidates)
    weight = max(FUSION_WEIGHTS, key=lambda w: (by_weight[w], w))  # ties: the reranker alone
    recipe = {"queries": len(train), "doc_queries": sum(p.source == "doc" for p in train), "negatives": negatives,
              "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "max_length": max_length,
              "candidates": candidates, "base": base or "packaged all-MiniLM-L6-v2", "seed": seed,
              "loss": "MultipleNegativesRankingLoss (hard negatives + 1 in-batch)"}
    recipe["fusion_weight"] = weight
    recipe["held_out_mrr_by_weight"] = {str(w): round(v, 4) for w, v in by_weight.items()}
    report = RerankerReport(str(out), len(train), len(held), round(dense_mrr, 4), round(by_weight[weight], 4),
                            round(time.perf_counter() - started, 1), recipe, curve)
    (out / "training.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    if curve:
        plot_curve(curve, out / "curve.png", f"reranker trained on {len(train)} mined queries")
    return report


def _scorer(model: Any) -> Any:
    """`scorer(query, texts)` -> the cross-encoder's logits (fused() applies predict's usual sigmoid)."""
    import torch

    def scorer(query: str, texts: list[str]) -> list[float]:
        return [float(s) for s in model.predict([(query, t) for t in texts], batch_size=32, show_progress_bar=False,
                                                activation_fn=torch.nn.Identity())]
    return scorer


def plot_curve(curve: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Held-out MRR against training queries seen: the reranker alone, the best fusion, and dense order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen = [c["queries_seen"] for c in curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(seen, [c["dense_mrr"] for c in curve], "k--", label="dense order (the embedder)")
    ax.plot(seen, [c["reranker_alone_mrr"] for c in curve], "o-", label="reranker alone")
    ax.plot(seen, [c["best_fused_mrr"] for c in curve], "s-", label="reranker fused with dense (best weight)")
    ax.set_xlabel("training queries seen")
    ax.set_ylabel("held-out MRR (mined queries)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fit(train: list[Pair], out: Path, base: str | None, epochs: float, batch_size: int, learning_rate: float,
         max_length: int, seed: int, progress: bool, measure: Any = None, points: int = 0) -> Any:
    """Fine-tune and save the cross-encoder; `measure(model, step, loss)` runs before training and at `points`
    evenly spaced optimizer steps (the last one included)."""
    import tempfile

    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, \
        CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    from agent_lightning.memory.embedder import _device
    from agent_lightning.memory.tiny_models import build_cross_encoder_from_embedder

    with tempfile.TemporaryDirectory(prefix="reranker-") as tmp:
        start = base or str(build_cross_encoder_from_embedder(Path(tmp) / "init"))
        model = CrossEncoder(start, num_labels=1, max_length=max_length, device=_device(), local_files_only=True)
        columns: dict[str, list[str]] = {"query": [p.query for p in train], "positive": [p.positive for p in train]}
        for k in range(len(train[0].negatives)):
            columns[f"negative_{k + 1}"] = [p.negatives[k] for p in train]
        args = CrossEncoderTrainingArguments(
            output_dir=str(Path(tmp) / "trainer"), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
            learning_rate=learning_rate, warmup_steps=0.1, lr_scheduler_type="linear", weight_decay=0.01,
            logging_steps=20, save_strategy="no", report_to=[], seed=seed, disable_tqdm=not progress,
            dataloader_drop_last=True)
        callbacks = []
        if measure is not None:
            class Curve(TrainerCallback):  # the last point is the last step: train_reranker reuses it
                def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                    self.at = {max(1, round(state.max_steps * k / points)) for k in range(1, points + 1)}

                def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                    if state.global_step in self.at:
                        losses = [h["loss"] for h in state.log_history if "loss" in h]
                        model.eval()  # predict() does not switch dropout off itself
                        measure(model, state.global_step, losses[-1] if losses else None)
                        model.train()

            callbacks.append(Curve())
            model.eval()
            measure(model, 0, None)
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=Dataset.from_dict(columns),
                                      loss=MultipleNegativesRankingLoss(model, num_negatives=1), callbacks=callbacks)
        trainer.train()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    return model
