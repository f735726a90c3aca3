"""Export a sentence-transformers model folder to an ONNX bundle (once), and check it reproduces the model.

    from agent_lightning.memory.onnx_export import export_bundle, quantize_bundle
    bundle = export_bundle(model_folder)     # cached: the second call returns at once
    quantize_bundle(bundle)                  # adds model_int8.onnx (int8 weights), checked against model.onnx

Export loads the folder with sentence-transformers on the CPU (eager attention), traces its transformer with
`torch.onnx.export` (the TorchScript exporter; batch and length are dynamic), fuses attention, layer norms and
GELU with onnxruntime's transformer optimizer (kept only when it still matches), and saves the fast tokenizer
and the pooling configuration beside it (the bundle layout is in onnx_embedder.py). It then embeds PROBE_TEXTS
(code and prose, one of them longer than the model reads, batched with padding and one by one) both ways and
keeps the bundle only when every cosine similarity is >= MIN_COSINE. The bundle is written to a temporary folder
and renamed into place under a file lock, so concurrent processes export once and never see half a bundle.

Only a Transformer module followed by Pooling (and optionally Normalize) can be exported: folders with Dense
layers, prompts, or a slow-only tokenizer raise `ExportError`, and so does a failed check; the caller then
embeds with torch (embedder.py). Exporting needs torch, sentence-transformers and the `onnx` package; running a
bundle does not.

int8: the transformer's matrix products outside the fused attention get 8-bit weights, quantized in blocks of
128 along the inner dimension (onnxruntime's MatMulNBits, which also quantizes each block of activations at run
time and multiplies in int8), checked against the fp32 bundle on PROBE_TEXTS (>= MIN_COSINE_INT8). Measured on
all-MiniLM-L6-v2: cosine >= 0.998 to the fp32 model on code chunks, where per-tensor dynamic quantization
(quantize_dynamic) reached only 0.988 at the same speed. Quantizing needs the `onnx-ir` package too.

Not covered here: running a bundle (onnx_embedder.py); cross-encoders (onnx_reranker.py reuses these steps).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from agent_lightning.memory.onnx_embedder import FORMAT, POOLING_MODES, OnnxEmbedder, bundle_dir

log = logging.getLogger(__name__)

MIN_COSINE = 0.9999
MIN_COSINE_INT8 = 0.995
INT8_BLOCK = 128
OPSET = 17
PROBE_TEXTS = [
    "def add(a, b):\n    return a + b",
    "where are tool calls parsed?",
    "Sum the numbers of a file into another file.",
    'class Inventory:\n    """Items in a warehouse with their counts."""\n    def __init__(self):\n        self.items = {}',
    "export function formatPrice(cents) { return (cents / 100).toFixed(2) + ' EUR'; }",
    "  Leading and trailing white space, UPPER case and ünïcödé \n",
    "x",
    " ".join(f"token_{i} = compute(value_{i}, factor={i})" for i in range(120)),   # longer than 512 pieces
]


class ExportError(Exception):
    """The model cannot be exported faithfully; the message says why, in one line."""


def export_bundle(model_dir: str | Path) -> Path:
    """The bundle of the model in `model_dir`: exported and checked now unless it already exists."""
    from filelock import FileLock

    out = bundle_dir(Path(model_dir))
    if (out / "embedder.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / "embedder.json").is_file():
            return out
        tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
        tmp.chmod(0o755)
        try:
            _export(Path(model_dir), tmp)
            if out.exists():  # an incomplete bundle (its embedder.json gone): replaced whole
                shutil.rmtree(out)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def quantize_bundle(bundle: str | Path) -> Path:
    """Add model_int8.onnx to `bundle` (unless there) and return its path; ExportError when it drifts too far."""
    bundle = Path(bundle)
    target = bundle / "model_int8.onnx"
    if target.is_file():
        return target
    from filelock import FileLock

    with FileLock(str(bundle) + ".lock"):
        if target.is_file():
            return target
        tmp = bundle / "model_int8.onnx.tmp"
        try:
            _quantize(bundle / "model.onnx", tmp)
            spec = json.loads((bundle / "embedder.json").read_text())
            reference = OnnxEmbedder(bundle, spec.get("max_seq_length") or 512, bulk="onnxruntime")
            quantized = OnnxEmbedder(bundle, spec.get("max_seq_length") or 512, bulk="onnxruntime")
            quantized.model_file = tmp
            cosine = _min_cosine(reference.embed, quantized.embed)
            if cosine < MIN_COSINE_INT8:
                raise ExportError(f"int8 quantization moves embeddings too far (cosine {cosine:.4f} < "
                                  f"{MIN_COSINE_INT8}); use the fp32 model")
            spec["int8_cosine"] = round(cosine, 6)
            _write_json(bundle / "embedder.json", spec)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return target


# ------------------------------------------------------------------------------------------ export steps
def _export(model_dir: Path, out: Path) -> None:
    st = _load(model_dir)
    transformer, pooling = _check_modules(st)
    tokenizer = transformer.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ExportError("its tokenizer has no fast (tokenizers) version")
    auto_model = transformer.auto_model
    import inspect

    accepted = set(inspect.signature(auto_model.forward).parameters)
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids")
              if n in tokenizer.model_input_names and n in accepted]
    if "input_ids" not in inputs or "attention_mask" not in inputs:
        raise ExportError(f"the model takes {sorted(accepted)[:6]}, not input_ids and attention_mask")
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())   # a copy: the model's own stays as it is
    backend.no_truncation()
    backend.no_padding()
    backend.save(str(out / "tokenizer.json"))
    modes = pooling.pooling_mode
    modes = [modes] if isinstance(modes, str) else list(modes)
    dimension = int(st.get_embedding_dimension() if hasattr(st, "get_embedding_dimension")
                    else st.get_sentence_embedding_dimension())
    spec = {"format": FORMAT, "source": str(model_dir.resolve()), "inputs": inputs, "pooling": modes,
            "max_seq_length": int(transformer.max_seq_length or 512), "dimension": dimension,
            "do_lower_case": bool(getattr(transformer, "do_lower_case", False)),
            "pad_id": int(tokenizer.pad_token_id or 0), "pad_type_id": int(getattr(tokenizer, "pad_token_type_id", 0)),
            "padding_side": getattr(tokenizer, "padding_side", "right")}
    _write_json(out / "embedder.json", spec)
    _trace(auto_model, inputs, out / "model.onnx")

    def reference(texts: list[str]) -> Any:
        return st.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                         show_progress_bar=False)

    plain = out / "model.onnx"
    fused = out / "model.fused.onnx"
    if _fuse(plain, fused, auto_model.config):
        os.replace(plain, out / "model.unfused.onnx")
        os.replace(fused, plain)
        cosine = _min_cosine(reference, OnnxEmbedder(out, spec["max_seq_length"], bulk="onnxruntime").embed)
        if cosine >= MIN_COSINE:
            (out / "model.unfused.onnx").unlink()
            spec.update(fused=True, cosine=round(cosine, 6))
            _write_json(out / "embedder.json", spec)
            return
        log.info("fused ONNX graph differs (cosine %.5f); keeping the unfused one", cosine)
        os.replace(out / "model.unfused.onnx", plain)
    cosine = _min_cosine(reference, OnnxEmbedder(out, spec["max_seq_length"], bulk="onnxruntime").embed)
    if cosine < MIN_COSINE:
        raise ExportError(f"the ONNX export differs from sentence-transformers (cosine {cosine:.4f} < {MIN_COSINE})")
    spec.update(fused=False, cosine=round(cosine, 6))
    _write_json(out / "embedder.json", spec)


def _load(model_dir: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import onnx  # noqa: F401 - torch.onnx.export needs it
    except ImportError:
        raise ExportError("exporting needs the `onnx` package (pip install onnx)") from None
    with _silenced():
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ExportError(f"exporting needs sentence-transformers and torch ({exc})") from None
        try:
            return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True,
                                       model_kwargs={"attn_implementation": "eager"})
        except Exception:  # noqa: BLE001 - not every architecture names its attention; the default will do
            try:
                return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
            except Exception as exc:  # noqa: BLE001
                raise ExportError(f"sentence-transformers cannot load it ({type(exc).__name__})") from None


def _check_modules(st: Any) -> tuple[Any, Any]:
    names = [type(m).__name__ for m in st]
    if len(names) < 2 or names[0] != "Transformer" or names[1] != "Pooling" or any(n != "Normalize"
                                                                                for n in names[2:]):
        raise ExportError(f"only Transformer + Pooling (+ Normalize) models are exported, not {' + '.join(names)}")
    if not hasattr(st[0], "auto_model"):
        raise ExportError("its Transformer module has no auto_model")
    modes = st[1].pooling_mode
    unknown = [m for m in ([modes] if isinstance(modes, str) else modes) if m not in POOLING_MODES]
    if unknown:
        raise ExportError(f"pooling mode {unknown[0]!r} is not supported")
    if getattr(st, "prompts", None) and any(st.prompts.values()):
        raise ExportError("models with prompts are not exported")
    return st[0], st[1]


def _trace(auto_model: Any, inputs: list[str], path: Path, output: str = "last_hidden_state",
           output_name: str = "token_embeddings") -> None:
    """torch.onnx.export of `auto_model`'s `output` (token embeddings, or a classifier's logits), batch and length
    dynamic; ExportError when the exporter cannot trace it."""
    import torch

    class Output(torch.nn.Module):
        def __init__(self, model: Any):
            super().__init__()
            self.model = model

        def forward(self, *args: Any) -> Any:
            return getattr(self.model(**dict(zip(inputs, args)), return_dict=True), output)

    example = tuple(torch.ones(2, 16, dtype=torch.long) if n != "token_type_ids" else
                    torch.zeros(2, 16, dtype=torch.long) for n in inputs)
    axes = {n: {0: "batch", 1: "tokens"} for n in inputs}
    axes[output_name] = {0: "batch", 1: "tokens"} if output == "last_hidden_state" else {0: "batch"}
    with _silenced(), torch.no_grad():
        try:
            torch.onnx.export(Output(auto_model.eval()), example, str(path), dynamo=False,
                              input_names=inputs, output_names=[output_name], dynamic_axes=axes,
                              opset_version=OPSET, do_constant_folding=True)
        except Exception as exc:  # noqa: BLE001 - an architecture the exporter cannot trace
            raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})"
                              ) from None


def _fuse(plain: Path, fused: Path, config: Any) -> bool:
    """Fuse attention, layer norm and GELU subgraphs into onnxruntime's kernels; False when it cannot."""
    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    if not heads or not hidden:
        return False
    try:
        with _silenced():
            from onnxruntime.transformers import optimizer

            model = optimizer.optimize_model(str(plain), model_type="bert", num_heads=heads, hidden_size=hidden)
            model.save_model_to_file(str(fused))
        return True
    except Exception as exc:  # noqa: BLE001 - fusion is an optimization; the plain graph is correct
        log.info("onnxruntime could not fuse the graph (%s); keeping it unfused", type(exc).__name__)
        return False


def _quantize(source: Path, target: Path) -> None:
    """int8 weights in blocks of INT8_BLOCK along the inner dimension (MatMulNBits), multiplied in int8 with the
    activations quantized per block at run time (accuracy level 4)."""
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError as exc:
        raise ExportError(f"int8 quantization needs the onnx and onnx-ir packages ({exc})") from None
    with _silenced():
        quantizer = MatMulNBitsQuantizer(str(source), bits=8, block_size=INT8_BLOCK, is_symmetric=True,
                                         accuracy_level=4)
        quantizer.process()
        quantizer.model.save_model_to_file(str(target))


def _min_cosine(reference: Any, candidate: Any) -> float:
    """Smallest cosine similarity between two embedders on PROBE_TEXTS, batched and one by one."""
    import numpy as np

    a = np.asarray(reference(PROBE_TEXTS), dtype=np.float32)
    b = np.concatenate([np.asarray(candidate(PROBE_TEXTS), dtype=np.float32)] +
                       [np.asarray(candidate([t]), dtype=np.float32) for t in PROBE_TEXTS])
    a = np.concatenate([a, a])
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


@contextlib.contextmanager
def _silenced() -> Any:
    """Exporters and optimizers print warnings and progress on stdout and stderr; a command's output stays ours."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)
