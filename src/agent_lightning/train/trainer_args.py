"""Trainer arguments every stage shares (TRL's GRPOConfig and SFTConfig both take them): output, logging
backends, seeds, device and precision from the policy config.

Precision: `policy.dtype` bfloat16/float16 keeps the weights in that dtype. With float32 weights, `policy.autocast`
bf16 runs the training forward and backward passes under torch autocast (the Trainer's `bf16` flag, which
accelerate turns into autocast on the CPU as on a GPU); `auto` does so only on a CPU that multiplies bf16 in
hardware (`cpu_has_native_bf16`), where SFT steps measured 1.29x faster (benchmarks/bf16_autocast.py); elsewhere
bf16 is emulated and slower. Accelerate wraps the model's forward, so GRPO's sampling (the same model) runs under
autocast too. Evaluation loads its own float32 model: autocast never reaches the decoding that success rates are
reported from.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from agent_lightning.config import Config
from agent_lightning.config.sections import PolicySection

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (AVX512-BF16 or AMX-BF16 among /proc/cpuinfo's flags).
    False where the file is missing or unreadable (macOS, Windows): autocast then needs `policy.autocast: bf16`."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def train_autocast_bf16(policy: PolicySection) -> bool:
    """Whether training runs under bf16 autocast over float32 weights (see the module docstring)."""
    if policy.autocast == "none" or policy.dtype != "float32":
        return False
    if policy.autocast == "bf16":
        return True
    return policy.quantization == "none" and not torch.cuda.is_available() and cpu_has_native_bf16()


def common_args(cfg: Config, run_dir: Path) -> dict[str, Any]:
    report_to = [r for r in cfg.grpo.report_to if r != "none"]
    return {
        "output_dir": str(run_dir),
        "report_to": report_to or "none",
        "seed": cfg.run.seed,
        "data_seed": cfg.run.seed,
        "disable_tqdm": True,
        "use_cpu": not torch.cuda.is_available(),
        "bf16": cfg.policy.dtype == "bfloat16" or train_autocast_bf16(cfg.policy),
        "fp16": cfg.policy.dtype == "float16",
        "ddp_find_unused_parameters": False,  # every LoRA weight is used in each forward: skip DDP's extra graph walk
    }
