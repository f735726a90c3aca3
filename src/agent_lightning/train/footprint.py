"""GPU memory of QLoRA GRPO on a Mistral-architecture model: an estimate by component, and the exact counts of a
loaded model to check it against.

    python -m agent_lightning.train.footprint [--config configs/mistral_qlora.yaml] [--prompt-tokens 120]

Components (bytes per device): 4-bit NF4 weights of every linear layer with their double-quantized block
constants; the layers left unquantized (embeddings, lm_head, norms), which PEFT's `prepare_model_for_kbit_training`
upcasts to fp32; LoRA weights, gradients and AdamW moments (fp32); training activations with gradient
checkpointing (fp32 residual stream saved at each layer's input, plus one layer recomputed during backward);
TRL's tiled log-prob buffer; the KV cache of one generation batch (fp32: see `kv_cache`). `measure(model)` counts the same components
exactly on a loaded model (tests/test_footprint.py compares the two on a scaled-down Mistral on CPU).

Not covered: CUDA context and allocator fragmentation (a margin is added, see `MARGIN`), vLLM (its own memory
pool, `grpo.vllm_gpu_memory_utilization`), DeepSpeed sharding (divide the trainable state by the process count
under ZeRO-2; weights stay whole), the exact size of activations (an estimate: kernels and attention
implementations differ).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

NF4_BLOCK = 64  # bitsandbytes 4-bit block size: one absmax per 64 weights
NESTED_BLOCK = 256  # double quantization: the absmax values are 8-bit, with one fp32 constant per 256 of them
CUDA_CONTEXT = 0.6e9  # CUDA context + cuBLAS workspaces, typical for PyTorch 2.x on one GPU
MARGIN = 0.10  # allocator fragmentation and transient buffers, as a share of the rest


@dataclass(frozen=True)
class Arch:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def linears(self) -> list[tuple[str, int, int]]:
        """(name, in, out) of every linear layer in one decoder layer."""
        h, kv, i = self.hidden, self.kv_heads * self.head_dim, self.intermediate
        return [("q_proj", h, h), ("k_proj", h, kv), ("v_proj", h, kv), ("o_proj", h, h),
                ("gate_proj", h, i), ("up_proj", h, i), ("down_proj", i, h)]

    @classmethod
    def from_config(cls, config: Any) -> "Arch":
        return cls(config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
                   config.num_key_value_heads, config.intermediate_size, config.vocab_size,
                   bool(getattr(config, "tie_word_embeddings", False)))


MISTRAL_7B_V03 = Arch(layers=32, hidden=4096, heads=32, kv_heads=8, intermediate=14336, vocab=32768)


def weights(arch: Arch) -> dict[str, int]:
    """Exact bytes of the NF4-quantized model after prepare_model_for_kbit_training."""
    quantized = arch.layers * sum(i * o for _, i, o in arch.linears())
    blocks = sum(math.ceil(i * o / NF4_BLOCK) for _, i, o in arch.linears()) * arch.layers
    nested = sum(math.ceil(math.ceil(i * o / NF4_BLOCK) / NESTED_BLOCK) for _, i, o in arch.linears()) * arch.layers
    embeddings = arch.vocab * arch.hidden * (1 if arch.tied else 2)
    norms = (2 * arch.layers + 1) * arch.hidden
    return {
        "nf4_weights": quantized // 2,
        "nf4_constants": blocks + 4 * nested,  # 8-bit absmax per block, fp32 per 256 blocks
        "unquantized_fp32": 4 * (embeddings + norms),
        "params_quantized": quantized,
        "params_total": quantized + embeddings + norms,
    }


def lora(arch: Arch, r: int, targets: list[str] | None = None) -> dict[str, int]:
    """Exact LoRA parameters and their fp32 training state (weights, gradients, AdamW exp_avg + exp_avg_sq)."""
    params = arch.layers * sum(r * (i + o) for name, i, o in arch.linears() if targets is None or name in targets)
    return {"lora_params": params, "lora_weights": 4 * params, "lora_grads": 4 * params, "adamw_states": 8 * params}


def kv_cache(arch: Arch, sequences: int, tokens: int, dtype_bytes: int = 4) -> int:
    """Bytes of the KV cache for `sequences` x `tokens` (keys and values of every layer). fp32 by default: with the
    embeddings upcast by prepare_model_for_kbit_training the residual stream is fp32 and bitsandbytes returns
    each 4-bit matmul in its input's dtype, so keys and values are fp32 even under bf16 autocast (measured)."""
    return 2 * arch.layers * arch.kv_heads * arch.head_dim * sequences * tokens * dtype_bytes


def activations(arch: Arch, batch: int, tokens: int) -> dict[str, int]:
    """Estimated training activations of one micro-batch with gradient checkpointing."""
    bt = batch * tokens
    kv = arch.kv_heads * arch.head_dim
    checkpoints = arch.layers * bt * arch.hidden * 4  # fp32 residual stream at each layer input
    # one layer recomputed in backward: bf16 matmul outputs (q, k, v, attention, o, gate, up, act, product, down),
    # fp32 norms and residuals, and their gradients of the same size
    layer = bt * (2 * (3 * arch.hidden + 2 * kv + 4 * arch.intermediate) + 4 * 4 * arch.hidden)
    logprob_tile = min(bt, 4096) * arch.vocab * 4  # TRL's tiled log-probs: at most 4096 tokens x vocab in fp32
    return {"checkpoints": checkpoints, "layer_recompute": 2 * layer, "logprob_tile": logprob_tile}


def estimate(arch: Arch, r: int, batch: int, accumulation: int, prompt_tokens: int, completion_tokens: int) -> dict:
    """Per-GPU peak for QLoRA GRPO: persistent state + max(generation, training) + context, plus a margin."""
    tokens = prompt_tokens + completion_tokens
    w, lo, act = weights(arch), lora(arch, r), activations(arch, batch, tokens)
    persistent = w["nf4_weights"] + w["nf4_constants"] + w["unquantized_fp32"] + sum(
        v for k, v in lo.items() if k != "lora_params")
    generation = kv_cache(arch, batch * accumulation, tokens)  # TRL generates a whole step's completions at once
    training = sum(act.values())
    peak = (persistent + max(generation, training) + CUDA_CONTEXT) * (1 + MARGIN)
    return {**w, **lo, **act, "kv_cache": generation, "persistent": persistent, "training_transient": training,
            "peak": int(peak)}


def measure(model: Any) -> dict[str, int]:
    """Exact bytes of a loaded (PEFT, maybe 4-bit) model, by the same components as `weights` and `lora`."""
    out = {"nf4_weights": 0, "nf4_constants": 0, "unquantized_fp32": 0, "other": 0, "lora_params": 0,
           "lora_weights": 0}
    for name, param in model.named_parameters():
        size = param.numel() * param.element_size()
        if "lora_" in name:
            out["lora_params"] += param.numel()
            out["lora_weights"] += size
        elif type(param).__name__ == "Params4bit":
            out["nf4_weights"] += size
            state = param.quant_state
            out["nf4_constants"] += state.absmax.numel() * state.absmax.element_size()
            if state.nested:
                out["nf4_constants"] += state.state2.absmax.numel() * state.state2.absmax.element_size()
        elif param.dtype.is_floating_point and param.element_size() == 4:
            out["unquantized_fp32"] += size
        else:
            out["other"] += size
    return out


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> None:
    from agent_lightning.config import load_config

    parser = argparse.ArgumentParser(description="Per-GPU memory estimate of QLoRA GRPO on Mistral-7B-v0.3.")
    parser.add_argument("--config", default="configs/mistral_qlora.yaml")
    parser.add_argument("--prompt-tokens", type=int, default=120, help="Longest prompt (chat template included).")
    args = parser.parse_args()
    cfg = load_config(args.config)
    g = cfg.grpo
    est = estimate(MISTRAL_7B_V03, cfg.policy.lora.r, g.per_device_batch_size, g.gradient_accumulation_steps,
                   args.prompt_tokens, g.max_completion_length)
    for key, value in est.items():
        print(f"{key:20s} {value:>16,d}" + ("" if key.startswith(("params", "lora_params")) else f"  {gib(value)}"))


if __name__ == "__main__":
    main()
