"""GRPO stage: a thin wrapper that builds TRL's `GRPOTrainer` from our config (TRL owns the loss and loop).

    python main_agent_lightning.py --algo grpo [--config configs/tiny.yaml] [--max-steps 2]

What this module adds around TRL: the task dataset from the environment, the reward suite (argument filtering,
verified outcomes, isolation), a GRPOConfig mapped from `cfg.grpo`, and our callbacks (metrics.jsonl, progress).
Environments with tools are played by our cached multi-turn loop handed to TRL as its `rollout_func`
(rollout/trl_rollout.py, `grpo.rollouts: cached`) or by TRL's own `environment_factory` tool loop
(`grpo.rollouts: trl`, and always with `grpo.use_vllm`: vLLM generates there), with the tokenizer prepared for
the policy's tool-call format (chat/tool_format.py); single-turn ones are plain datasets.

Not covered here: SFT (train/sft.py), evaluation, multi-process launch (accelerate does it).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from agent_lightning.config import Config
from agent_lightning.envs import environment_factory, system_prompt, tasks_in_tiers
from agent_lightning.errors import UserError
from agent_lightning.rewarding import RewardSuite
from agent_lightning.train.trainer_args import common_args

log = logging.getLogger(__name__)

TOOL_COMPLETION_TOKENS = 96  # below this a call plus its result rarely fits (see the warning below)


def task_dataset(env_cls: type, cfg: Config, split: str = "train") -> Any:
    """The environment's tasks as a conversational `datasets.Dataset` (prompt + verifier columns)."""
    from datasets import Dataset

    size = cfg.env.train_size if split == "train" else cfg.env.test_size
    rows = tasks_in_tiers(env_cls, split, size, cfg.env.seed, cfg.env.train_tiers if split == "train" else None)
    if not rows:
        raise UserError(f"env '{cfg.env.name}' produced no {split} tasks (size {size}, seed {cfg.env.seed}).")
    system = system_prompt(cfg, env_cls)
    records = []
    for row in rows:
        prompt = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": row["prompt"]}
        ]
        records.append({**{k: v for k, v in row.items() if k != "prompt"}, "prompt": prompt, "question": row["prompt"]})
    return Dataset.from_list(records)


def grpo_args(cfg: Config, run_dir: Path) -> Any:
    """Map `cfg.grpo` to TRL's GRPOConfig (checked: see `vllm_args` for generation settings)."""
    from trl import GRPOConfig

    g = cfg.grpo
    g.validate()  # already done when the config was loaded; again for a section changed in code since
    return GRPOConfig(
        **common_args(cfg, run_dir),
        max_steps=g.max_steps,
        learning_rate=g.learning_rate,
        per_device_train_batch_size=g.per_device_batch_size,
        gradient_accumulation_steps=g.gradient_accumulation_steps,
        num_generations=g.num_generations,
        steps_per_generation=g.steps_per_generation or g.gradient_accumulation_steps,
        num_iterations=g.num_iterations,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        beta=g.beta,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        warmup_steps=g.warmup_steps,
        lr_scheduler_type=g.lr_scheduler_type,
        gradient_checkpointing=g.gradient_checkpointing,
        **vllm_args(g),
        logging_steps=g.logging_steps,
        save_strategy="steps",
        save_steps=g.save_steps,
        save_total_limit=g.save_total_limit,
        max_tool_calling_iterations=cfg.env.max_turns,
    )


def vllm_args(g: Any) -> dict[str, Any]:
    """GRPOConfig's vLLM settings from `cfg.grpo` (their values are checked by GRPOSection.validate); when vLLM is
    on, what this machine must offer: vLLM installed and, colocated, a CUDA GPU."""
    if g.use_vllm and importlib.util.find_spec("vllm") is None:
        raise UserError("grpo.use_vllm=true needs vLLM on a GPU machine: `pip install vllm`, or set grpo.use_vllm=false.")
    if g.use_vllm and g.vllm_mode == "colocate":
        import torch

        if not torch.cuda.is_available():
            raise UserError("grpo.use_vllm=true with vllm_mode=colocate needs a CUDA GPU in this process; "
                            "set grpo.use_vllm=false on CPU.")
    out: dict[str, Any] = {"use_vllm": g.use_vllm, "vllm_mode": g.vllm_mode,
                           "vllm_gpu_memory_utilization": g.vllm_gpu_memory_utilization,
                           "vllm_tensor_parallel_size": g.vllm_tensor_parallel_size}
    if g.vllm_server_base_url is not None:
        out["vllm_server_base_url"] = g.vllm_server_base_url
    return out


def build_grpo_trainer(cfg: Config, run_dir: Path, model: Any, tokenizer: Any, env_cls: type, suite: RewardSuite,
                       callbacks: list[Any]) -> Any:
    """GRPOTrainer wired to the environment class, the run's reward suite and our callbacks."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from agent_lightning.memory.context import MemoryContext
    from agent_lightning.rollout.trl_rollout import CachedRollouts
    from agent_lightning.train import trl_compat

    args = grpo_args(cfg, run_dir)
    args.reward_weights = suite.weights
    memory = MemoryContext.for_run(cfg.memory)  # handed to every environment: retrieved context, search_code
    has_tools = bool(env_cls.tool_names())
    if has_tools:
        from agent_lightning.chat.tool_format import prepare_for_tools

        log.info("tool format: %s", prepare_for_tools(tokenizer, cfg.policy.tool_prompt))
        if cfg.grpo.max_completion_length < TOOL_COMPLETION_TOKENS:
            log.warning("grpo.max_completion_length=%d is short for a tool episode (it counts every turn, call and "
                        "tool result; TRL drops results that do not fit): try --set grpo.max_completion_length=%d",
                        cfg.grpo.max_completion_length, 4 * TOOL_COMPLETION_TOKENS)
    cached = has_tools and cfg.grpo.rollouts == "cached" and not cfg.grpo.use_vllm  # vLLM generates in TRL's loop
    if cached:
        loop = {"rollout_func": CachedRollouts(cfg, env_cls, system_prompt(cfg, env_cls), memory)}
    else:
        loop = {"environment_factory": environment_factory(env_cls, memory) if has_tools else None}
    trainer_cls = trl_compat.grpo_trainer_class(rollout_inputs=cached, skip_zero_advantage=cfg.grpo.skip_zero_advantage)
    trainer = trainer_cls(
        model=model,
        reward_funcs=suite.functions,
        args=args,
        train_dataset=task_dataset(env_cls, cfg, "train"),
        processing_class=tokenizer,
        callbacks=callbacks,
        **loop,
    )
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    return trainer
