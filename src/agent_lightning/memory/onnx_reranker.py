"""Cross-encoder reranking with onnxruntime, `tokenizers` and numpy: the reranker without torch.

    from agent_lightning.memory.onnx_reranker import load_onnx_reranker
    model = load_onnx_reranker(folder, max_length=128, int8=True)   # exported and checked once, then cached
    scores = model.predict([("parse a tool call", "def parse(...): ...")])   # sigmoid scores, one per pair

A bundle lives in the cache beside the embedders' (`memory-rerankers/`, keyed by the folder's files like
onnx_embedder.bundle_dir): `model.onnx` (token ids in, the one logit out), optionally `model_int8.onnx`,
`tokenizer.json`, `reranker.json` (input names, padding, and how closely the export matched). Export loads the
folder with transformers (eager attention), traces it with torch.onnx.export (batch and length dynamic), fuses it
with onnxruntime's BERT optimizer (kept only if it still matches), and checks it against sentence-transformers'
`CrossEncoder.predict` on PROBE_PAIRS: every sigmoid score within MAX_SCORE_DIFF (fp32) or MAX_SCORE_DIFF_INT8
(int8 weights, MatMulNBits as for the embedder; checked against the scores kept at export, and the fp32 model is
used when it drifts). A bundle that fails its check is not kept and the caller uses torch. Pairs are tokenized
as the CrossEncoder does (the model's fast tokenizer, `longest_first` truncation at `max_length`), run in one
batch (a rerank is 20-odd pairs) on one thread per usable core, busy or not: a rerank is a burst of a few hundred
milliseconds, and with spinning off two threads beat one on 2 cores whether both were idle, one was busy or both
were (int8 p50 319 / 489 / 812 ms against 597 / 609 / 1034; docs/results.md). Sized by the load average instead, a
process that had just embedded (a benchmark, a warm gateway) counted its own work and reranked on one thread.

Only single-logit sequence classifiers (what `memory train-reranker` saves, and the ms-marco cross-encoders) are
exported; anything else raises ExportError and stays on torch.

Not covered here: choosing between this and torch (reranker.py), GPUs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from agent_lightning.memory.onnx_embedder import bundle_dir, usable_cores

log = logging.getLogger(__name__)

MAX_SCORE_DIFF = 1e-3
MAX_SCORE_DIFF_INT8 = 0.03
PROBE_PAIRS = [
    ("parse a tool call", "def parse_tool_call(text):\n    return json.loads(text)"),
    ("add two numbers", "def add(a, b):\n    return a + b"),
    ("add two numbers", "class Inventory:\n    def __init__(self):\n        self.items = {}"),
    ("where is the price formatted?", "export function formatPrice(cents) { return (cents / 100).toFixed(2); }"),
    ("x", "y"),
    ("a long query " * 40, " ".join(f"token_{i} = compute(value_{i}, factor={i})" for i in range(120))),
]


def reranker_bundle_dir(model_dir: Path) -> Path:
    embedders = bundle_dir(model_dir)
    return embedders.parent.parent / "memory-rerankers" / embedders.name


def load_onnx_reranker(folder: Path, max_length: int, int8: bool) -> OnnxCrossEncoder:
    """The ONNX engine for the cross-encoder in `folder`, exported (and int8-quantized) first if needed; raises
    ExportError (or ImportError) when it cannot be made faithfully."""
    from filelock import FileLock

    bundle = reranker_bundle_dir(folder)
    name = "model_int8.onnx" if int8 else "model.onnx"
    if not (bundle / name).is_file() or not (bundle / "reranker.json").is_file():
        bundle.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(bundle) + ".lock"):
            if not (bundle / "reranker.json").is_file():
                _export(folder, bundle)
            if int8 and not (bundle / "model_int8.onnx").is_file():
                try:
                    _quantize(bundle)
                except Exception as exc:  # noqa: BLE001 - int8 is a speed-up: the fp32 export is as right
                    log.warning("memory.int8: cannot quantize reranker %s (%s: %s); using its fp32 ONNX model.",
                                folder.name, type(exc).__name__, str(exc).splitlines()[0][:160] if str(exc) else "")
                    int8 = False
    return OnnxCrossEncoder(bundle, max_length, int8)


class OnnxCrossEncoder:
    """An exported cross-encoder run with onnxruntime (see module docstring)."""

    def __init__(self, bundle: str | Path, max_length: int = 256, int8: bool = False):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.bundle = Path(bundle)
        self.spec: dict[str, Any] = json.loads((self.bundle / "reranker.json").read_text())
        self.model_file = self.bundle / ("model_int8.onnx" if int8 else "model.onnx")
        self.max_length = min(int(max_length), int(self.spec.get("max_length") or max_length))
        self.tokenizer = Tokenizer.from_file(str(self.bundle / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length, strategy="longest_first")
        options = ort.SessionOptions()
        options.intra_op_num_threads = usable_cores()  # every core, even busy ones (module docstring)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])

    def logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        texts = [(q.lower(), t.lower()) if self.spec.get("do_lower_case") else (q, t) for q, t in pairs]
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), int(self.spec.get("pad_id", 0)), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], types[row, :n], mask[row, :n] = e.ids, e.type_ids, 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        out = self.session.run(None, {name: feed[name] for name in self.spec["inputs"]})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(pairs), -1)[:, 0]

    def predict(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Sigmoid scores, as CrossEncoder.predict gives for a one-logit model."""
        return [1.0 / (1.0 + math.exp(-float(v))) for v in self.logits(pairs)]


# ------------------------------------------------------------------------------------------ export
def _export(folder: Path, bundle: Path) -> None:
    from agent_lightning.memory.onnx_export import ExportError, _fuse, _silenced, _trace, _write_json

    with _silenced():
        try:
            import onnx  # noqa: F401 - torch.onnx.export needs it
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as exc:
            raise ExportError(f"exporting needs torch, transformers and onnx ({exc})") from None
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True,
                                                                   attn_implementation="eager").eval()
    if getattr(model.config, "num_labels", 1) != 1:
        raise ExportError(f"only one-logit cross-encoders are exported (it has {model.config.num_labels} labels)")
    if not getattr(tokenizer, "is_fast", False):
        raise ExportError("its tokenizer has no fast (tokenizers) version")
    import inspect

    accepted = set(inspect.signature(model.forward).parameters)
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids")
              if n in tokenizer.model_input_names and n in accepted]
    tmp = Path(tempfile.mkdtemp(prefix=bundle.name + ".tmp-", dir=bundle.parent))
    try:
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.no_truncation()
        backend.no_padding()
        backend.save(str(tmp / "tokenizer.json"))
        spec = {"source": str(folder.resolve()), "inputs": inputs, "pad_id": int(tokenizer.pad_token_id or 0),
                "max_length": int(min(getattr(model.config, "max_position_embeddings", 512), 512)),
                "do_lower_case": bool(getattr(tokenizer, "do_lower_case", False))}
        _write_json(tmp / "reranker.json", spec)
        _trace(model, inputs, tmp / "model.onnx", output="logits", output_name="logits")
        reference = _reference_scores(folder)
        if _fuse(tmp / "model.onnx", tmp / "model.fused.onnx", model.config):
            diff = _max_diff(reference, tmp, "model.fused.onnx")
            if diff <= MAX_SCORE_DIFF:
                os.replace(tmp / "model.fused.onnx", tmp / "model.onnx")
            else:
                (tmp / "model.fused.onnx").unlink()
        diff = _max_diff(reference, tmp, "model.onnx")
        if diff > MAX_SCORE_DIFF:
            raise ExportError(f"the ONNX export differs from the CrossEncoder (score difference {diff:.4f})")
        spec["score_diff"] = round(diff, 6)
        spec["reference_scores"] = [float(v) for v in reference]  # what int8 is checked against, without torch
        _write_json(tmp / "reranker.json", spec)
        if bundle.exists():
            shutil.rmtree(bundle)
        os.replace(tmp, bundle)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _quantize(bundle: Path) -> None:
    from agent_lightning.memory.onnx_export import ExportError, _quantize as quantize_nbits, _write_json

    target = bundle / "model_int8.onnx.tmp"
    try:
        quantize_nbits(bundle / "model.onnx", target)
        spec = json.loads((bundle / "reranker.json").read_text())
        os.replace(target, bundle / "model_int8.candidate.onnx")
        diff = _max_diff(np.asarray(spec["reference_scores"], dtype=np.float32), bundle, "model_int8.candidate.onnx")
        if diff > MAX_SCORE_DIFF_INT8:
            raise ExportError(f"int8 weights move scores too far ({diff:.3f} > {MAX_SCORE_DIFF_INT8})")
        spec["int8_score_diff"] = round(diff, 6)
        _write_json(bundle / "reranker.json", spec)
        os.replace(bundle / "model_int8.candidate.onnx", bundle / "model_int8.onnx")
    finally:
        for leftover in (target, bundle / "model_int8.candidate.onnx"):
            leftover.unlink(missing_ok=True)


def _reference_scores(folder: Path) -> np.ndarray:
    from sentence_transformers import CrossEncoder

    from agent_lightning.memory.onnx_export import _silenced

    with _silenced():
        model = CrossEncoder(str(folder), device="cpu", max_length=512, local_files_only=True)
    return np.asarray(model.predict(PROBE_PAIRS, batch_size=len(PROBE_PAIRS), show_progress_bar=False),
                      dtype=np.float32)


def _max_diff(reference: np.ndarray, bundle: Path, model_name: str) -> float:
    """Largest |score difference| to the CrossEncoder on PROBE_PAIRS, batched and one pair at a time."""
    engine = OnnxCrossEncoder(bundle, json.loads((bundle / "reranker.json").read_text())["max_length"], False)
    if model_name != "model.onnx":
        import onnxruntime as ort

        engine.session = ort.InferenceSession(str(bundle / model_name), providers=["CPUExecutionProvider"])
    batched = np.asarray(engine.predict(PROBE_PAIRS))
    single = np.asarray([engine.predict([p])[0] for p in PROBE_PAIRS])
    return float(max(np.abs(batched - reference).max(), np.abs(single - reference).max()))
