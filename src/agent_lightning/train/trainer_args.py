"""Trainer arguments every stage shares (TRL's GRPOConfig and SFTConfig both take them): output, logging
backends, seeds, device and precision from the policy config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agent_lightning.config import Config


def common_args(cfg: Config, run_dir: Path) -> dict[str, Any]:
    report_to = [r for r in cfg.grpo.report_to if r != "none"]
    return {
        "output_dir": str(run_dir),
        "report_to": report_to or "none",
        "seed": cfg.run.seed,
        "data_seed": cfg.run.seed,
        "disable_tqdm": True,
        "use_cpu": not torch.cuda.is_available(),
        "bf16": cfg.policy.dtype == "bfloat16",
        "fp16": cfg.policy.dtype == "float16",
        "ddp_find_unused_parameters": False,  # every LoRA weight is used in each forward: skip DDP's extra graph walk
    }
