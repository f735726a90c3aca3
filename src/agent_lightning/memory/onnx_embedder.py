"""Sentence embeddings with onnxruntime, the `tokenizers` library and numpy: the embedder without torch.

    from agent_lightning.memory.onnx_embedder import OnnxEmbedder, bundle_dir
    embedder = OnnxEmbedder(bundle_dir(model_folder), max_tokens=256)   # a bundle written by onnx_export.py
    vectors = embedder.embed(["def add(a, b): return a + b"])          # float32 (n, 384), rows of length 1

A bundle is a folder in the cache (`$AGENT_LIGHTNING_CACHE`, else ~/.cache/agent_lightning, under
`memory-embedders/`; one per model folder, named by a hash of its files' names, sizes and modification times):
`model.onnx` (the transformer: token ids in, token embeddings out, fp32), optionally `model_int8.onnx` (the same
with int8 weights), `tokenizer.json` and `embedder.json` (pooling modes, max_seq_length, input names, padding,
dimension, and how closely the export matched sentence-transformers when it was made).

What sentence-transformers does for a Transformer + Pooling (+ Normalize) model is done here the same way:
texts are tokenized with the model's own fast tokenizer, truncated to min(`max_tokens`, the model's
max_seq_length) word pieces (special tokens included), padded on the tokenizer's side, run through the
transformer, pooled over the attention mask (cls, max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken;
several modes are concatenated in the configured order) and L2-normalised. Texts are tokenized once and batched
in order of token length, so a batch pads little. Queries (up to SMALL_BATCH texts) run on a one-thread session
(a query is too small for intra-op parallelism). Larger batches use one thread per idle core, counted at the
first batch by watching the cores for BUSY_SAMPLE_S while this process sleeps (idle_cores_now; the load average
counted this process's own chunking before its first batch, and gave an index run one thread on an idle
machine): on a machine that other jobs keep busy, a second thread mostly waits for a core and stalls every
operator (measured on 2 cores at load ~5: 21.8 chunks/s on one thread, 14.9 on two).

Larger batches (indexing) run on OpenVINO when the `openvino` package is installed: it compiles the same ONNX file
for the CPU in float32 and runs one single-threaded inference stream per thread, a batch in flight on each (one
infer request per stream, driven from a thread pool: a fresh AsyncInferQueue per call aborted a test process
here, std::system_error "resource deadlock avoided"), 1.6x onnxruntime's chunks/s on 2 cores with the int8 file
(benchmarks/embed_runtime.py).
When it is first compiled, its embeddings of a few probe texts are checked against onnxruntime's (cosine >=
MIN_COSINE_BULK); a missing package, a failed compile or a failed check logs one line and leaves batches on
onnxruntime. `bulk="onnxruntime"` (or AGENT_LIGHTNING_BULK_RUNTIME=onnxruntime) keeps them there; "openvino"
makes a failure an error. OpenVINO's bf16 (its default on CPUs with AMX) is not used: float32 is what was
measured and checked.

Not covered here: writing a bundle (onnx_export.py), choosing between this and torch (embedder.py), GPUs (the
onnxruntime installed is the CPU build; OpenVINO runs on the CPU device only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1
SMALL_BATCH = 4
BULK_RUNTIMES = ("auto", "openvino", "onnxruntime")
BUSY_SAMPLE_S = 0.3       # how long the first batch watches the cores to count the idle ones
MIN_COSINE_BULK = 0.999   # OpenVINO against onnxruntime on the same file (measured: >= 0.9997 on code chunks)
TOKENS_PER_BATCH = 4096   # a batch holds about this many word pieces (16 chunks of 256)
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")


def cache_root() -> Path:
    """The project's cache of converted models: $AGENT_LIGHTNING_CACHE, else ~/.cache/agent_lightning."""
    return Path(os.environ.get("AGENT_LIGHTNING_CACHE") or "~/.cache/agent_lightning").expanduser()


def bundle_dir(model_dir: Path) -> Path:
    """Where the ONNX bundle of the model in `model_dir` lives: changes whenever a file of the model changes."""
    model_dir = Path(model_dir).resolve()
    digest = hashlib.sha1(f"format {FORMAT}\n{model_dir}\n".encode())
    for dirpath, dirnames, filenames in sorted(os.walk(model_dir)):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.lower().startswith("readme"):
                continue
            stat = (Path(dirpath) / name).stat()
            rel = (Path(dirpath) / name).relative_to(model_dir).as_posix()
            digest.update(f"{rel}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in model_dir.name)[:40] or "model"
    return cache_root() / "memory-embedders" / f"{slug}-{digest.hexdigest()[:16]}"


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def idle_cores() -> int:
    """Usable cores that other work leaves idle: cores minus the 1-minute load average, rounded, at least one."""
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return cores
    return max(1, min(cores, round(cores - load)))


def idle_cores_now(sample_s: float = BUSY_SAMPLE_S) -> int:
    """Usable cores that other work leaves idle, measured over `sample_s` while this process sleeps: the busy share
    of each usable core, summed, taken from the cores, rounded, at least one. Unlike the load average (idle_cores),
    this process's own work of the last minute (chunking files before it embeds them, say) does not count."""
    try:
        import psutil

        usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        shares = psutil.cpu_percent(interval=sample_s, percpu=True)
        busy = sum(shares[i] for i in (usable or range(len(shares))) if i < len(shares)) / 100
    except Exception:  # noqa: BLE001 - no psutil, no /proc: the load average is the estimate left
        return idle_cores()
    cores = usable_cores()
    return max(1, min(cores, round(cores - busy)))


class OnnxEmbedder:
    """An exported sentence-transformers model run with onnxruntime (see module docstring)."""

    def __init__(self, bundle: str | Path, max_tokens: int = 256, int8: bool = False, threads: int | None = None,
                 bulk: str | None = None):
        from tokenizers import Tokenizer

        self.bulk_requested = bulk or os.environ.get("AGENT_LIGHTNING_BULK_RUNTIME") or "auto"
        if self.bulk_requested not in BULK_RUNTIMES:
            raise ValueError(f"bulk runtime {self.bulk_requested!r}: expected one of {', '.join(BULK_RUNTIMES)} "
                             "(AGENT_LIGHTNING_BULK_RUNTIME)")

        self.bundle = Path(bundle)
        self.spec: dict[str, Any] = json.loads((self.bundle / "embedder.json").read_text())
        self.model_file = self.bundle / ("model_int8.onnx" if int8 else "model.onnx")
        if not self.model_file.is_file():
            raise FileNotFoundError(f"{self.model_file} is missing")
        limit = self.spec.get("max_seq_length") or max_tokens
        self.max_length = min(int(max_tokens), int(limit))
        self.tokenizer = Tokenizer.from_file(str(self.bundle / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self.inputs: list[str] = list(self.spec["inputs"])
        self.pad_id = int(self.spec.get("pad_id", 0))
        self.pad_type_id = int(self.spec.get("pad_type_id", 0))
        self.left_pad = self.spec.get("padding_side", "right") == "left"
        self.modes: list[str] = list(self.spec["pooling"])
        self.dimension = int(self.spec["dimension"])
        self.threads = threads          # for batches; None: one per idle core (idle_cores_now), at the first batch
        self._sessions: dict[int, Any] = {}
        self._openvino: Any = None      # the compiled model; False: batches stay on onnxruntime
        self._requests: list[Any] = []   # one OpenVINO infer request per stream, kept for the embedder's lifetime

    @property
    def bulk_runtime(self) -> str:
        """What runs batches of more than SMALL_BATCH texts: 'openvino' or 'onnxruntime' (decided on first use)."""
        return "openvino" if self._compiled_openvino() is not None else "onnxruntime"

    def session(self, threads: int) -> Any:
        """An onnxruntime session with `threads` intra-op threads (made on first use, then kept)."""
        if threads not in self._sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            self._sessions[threads] = ort.InferenceSession(str(self.model_file), options,
                                                           providers=["CPUExecutionProvider"])
        return self._sessions[threads]

    def embed(self, texts: list[str], tokens_per_batch: int = TOKENS_PER_BATCH) -> np.ndarray:
        """Unit-length float32 embeddings of `texts`, one row each, in their order."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        if self.spec.get("do_lower_case"):
            texts = [t.lower() for t in texts]
        encodings = self.tokenizer.encode_batch(list(texts))
        small = len(texts) <= SMALL_BATCH
        if not small and not self.threads:
            self.threads = idle_cores_now()
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        batches, start = [], 0
        while start < len(order):
            width = max(1, len(encodings[order[start]].ids))
            batches.append(order[start: start + max(1, tokens_per_batch // width)])
            start += len(batches[-1])
        compiled = None if small else self._compiled_openvino()
        if compiled is not None:
            self._run_openvino(compiled, batches, encodings, out)
        else:
            session = self.session(1 if small else self.threads)
            for batch in batches:
                feed, mask = self._feed([encodings[i] for i in batch])
                out[batch] = self._pooled(session.run(None, feed)[0], mask)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-12, None)

    def _feed(self, encodings: list[Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The model's inputs for one padded batch, and its attention mask."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        types = np.full((len(encodings), width), self.pad_type_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            span = slice(width - n, width) if self.left_pad else slice(0, n)
            ids[row, span], types[row, span], mask[row, span] = e.ids, e.type_ids, 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: feed[name] for name in self.inputs}, mask

    def _pooled(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        hidden = np.asarray(hidden, dtype=np.float32)
        return np.concatenate([pool(mode, hidden, mask) for mode in self.modes], axis=1)

    def _run_openvino(self, compiled: Any, batches: list[list[int]], encodings: list[Any], out: np.ndarray) -> None:
        """Every batch through OpenVINO, one per inference stream at a time; rows written into `out`."""
        from concurrent.futures import ThreadPoolExecutor
        from queue import SimpleQueue

        idle: SimpleQueue[Any] = SimpleQueue()
        for request in self._requests:
            idle.put(request)

        def embed_batch(batch: list[int]) -> None:
            feed, mask = self._feed([encodings[i] for i in batch])
            request = idle.get()
            try:
                rows = self._pooled(request.infer(feed)[0], mask)   # infer() lets go of the GIL while it runs
            finally:
                idle.put(request)
            out[batch] = rows

        with ThreadPoolExecutor(len(self._requests), thread_name_prefix="openvino") as pool:
            list(pool.map(embed_batch, batches))

    def _compiled_openvino(self) -> Any:
        """The OpenVINO model for batches, compiled and checked on first use; None when batches use onnxruntime."""
        if self._openvino is None:
            self._openvino = self._compile_openvino() or False
        return self._openvino or None

    def _compile_openvino(self) -> Any:
        if self.bulk_requested == "onnxruntime":
            return None
        try:
            import openvino as ov

            threads = self.threads = self.threads or idle_cores_now()   # one count for streams and requests
            compiled = ov.Core().compile_model(str(self.model_file), "CPU", {
                "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": threads, "INFERENCE_NUM_THREADS": threads,
                "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False})
            probes = self.tokenizer.encode_batch(CHECK_TEXTS)
            feed, mask = self._feed(probes)
            reference = self._pooled(self.session(1).run(None, feed)[0], mask)
            mine = self._pooled(compiled.create_infer_request().infer(feed)[0], mask)
            cosine = float(((reference * mine).sum(axis=1) / (np.linalg.norm(reference, axis=1)
                                                                * np.linalg.norm(mine, axis=1))).min())
            if cosine < MIN_COSINE_BULK:
                raise ValueError(f"its embeddings differ from onnxruntime's (cosine {cosine:.4f} < {MIN_COSINE_BULK})")
            self._requests = [compiled.create_infer_request() for _ in range(threads)]
            return compiled
        except Exception as exc:  # noqa: BLE001 - ImportError, a compile error, a failed check: all say why
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}" if str(exc) else type(exc).__name__
            if self.bulk_requested == "openvino":
                raise RuntimeError(f"OpenVINO cannot run {self.model_file} ({reason})") from None
            if not isinstance(exc, ImportError):
                log.warning("embedding batches with onnxruntime: OpenVINO cannot run %s (%s)", self.model_file, reason)
            return None


CHECK_TEXTS = [   # code and prose of several lengths: what OpenVINO must embed as onnxruntime does
    "def add(a, b):\n    return a + b",
    "where are tool calls parsed?",
    'class Inventory:\n    """Items in a warehouse with their counts."""\n'
    '    def __init__(self):\n        self.items = {}',
    "export function formatPrice(cents) { return (cents / 100).toFixed(2) + ' EUR'; }",
    " ".join(f"token_{i} = compute(value_{i}, factor={i})" for i in range(60)),
]


def pool(mode: str, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' Pooling for one mode, over token embeddings (batch, tokens, dim) and their mask."""
    m = mask[..., None].astype(np.float32)
    if mode == "cls":
        return hidden[np.arange(len(hidden)), mask.argmax(axis=1)]
    if mode == "max":
        return np.where(m > 0, hidden, -np.inf).max(axis=1)
    if mode in ("mean", "mean_sqrt_len_tokens"):
        count = np.clip(m.sum(axis=1), 1e-9, None)
        return (hidden * m).sum(axis=1) / (count if mode == "mean" else np.sqrt(count))
    if mode == "weightedmean":
        weights = np.arange(1, hidden.shape[1] + 1, dtype=np.float32)[None, :, None]
        weights = weights - mask.argmax(axis=1)[:, None, None]     # counted from the first real token
        w = m * weights
        return (hidden * w).sum(axis=1) / np.clip(w.sum(axis=1), 1e-9, None)
    if mode == "lasttoken":
        last = hidden.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
        return hidden[np.arange(len(hidden)), last] * (mask.max(axis=1)[:, None] > 0)
    raise ValueError(f"pooling mode {mode!r} is not supported")
