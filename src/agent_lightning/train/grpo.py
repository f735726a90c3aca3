"""GRPO stage: a thin wrapper that builds TRL's `GRPOTrainer` from our config (TRL owns the loss and loop).

    python main_agent_lightning.py --algo grpo [--config configs/tiny.yaml] [--max-steps 2]

What this module adds around TRL: the task dataset from the environment, the reward suite (argument filtering,
verified outcomes, isolation), a GRPOConfig mapped from `cfg.grpo`, and our callbacks (metrics.jsonl, progress).
Environments with tools are played by our cached multi-turn loop handed to TRL as its `rollout_func`
(rollout/trl_rollout.py, `grpo.rollouts: cached`) or by TRL's own `environment_factory` tool loop
(`grpo.rollouts: trl`, and always with `grpo.use_vllm`: vLLM generates there), with the tokenizer prepared for
the policy's tool-call format (chat/tool_format.py); `env.name=agent` runs your agent program through the gateway
(train/agent_rollout.py); single-turn ones are plain datasets. With `grpo.sft_replay` each micro-batch also
trains on a replayed SFT demonstration (train/sft_replay.py).

Not covered here: SFT (train/sft.py), evaluation, multi-process launch (accelerate does it).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

from agent_lightning import distributed
from agent_lightning.config import Config
from agent_lightning.environments.agent import is_agent_env
from agent_lightning.envs import environment_factory, prompt_prefix, tasks_in_tiers
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
    prefix = prompt_prefix(cfg, env_cls)
    records = []
    for row in rows:
        prompt = [*prefix, {"role": "user", "content": row["prompt"]}]
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


SAMPLER_STATE = "signal_first.json"  # beside TRL's files in each checkpoint-N/


def _sampler_state_callback(sampler: Any) -> Any:
    """A TrainerCallback that writes the signal-first sampler's state into each checkpoint the trainer saves."""
    from transformers import TrainerCallback

    class SaveSamplerState(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir():
                (folder / SAMPLER_STATE).write_text(json.dumps(sampler.state_dict()))

    return SaveSamplerState()


def build_grpo_trainer(cfg: Config, run_dir: Path, model: Any, tokenizer: Any, env_cls: type, suite: RewardSuite,
                       callbacks: list[Any], checkpoint: Path | None = None) -> Any:
    """GRPOTrainer wired to the environment class, the run's reward suite and our callbacks (`checkpoint`: the one
    the run resumes from, for state of our own saved beside TRL's)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from agent_lightning.memory.context import MemoryContext
    from agent_lightning.rollout.trl_rollout import CachedRollouts
    from agent_lightning.train import trl_compat

    args = grpo_args(cfg, run_dir)
    args.reward_weights = suite.weights
    memory = MemoryContext.for_run(cfg.memory)  # handed to every environment: retrieved context, search_code
    agent = is_agent_env(env_cls)  # an agent program through the gateway (train/agent_rollout.py)
    if agent and (cfg.grpo.use_vllm or cfg.grpo.rollouts != "cached"):
        raise UserError("env.name=agent: the agent's rollouts run through the gateway, which generates with the "
                        "trained model itself; set grpo.use_vllm=false and grpo.rollouts=cached.")
    has_tools = bool(env_cls.tool_names()) or agent  # the gateway renders and parses the policy's tool calls
    if has_tools:
        from agent_lightning.chat.tool_format import prepare_for_tools

        log.info("tool format: %s", prepare_for_tools(tokenizer, cfg.policy.tool_prompt))
        if cfg.grpo.max_completion_length < TOOL_COMPLETION_TOKENS:
            log.warning("grpo.max_completion_length=%d is short for a tool episode (it counts every turn, call and "
                        "tool result; TRL drops results that do not fit): try --set grpo.max_completion_length=%d",
                        cfg.grpo.max_completion_length, 4 * TOOL_COMPLETION_TOKENS)
    cached = has_tools and cfg.grpo.rollouts == "cached" and not cfg.grpo.use_vllm  # vLLM generates in TRL's loop
    train_tasks = task_dataset(env_cls, cfg, "train")
    if agent:
        from agent_lightning.train.agent_rollout import AgentRollouts

        if cfg.grpo.signal_first:
            log.info("grpo.signal_first does not apply to env.name=agent: rounds train on the groups TRL samples")
        loop = {"rollout_func": AgentRollouts(cfg, env_cls)}
    elif cached:
        signal_first = None
        if cfg.grpo.signal_first and distributed.launched():
            log.warning("grpo.signal_first is off under several processes (each would swap its own share of a "
                        "group); rounds train on the groups TRL samples")
        elif cfg.grpo.signal_first:
            from agent_lightning.rollout.signal_first import SignalFirst

            g = cfg.grpo
            for option, column in (("signal_family", g.signal_family), ("signal_spread", g.signal_spread)):
                if column and column not in train_tasks.column_names:
                    raise UserError(f"grpo.{option}={column}: env '{cfg.env.name}' tasks have no such column "
                                    f"(they have {', '.join(train_tasks.column_names)}); name one of them or ''.")
            signal_first = SignalFirst(pool=train_tasks.to_list(), group_size=g.num_generations,
                                       passes=g.signal_passes, history=g.signal_history, explore=g.signal_explore,
                                       seed=cfg.run.seed, family=g.signal_family or None,
                                       spread=g.signal_spread or None, pass_groups=g.signal_pass_groups)
            saved = checkpoint / SAMPLER_STATE if checkpoint is not None else None
            if saved is not None and saved.is_file():
                signal_first.load_state_dict(json.loads(saved.read_text()))
            callbacks = [*callbacks, _sampler_state_callback(signal_first)]
        loop = {"rollout_func": CachedRollouts(cfg, env_cls, prompt_prefix(cfg, env_cls), memory, signal_first,
                                               suite)}
    else:
        loop = {"environment_factory": environment_factory(env_cls, memory) if has_tools else None}
    replay = None
    if cfg.grpo.sft_replay > 0:
        from agent_lightning.train.sft_replay import SFTReplay

        replay = SFTReplay.from_config(cfg, env_cls, tokenizer)
    trainer_cls = trl_compat.grpo_trainer_class(rollout_inputs=cached, skip_zero_advantage=cfg.grpo.skip_zero_advantage,
                                                sft_replay=replay)
    trainer = trainer_cls(
        model=model,
        reward_funcs=suite.functions,
        args=args,
        train_dataset=train_tasks,
        processing_class=tokenizer,
        callbacks=callbacks,
        **loop,
    )
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    return trainer
