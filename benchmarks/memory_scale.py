"""Code memory at scale: embedding engines side by side, and indexing and querying the Python standard library.

    .venv/bin/python benchmarks/memory_scale.py --engines [--chunks 192] [--rounds 3] [--index-sample N]
    .venv/bin/python benchmarks/memory_scale.py [--sample N] [--queries 50] [--store DIR] [--backend B] [--int8]

`--engines`: the embedding engines (memory/embedder.py) on the same chunks, in one process: `torch` (the
reference: sentence-transformers), `onnx` (onnxruntime, fp32, this package's ONNX export), `onnx-int8` (the
same with int8 weights) and `onnx-int8-ov` (the int8 file with its batches on OpenVINO: the shipped default).
The chunks are the embedding texts of tree-sitter chunks, half from this repository's src/ and half from a slice
of the standard library (every k-th file), shuffled with a fixed seed. Each round
embeds all of them with every engine, in an order that rotates from round to round, so a change of load on a
shared machine hits every engine alike; the table gives the median chunks/s and the median of the per-round
ratios to torch, the same per CPU second (the process's CPU time, all threads: what a busy machine changes least),
and each engine's smallest and mean cosine similarity to the torch vectors. Each engine uses the threads it
ships with (torch: one per core; ONNX: one per idle core, see memory/onnx_embedder.py), or `--threads N` each
(torch.set_num_threads, onnxruntime's intra-op threads, OpenVINO's streams). Then this
repository's src/ (or `--index-sample N` of its files) is indexed end to end into a fresh store with each engine
(chunking, embedding, Chroma writes), one after the other. Models are loaded (and exported) outside the
timings. The machine's load average is printed before and after: on a shared machine the absolute rates move
with the load, the ratios much less. Cold `memory query` timing is benchmarks/memory_query_cold.py.

Without `--engines` (the standard library): corpus is the standard library of the interpreter running this
script (`sysconfig` "stdlib"; site-packages and __pycache__ are skipped like any indexing run), test suites
included. `--sample N` indexes every k-th file so that N files are indexed (a subset that keeps the stdlib's mix
of small and large modules); without it, all files. Before indexing, every file is chunked (no embedding) to
count the chunks of the whole standard library, so a sampled run also reports what the full run would take at the
measured rate.

Measured, in one process, with the shipped defaults (tree-sitter chunks, all-MiniLM-L6-v2 embeddings read up to
128 word pieces (memory.max_tokens) unless `--max-tokens`, embedded by `--backend` (default auto: the ONNX engine),
Chroma in cosine space):
  1. index time of the files (from an empty store): files, chunks, files/s, chunks/s. Target: whole stdlib <= 10 min.
  2. re-index with nothing changed (hash check of every file, nothing embedded). Target: <= 20 s.
  3. query latency, p50/p95 over `--queries` queries (`--rerank-queries` of them with reranking) (first lines of docstrings of stdlib functions, embedded
     on the fly): dense top-20 (target <= 50 ms), and dense top-20 + cross-encoder rerank of the 20 (target
     <= 300 ms). No trained cross-encoder can be loaded offline, so the rerank row uses a cross-encoder with the
     exact architecture and size of ms-marco-MiniLM-L-6-v2 (MiniLM-L6's encoder with a random head): its
     latency is the real one, its order is meaningless.
Not measured: retrieval quality (benchmarks/retrieval.py, which takes --backend and --int8 too), concurrent
writers (one writer at a time by design), GPUs (the ONNX engine is CPU-only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from agent_lightning.memory.embedder import DEFAULT_MAX_TOKENS  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/memory_scale.py"
TARGETS = {"index_s": 600, "reindex_s": 20, "dense_ms": 50, "rerank_ms": 300}


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


ENGINES = {"torch": ("torch", False, None), "onnx": ("onnx", False, "onnxruntime"),  # (backend, int8, batches on)
           "onnx-int8": ("onnx", True, "onnxruntime"), "onnx-int8-ov": ("onnx", True, "openvino")}


def engine_chunks(count: int, seed: int = 0) -> list[str]:
    """`count` embedding texts: half from this repository's src/, half from every k-th stdlib file; shuffled."""
    import random

    from agent_lightning.memory.chunker import chunk_text
    from agent_lightning.memory.store import iter_files

    def texts_of(root: Path, files: list[Path]) -> list[str]:
        out = []
        for f in files:
            chunks, _ = chunk_text(f.relative_to(root).as_posix(), f.read_text("utf-8", "replace"))
            out += [c.embedding_text() for c in chunks]
        return out

    src = ROOT / "src"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    std_files = list(iter_files(stdlib))
    rng = random.Random(seed)
    ours = texts_of(src, list(iter_files(src)))
    theirs = texts_of(stdlib, std_files[:: max(1, len(std_files) // 60)])
    rng.shuffle(ours)
    rng.shuffle(theirs)
    chosen = ours[: count // 2] + theirs[: count - count // 2]
    rng.shuffle(chosen)
    return chosen


def run_engines(args: argparse.Namespace) -> int:
    """Embedding throughput and fidelity of each engine on the same chunks, then end-to-end indexing of src/."""
    import numpy as np

    from agent_lightning.memory.embedder import Embedder
    from agent_lightning.memory.store import CodeStore, iter_files

    print(f"reproduce: {COMMAND} --engines --chunks {args.chunks} --rounds {args.rounds}"
          + (f" --index-sample {args.index_sample}" if args.index_sample else "")
          + (f" --threads {args.threads}" if args.threads else "") + f" --max-tokens {args.max_tokens}")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    texts = engine_chunks(args.chunks)
    embedders = {name: Embedder(max_tokens=args.max_tokens, backend=b, int8=q, bulk=rt)
                 for name, (b, q, rt) in ENGINES.items()}
    for name, e in embedders.items():
        t = time.perf_counter()
        e.load()
        if e.backend == "onnx" and args.threads:
            e._onnx.threads = args.threads
        e.embed(texts[:8])  # sessions and threads made outside the timings
        used = e._onnx.threads if e.backend == "onnx" else torch.get_num_threads()
        print(f"{name:10s} ready in {time.perf_counter() - t:5.1f} s (engine: {e.backend}, {used} thread(s))")
    wall: dict[str, list[float]] = {name: [] for name in embedders}
    cpu: dict[str, list[float]] = {name: [] for name in embedders}
    vectors: dict[str, Any] = {}
    names = list(embedders)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t, c = time.perf_counter(), time.process_time()
            vectors[name] = np.asarray(embedders[name].embed(texts), dtype=np.float32)
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    tokens = embedders["onnx"]._onnx.tokenizer.encode_batch(texts)
    mean_tokens = statistics.mean(len(e.ids) for e in tokens)
    print(f"\n{len(texts)} chunks ({mean_tokens:.0f} word pieces on average, at most {args.max_tokens}), "
          f"{args.rounds} rounds; load average {load_before[0]:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after, {os.cpu_count()} CPU cores")
    print(f"{'engine':12s} {'chunks/s':>9s} {'x torch':>8s} {'chunks/CPU-s':>13s} {'x torch':>8s} {'min cos':>8s} "
          f"{'mean cos':>9s}")
    for name in names:
        ratio = statistics.median(t / s for t, s in zip(wall["torch"], wall[name]))
        cpu_ratio = statistics.median(t / s for t, s in zip(cpu["torch"], cpu[name]))
        cos = (vectors["torch"] * vectors[name]).sum(axis=1)
        print(f"{name:12s} {len(texts) / statistics.median(wall[name]):9.1f} {ratio:7.2f}x "
              f"{len(texts) / statistics.median(cpu[name]):13.1f} {cpu_ratio:7.2f}x {cos.min():8.4f} {cos.mean():9.4f}")

    src = ROOT / "src"
    files = list(iter_files(src))
    corpus = src
    work = Path(tempfile.mkdtemp(prefix="memory-engines-"))
    if args.index_sample and args.index_sample < len(files):
        corpus = work / "src"
        for f in files[:: max(1, len(files) // args.index_sample)][: args.index_sample]:
            target = corpus / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read_bytes())
    print(f"\nindex {corpus if corpus == src else 'a sample of src/'} end to end, one engine after the other "
          f"(load average {os.getloadavg()[0]:.1f}):")
    rates, cpu_rates = {}, {}
    for name, (backend, int8, _) in ENGINES.items():
        store = CodeStore(work / f"store-{name}", max_tokens=args.max_tokens, backend=backend, int8=int8)
        store.embedder = embedders[name]   # the engine measured above (the store's own is shared per process)
        if store.embedder.backend == "onnx" and args.threads:
            store.embedder._onnx.threads = args.threads
        c = time.process_time()
        report = store.index(corpus, progress=False)
        rates[name] = report.chunks_written / report.seconds
        cpu_rates[name] = report.chunks_written / (time.process_time() - c)
        print(f"{name:12s} {report.chunks_written:6d} chunks from {report.indexed:4d} files in "
              f"{report.seconds:6.1f} s: "
              f"{rates[name]:6.1f} chunks/s ({rates[name] / rates['torch']:.2f}x torch), {cpu_rates[name]:6.1f} "
              f"chunks/CPU-s ({cpu_rates[name] / cpu_rates['torch']:.2f}x torch)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", action="store_true",
                        help="Compare the embedding engines side by side (see the module docstring).")
    parser.add_argument("--chunks", type=int, default=192, help="--engines: chunks embedded per engine and round.")
    parser.add_argument("--rounds", type=int, default=3, help="--engines: rounds.")
    parser.add_argument("--index-sample", type=int, help="--engines: index N files of src/ (default: all).")
    parser.add_argument("--threads", type=int, help="--engines: threads per engine (default: each engine's own).")
    parser.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"],
                        help="Embedding engine for the stdlib run (memory.backend).")
    parser.add_argument("--int8", action="store_true", help="int8 weights for the onnx engine (memory.int8).")
    parser.add_argument("--sample", type=int, help="Index N files spread over the stdlib (default: all).")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--rerank-queries", type=int, default=20, help="Queries timed with reranking.")
    parser.add_argument("--store", help="Store folder (default: a fresh temporary one).")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                        help=f"Word pieces of each chunk the embedder reads (memory.max_tokens; default "
                             f"{DEFAULT_MAX_TOKENS}).")
    args = parser.parse_args()
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("transformers", "sentence_transformers", "bitsandbytes", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import transformers  # the torch engine and the cross-encoder: their progress bars off

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if args.engines:
        return run_engines(args)
    from agent_lightning.memory.chunker import chunk_text
    from agent_lightning.memory.reranker import Reranker
    from agent_lightning.memory.retriever import Retriever
    from agent_lightning.memory.store import CodeStore, iter_files
    from agent_lightning.memory.tiny_models import build_cross_encoder_from_embedder

    print(f"reproduce: {COMMAND}" + (f" --sample {args.sample}" if args.sample else "") +
          f" --queries {args.queries} --rerank-queries {args.rerank_queries} --max-tokens {args.max_tokens}"
          f" --backend {args.backend}" + (" --int8" if args.int8 else ""))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = list(iter_files(stdlib))
    import hashlib

    t = time.perf_counter()
    for f in files:  # what a no-change re-index of the whole stdlib does per file: read and hash
        hashlib.sha1(f.read_bytes()).hexdigest()
    scan_s = time.perf_counter() - t
    t = time.perf_counter()
    total_chunks, docs = 0, []
    for f in files:
        data = f.read_bytes()
        if len(data) > 1 << 20 or b"\0" in data[:8192]:
            continue
        chunks, _ = chunk_text(f.relative_to(stdlib).as_posix(), data.decode("utf-8", "replace"))
        total_chunks += len(chunks)
        docs += [c.doc for c in chunks if c.kind in ("function", "method") and len(c.doc) > 25]
    chunk_s = time.perf_counter() - t
    print(f"stdlib {stdlib.name}: {len(files)} files, {total_chunks} chunks (chunking alone: {chunk_s:.1f} s, "
          f"reading and hashing every file: {scan_s:.2f} s)")

    work = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="memory-scale-"))
    corpus = stdlib
    if args.sample and args.sample < len(files):
        step = len(files) / args.sample
        chosen = [files[int(i * step)] for i in range(args.sample)]
        corpus = work / "sample"
        for f in chosen:
            target = corpus / f.relative_to(stdlib)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read_bytes())
    store = CodeStore(work / "store", max_tokens=args.max_tokens, backend=args.backend, int8=args.int8)
    engine = store.embedder.load()  # load outside the timings
    print(f"embedding engine: {engine}" + (" int8" if args.int8 and engine == "onnx" else ""))
    report = store.index(corpus)
    print(f"index: {report.line()}")
    if engine == "onnx":
        onnx = store.embedder._onnx
        print(f"batches embedded by {onnx.bulk_runtime} on {onnx.threads} thread(s)")
    rate = report.chunks_written / report.seconds
    print(f"index rate: {report.indexed / report.seconds:.2f} files/s, {rate:.1f} chunks/s")
    full_s = total_chunks / rate if corpus != stdlib else report.seconds
    label = "measured" if corpus == stdlib else f"extrapolated from {report.indexed} files at {rate:.1f} chunks/s"
    again = store.index(corpus, progress=False)
    print(f"re-index, nothing changed: {again.seconds:.2f} s ({again.unchanged} files unchanged, "
          f"{again.chunks_written} chunks written)")

    queries = [docs[int(i * len(docs) / args.queries)] for i in range(args.queries)]
    dense = Retriever(store, candidates=20, top_n=20)
    dense.search(queries[0])  # warm-up
    dense_ms = []
    for q in queries:
        t = time.perf_counter()
        dense.search(q)
        dense_ms.append(1000 * (time.perf_counter() - t))
    reranker = Reranker(str(build_cross_encoder_from_embedder(work / "cross-encoder-minilm-l6")))
    rerank = Retriever(store, candidates=20, top_n=3, reranker=reranker)
    rerank.search(queries[0])
    rerank_ms = []
    for q in queries[: args.rerank_queries]:
        t = time.perf_counter()
        rerank.search(q)
        rerank_ms.append(1000 * (time.perf_counter() - t))

    rows = [("index the whole stdlib", f"{full_s / 60:.1f} min ({label})", full_s <= TARGETS["index_s"],
             "<= 10 min"),
            ("re-index, no change", f"{again.seconds:.2f} s ({again.unchanged} files indexed; reading and hashing "
             f"all {len(files)}: {scan_s:.2f} s)", max(again.seconds, scan_s) <= TARGETS["reindex_s"], "<= 20 s"),
            ("query, dense top-20", f"p50 {statistics.median(dense_ms):.1f} ms, p95 {percentile(dense_ms, .95):.1f} ms",
             percentile(dense_ms, .95) <= TARGETS["dense_ms"], "<= 50 ms"),
            ("query, dense + rerank 20 (MiniLM-L6-size)", f"p50 {statistics.median(rerank_ms):.1f} ms, "
             f"p95 {percentile(rerank_ms, .95):.1f} ms", percentile(rerank_ms, .95) <= TARGETS["rerank_ms"], "<= 300 ms")]
    print(f"\nstore: {report.total_chunks} chunks from {report.files} files; {len(queries)} queries; "
          f"{os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.1f}")
    for name, value, ok, target in rows:
        print(f"{name:44s} {value:70s} target {target:10s} {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
