"""Claim: reading each chunk through a 128-word-piece window indexes faster than MiniLM's full 256 at equal recall.

    .venv/bin/python benchmarks/embed_window.py [--windows 256,192,128,96] [--rounds 2] [--backend onnx] [--no-int8]
                                                [--no-write]

The embedder's cost grows with the word pieces it reads, and a shipped chunk (up to 3,000 non-space characters)
fills MiniLM's 256-piece window; its header, signature and docstring come first. This script indexes the two
corpora of benchmarks/retrieval.py (HumanEval as modules of 8 problems, queried by docstring, masked docstring
and prose only; 17 standard-library modules queried by 65 paraphrases) into fresh stores with the shipped AST
chunks, once per window (`memory.max_tokens`), and retrieves 20 candidates in dense order (no reranker, no BM25:
the embedding alone decides). Per window: chunks embedded per second over both corpora (the median of `--rounds`
rounds whose window order rotates, so a change of machine load hits every window alike), its ratio to 256, and
Recall@1 / Recall@5 / MRR per query form. Target for a shorter default: Recall@5 within 0.01 of 256 on every form.

Writes the table into docs/results.md (block `embed-window`) unless --no-write. Not measured: corpora other than
these two, the reranker (it reads pairs at its own length, see memory/reranker.py), GPUs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _results import publish  # noqa: E402
from retrieval import CANDIDATES, build_corpus, build_stdlib_corpus, evaluate  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/embed_window.py"


def index_rate(corpora: dict[str, Path], work: Path, window: int, tag: str, args: argparse.Namespace):
    """Index every corpus into a fresh store read through `window` pieces; (chunks per second, stores)."""
    from agent_lightning.memory.store import CodeStore

    chunks, seconds, stores = 0, 0.0, {}
    for name, corpus in corpora.items():
        store = CodeStore(work / f"store-{name}-{window}-{tag}", max_tokens=window, backend=args.backend,
                          int8=not args.no_int8)
        store.embedder.embed(["load the model outside the timing"])
        started = time.perf_counter()
        report = store.index(corpus, progress=False)
        seconds += time.perf_counter() - started
        chunks += report.total_chunks
        stores[name] = store
    return chunks / seconds, stores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", default="256,192,128,96", help="Comma-separated word-piece windows; the first "
                                                                     "is the reference the ratios are taken to.")
    parser.add_argument("--rounds", type=int, default=2, help="Index rounds per window (rotating order).")
    parser.add_argument("--backend", default="onnx", choices=["auto", "onnx", "torch"])
    parser.add_argument("--no-int8", action="store_true", help="fp32 ONNX weights instead of the int8 default.")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/results.md as it is.")
    args = parser.parse_args()
    from agent_lightning.memory.retriever import Retriever

    windows = [int(w) for w in args.windows.split(",")]
    work = Path(tempfile.mkdtemp(prefix="embed-window-"))
    corpora, records = {}, {}
    for name, build in (("humaneval", lambda out: build_corpus(out, 8)), ("stdlib", build_stdlib_corpus)):
        corpora[name] = work / name
        corpora[name].mkdir()
        records[name] = build(corpora[name])
    rates: dict[int, list[float]] = {w: [] for w in windows}
    stores: dict[int, dict] = {}
    for r in range(args.rounds):
        for w in windows[r % len(windows):] + windows[:r % len(windows)]:
            rate, stores[w] = index_rate(corpora, work, w, f"r{r}", args)
            rates[w].append(rate)
            print(f"round {r + 1}: window {w}: {rate:.1f} chunks/s", flush=True)
    reference = windows[0]
    quality = {w: {(name, form): evaluate(Retriever(stores[w][name], CANDIDATES, CANDIDATES), records[name], form)
                   for name in corpora for form in records[name][0]["queries"]} for w in windows}
    forms = list(quality[reference])
    head = "| window (word pieces) | chunks/s | vs " + str(reference) + " | " + " | ".join(
        f"{name} {form} R@1 / R@5 / MRR" for name, form in forms) + " |"
    lines = [head, "|" + "---|" * (3 + len(forms))]
    for w in windows:
        speed = statistics.median(rates[w])
        cells = [f"{m['recall@1']:.3f} / {m['recall@5']:.3f} / {m['mrr']:.3f}" for m in quality[w].values()]
        lines.append(f"| {w} | {speed:.1f} | {speed / statistics.median(rates[reference]):.2f}x | "
                     + " | ".join(cells) + " |")
    worst = {w: min(quality[w][k]["recall@5"] - quality[reference][k]["recall@5"] for k in forms) for w in windows}
    engine = f"{args.backend}{'' if args.no_int8 else ' int8'}"
    load = os.getloadavg()[0]
    lines += ["", "Worst Recall@5 change against " + str(reference) + " over the query forms: "
              + ", ".join(f"{w}: {worst[w]:+.3f}" for w in windows[1:])
              + " (target: within 0.01). Queries: " + ", ".join(
                  f"{name} {form} {quality[reference][(name, form)]['queries']}" for name, form in forms)
              + f"; {args.rounds} rounds, engine {engine}, load {load:.1f} at the end. {time.strftime('%Y-%m-%d')}, "
              f"reproduce: `{' '.join([COMMAND, *sys.argv[1:]])}`."]
    publish("embed-window", "\n".join(lines), write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
