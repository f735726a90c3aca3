"""GRPO stage: a thin wrapper that builds TRL's `GRPOTrainer` from our config (TRL owns the loss and loop).

    python main_agent_lightning.py --algo grpo [--config configs/tiny.yaml] [--max-steps 2]

What this module adds around TRL: the task dataset from the environment, the reward suite (argument filtering,
verified outcomes, isolation), a GRPOConfig mapped from `cfg.grpo`, and our callbacks (metrics.jsonl, progress).
Environments with tools are played by our cached multi-turn loop handed to TRL as its `rollout_func`
(train/cached_rollouts.py, `grpo.rollouts: cached`) or by TRL's own `environment_factory` tool loop
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
from agent_lightning.env import tasks_in_tiers
from agent_lightning.errors import UserError
from agent_lightning.registry import ENVIRONMENTS
from agent_lightning.rewarding import RewardSuite
from agent_lightning.train.trainer_args import common_args

log = logging.getLogger(__name__)

TOOL_COMPLETION_TOKENS = 96  # below this a call plus its result rarely fits (see the warning below)


def environment_class(cfg: Config) -> type:
    return ENVIRONMENTS.get(cfg.env.name).obj


def system_prompt(cfg: Config, env_cls: type) -> str | None:
    """The run's system prompt: `env.system_prompt` when set, else the environment's own."""
    return cfg.env.system_prompt if cfg.env.system_prompt is not None else env_cls.system_prompt


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


def rollouts_per_round(g: Any) -> int:
    """Rollouts one sampling round plays on each device: `grpo.steps_per_generation` micro-batches (default: one
    optimizer step's, `grpo.gradient_accumulation_steps`)."""
    return g.per_device_batch_size * (g.steps_per_generation or g.gradient_accumulation_steps)


def grpo_args(cfg: Config, run_dir: Path) -> Any:
    """Map `cfg.grpo` to TRL's GRPOConfig (checked: see `vllm_args` for generation settings)."""
    from trl import GRPOConfig

    g = cfg.grpo
    if g.signal_window < 1:
        raise UserError(f"grpo.signal_window: expected a number of steps >= 1, got {g.signal_window}.")
    rounds_of = "grpo.steps_per_generation" if g.steps_per_generation else "grpo.gradient_accumulation_steps"
    if (g.steps_per_generation is not None and g.steps_per_generation < 1) or g.num_iterations < 1:
        raise UserError(f"grpo.steps_per_generation ({g.steps_per_generation}) and grpo.num_iterations "
                        f"({g.num_iterations}) must be >= 1.")
    generation_batch = rollouts_per_round(g)
    if generation_batch % g.num_generations:
        raise UserError(
            f"grpo.per_device_batch_size x {rounds_of} ({generation_batch}) must be a multiple "
            f"of grpo.num_generations ({g.num_generations}): each sampling round samples whole groups."
        )
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
    """GRPOConfig's vLLM settings from `cfg.grpo`, checked: a mode TRL knows, sane sizes, and, when vLLM is on,
    vLLM installed and a CUDA GPU to run it (and `grpo.rollouts` one we know)."""
    if g.vllm_mode not in ("colocate", "server"):
        raise UserError(f"grpo.vllm_mode: '{g.vllm_mode}' is not 'colocate' or 'server'.")
    if not 0 < g.vllm_gpu_memory_utilization < 1:
        raise UserError(f"grpo.vllm_gpu_memory_utilization: expected a share between 0 and 1, got "
                        f"{g.vllm_gpu_memory_utilization}.")
    if g.vllm_tensor_parallel_size < 1:
        raise UserError(f"grpo.vllm_tensor_parallel_size: expected >= 1, got {g.vllm_tensor_parallel_size}.")
    if g.vllm_server_base_url is not None and g.vllm_mode != "server":
        raise UserError("grpo.vllm_server_base_url is only used with grpo.vllm_mode=server; set that, or drop the URL.")
    if g.vllm_server_base_url is not None and not g.vllm_server_base_url.startswith(("http://", "https://")):
        raise UserError(f"grpo.vllm_server_base_url: '{g.vllm_server_base_url}' is not an http(s):// URL.")
    if g.use_vllm and importlib.util.find_spec("vllm") is None:
        raise UserError("grpo.use_vllm=true needs vLLM on a GPU machine: `pip install vllm`, or set grpo.use_vllm=false.")
    if g.use_vllm and g.vllm_mode == "colocate":
        import torch

        if not torch.cuda.is_available():
            raise UserError("grpo.use_vllm=true with vllm_mode=colocate needs a CUDA GPU in this process; "
                            "set grpo.use_vllm=false on CPU.")
    if g.rollouts not in ("cached", "trl"):
        raise UserError(f"grpo.rollouts: '{g.rollouts}' is not 'cached' or 'trl'.")
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
    from trl import GRPOTrainer

    from agent_lightning.memory.context import configure
    from agent_lightning.train.cached_rollouts import CachedRollouts, rollout_trainer_class
    from agent_lightning.train.zero_advantage import skipping_zero_advantage

    args = grpo_args(cfg, run_dir)
    args.reward_weights = suite.weights
    configure(cfg.memory)  # environments built by TRL read retrieved context and search_code from here
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
        loop = {"rollout_func": CachedRollouts(cfg, env_cls, system_prompt(cfg, env_cls))}
    else:
        loop = {"environment_factory": env_cls if has_tools else None}
    trainer_cls = rollout_trainer_class() if cached else GRPOTrainer
    if cfg.grpo.skip_zero_advantage:
        trainer_cls = skipping_zero_advantage(trainer_cls)
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
