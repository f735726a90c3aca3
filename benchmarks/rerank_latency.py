"""Reranking latency: 20 candidates through the torch and the ONNX engines, side by side, at 1 and 2 threads.

    .venv/bin/python benchmarks/rerank_latency.py [--reranker DIR] [--max-length 128] [--repeats 3]

The reranker is a cross-encoder folder (`memory train-reranker`'s output, or any one-logit CrossEncoder); without
--reranker a MiniLM-L6 cross-encoder with a random head is built from the packaged embedder (the architecture a
trained reranker has: timing only, its scores mean nothing). Candidates are 20 functions of the standard
library's shutil.py, queries five short phrases; each engine reranks every query `--repeats` times and the p50
wall time per query is printed, with the load average. Target: p50 <= 300 ms on 2 cores.
Not measured: quality (benchmarks/retrieval.py), GPUs.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
QUERIES = ["copy a directory tree", "remove a file", "find an executable on the path", "archive a folder",
           "free space on a disk"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reranker", metavar="DIR")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import onnxruntime as ort

    from agent_lightning.memory.reranker import Reranker
    from agent_lightning.memory.tiny_models import build_cross_encoder_from_embedder

    folder = args.reranker or str(build_cross_encoder_from_embedder(Path(tempfile.mkdtemp()) / "minilm-ce"))
    source = (Path(sysconfig.get_paths()["stdlib"]) / "shutil.py").read_text()
    texts = ["def " + part[:1500] for part in source.split("\ndef ")[1:21]]
    print(f"reproduce: .venv/bin/python benchmarks/rerank_latency.py" + (f" --reranker {args.reranker}"
                                                                       if args.reranker else ""))

    def p50(reranker: Reranker) -> float:
        times = []
        for _ in range(args.repeats):
            for query in QUERIES:
                started = time.perf_counter()
                reranker.scores(query, texts)
                times.append(time.perf_counter() - started)
        return 1000 * statistics.median(times)

    rows = []
    torch_reranker = Reranker(folder, max_length=args.max_length, backend="torch")
    assert torch_reranker.available, "the reranker does not load"
    for threads in (1, 2):
        import torch

        torch.set_num_threads(threads)
        rows.append((f"torch, {threads} thread(s)", p50(torch_reranker)))
    for int8 in (False, True):
        reranker = Reranker(folder, max_length=args.max_length, backend="onnx", int8=int8)
        assert reranker.available and reranker.engine == "onnx"
        engine = reranker._model
        for threads in (1, 2):
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            engine.session = ort.InferenceSession(str(engine.model_file), options, providers=["CPUExecutionProvider"])
            rows.append((f"onnx {'int8' if int8 else 'fp32'}, {threads} thread(s)", p50(reranker)))
    print(f"\n20 candidates, {args.max_length} word pieces, {len(QUERIES) * args.repeats} queries per row, load "
          f"average {os.getloadavg()[0]:.2f}")
    for label, ms in rows:
        print(f"{label:26s} p50 {ms:6.0f} ms")
    best = min(rows, key=lambda r: r[1])
    print(f"fastest: {best[0]} ({best[1]:.0f} ms; target <= 300 ms: {'met' if best[1] <= 300 else 'not met'}); "
          f"torch 2 threads / fastest: {rows[1][1] / best[1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
