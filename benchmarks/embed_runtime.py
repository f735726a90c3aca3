"""Claim: OpenVINO embeds indexing batches faster than onnxruntime, from the same ONNX file, at equal retrieval.

    .venv/bin/python benchmarks/embed_runtime.py [--chunks 1024] [--rounds 3] [--no-int8] [--no-write]

The onnx engine (memory/onnx_embedder.py) runs batches of more than 4 texts on OpenVINO when it is installed
(one single-threaded inference stream per idle core, batches in flight side by side) and on onnxruntime otherwise
(one session, one intra-op thread per idle core); queries stay on onnxruntime. Both read the same file: the int8
export by default (`memory.int8`), the fp32 one with --no-int8. This script measures, side by side in one run:

1. embedding alone: `--chunks` chunk texts (half this repository's src/, half a spread of stdlib files, as
   benchmarks/memory_scale.py --engines), `--rounds` rounds whose runtime order rotates; chunks per second, the
   ratio, and the cosine between the two runtimes' vectors of each chunk;
2. indexing end to end: the two corpora of benchmarks/retrieval.py (HumanEval as modules of 8 problems; 17 stdlib
   modules) into fresh stores with each runtime (chunking, embedding, Chroma), then Recall@5 and MRR of every query
   form in dense order (no reranker): the vectors must retrieve what onnxruntime's retrieve.

Writes the table into docs/results.md (block `embed-runtime`) unless --no-write. Not measured: OpenVINO's bf16
(not used; see onnx_embedder.py), the reranker (it stays on onnxruntime), GPUs.
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
from memory_scale import engine_chunks  # noqa: E402
from retrieval import CANDIDATES, build_corpus, build_stdlib_corpus, evaluate  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/embed_runtime.py"
RUNTIMES = ("onnxruntime", "openvino")


def rotated(items: tuple[str, ...], r: int) -> list[str]:
    return list(items[r % len(items):] + items[:r % len(items)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1024, help="Chunk texts embedded in part 1.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds per part (rotating runtime order).")
    parser.add_argument("--no-int8", action="store_true", help="The fp32 export instead of the int8 default.")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/results.md as it is.")
    args = parser.parse_args()
    import numpy as np

    from agent_lightning.memory.embedder import DEFAULT_MAX_TOKENS, Embedder
    from agent_lightning.memory.retriever import Retriever
    from agent_lightning.memory.store import CodeStore

    int8 = not args.no_int8
    embedders = {rt: Embedder(backend="onnx", int8=int8, bulk=rt) for rt in RUNTIMES}
    texts = engine_chunks(args.chunks)
    for rt, e in embedders.items():
        e.load()
        e.embed(texts[:64])  # sessions compiled (and OpenVINO checked) outside the timings
        if e._onnx.bulk_runtime != rt:
            print(f"{rt} is not available here (see the log above)", file=sys.stderr)
            return 2
    load_before = os.getloadavg()[0]
    seconds: dict[str, list[float]] = {rt: [] for rt in RUNTIMES}
    vectors = {}
    for r in range(args.rounds):
        for rt in rotated(RUNTIMES, r):
            started = time.perf_counter()
            vectors[rt] = np.asarray(embedders[rt].embed(texts), dtype=np.float32)
            seconds[rt].append(time.perf_counter() - started)
        print(f"round {r + 1}: " + ", ".join(f"{rt} {seconds[rt][-1]:.1f} s" for rt in RUNTIMES), flush=True)
    cosine = (vectors["onnxruntime"] * vectors["openvino"]).sum(axis=1)
    embed_ratio = statistics.median(a / b for a, b in zip(seconds["onnxruntime"], seconds["openvino"]))

    work = Path(tempfile.mkdtemp(prefix="embed-runtime-"))
    corpora, records = {}, {}
    for name, build in (("humaneval", lambda out: build_corpus(out, 8)), ("stdlib", build_stdlib_corpus)):
        corpora[name] = work / name
        corpora[name].mkdir()
        records[name] = build(corpora[name])
    index_rates: dict[str, list[float]] = {rt: [] for rt in RUNTIMES}
    stores: dict[str, dict[str, CodeStore]] = {}
    for r in range(args.rounds):
        for rt in rotated(RUNTIMES, r):
            chunks, spent, stores[rt] = 0, 0.0, {}
            for name, corpus in corpora.items():
                store = CodeStore(work / f"store-{name}-{rt}-{r}", backend="onnx", int8=int8)
                store.embedder = embedders[rt]   # the same model and window, this runtime for batches
                started = time.perf_counter()
                report = store.index(corpus, progress=False)
                spent += time.perf_counter() - started
                chunks += report.total_chunks
                stores[rt][name] = store
            index_rates[rt].append(chunks / spent)
        print(f"index round {r + 1}: " + ", ".join(f"{rt} {index_rates[rt][-1]:.1f} chunks/s" for rt in RUNTIMES),
              flush=True)
    index_ratio = statistics.median(b / a for a, b in zip(index_rates["onnxruntime"], index_rates["openvino"]))
    quality = {rt: {(name, form): evaluate(Retriever(stores[rt][name], CANDIDATES, CANDIDATES), records[name], form)
                    for name in corpora for form in records[name][0]["queries"]} for rt in RUNTIMES}
    forms = list(quality["onnxruntime"])

    threads = embedders["onnxruntime"]._onnx.threads
    lines = ["| runtime (batches) | embed chunks/s | vs onnxruntime | index chunks/s | vs onnxruntime | "
             + " | ".join(f"{name} {form} R@5 / MRR" for name, form in forms) + " |",
             "|" + "---|" * (5 + len(forms))]
    for rt in RUNTIMES:
        embed_rate = len(texts) / statistics.median(seconds[rt])
        index_rate = statistics.median(index_rates[rt])
        cells = [f"{quality[rt][k]['recall@5']:.3f} / {quality[rt][k]['mrr']:.3f}" for k in forms]
        ours = rt == "openvino"
        lines.append(f"| {rt} | {embed_rate:.1f} | {embed_ratio if ours else 1.0:.2f}x | {index_rate:.1f} | "
                     f"{index_ratio if ours else 1.0:.2f}x | " + " | ".join(cells) + " |")
    worst = min(quality["openvino"][k]["recall@5"] - quality["onnxruntime"][k]["recall@5"] for k in forms)
    lines += ["", f"{len(texts)} chunk texts embedded, {args.rounds} rounds, rotating order; the two corpora "
              f"indexed {args.rounds} times per runtime. Cosine between the runtimes' vectors of a chunk: min "
              f"{cosine.min():.4f}, mean {cosine.mean():.5f}; worst Recall@5 change {worst:+.3f}. "
              f"{'int8' if int8 else 'fp32'} export, window {DEFAULT_MAX_TOKENS}, {threads} thread(s) for batches, "
              f"{os.cpu_count()} CPU cores, load "
              f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after. {time.strftime('%Y-%m-%d')}, reproduce: "
              f"`{' '.join([COMMAND, *sys.argv[1:]])}`."]
    publish("embed-runtime", "\n".join(lines), write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
