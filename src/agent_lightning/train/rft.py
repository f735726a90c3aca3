"""Rejection-sampling fine-tuning (`--algo rft`): the policy's own verified successes become SFT data.

    python main_agent_lightning.py --algo rft --set policy.init_adapter=runs/<run>/sft/adapter
    python main_agent_lightning.py --algo sft+rft          # SFT on the reference demonstrations first

One round of expert iteration: each of `rft.tasks` training tasks (a seeded sample of the train split, from
`env.train_tiers`) is played `rft.samples_per_task` times by the current policy with the rollout loop GRPO uses
(rollouts.play_episodes: the batch decoded together, the adapter merged, `rft.temperature`), every episode is
verified by the environment's outcome, and the successes (each distinct trajectory once) are written to
RUN_DIR/samples.jsonl in the trajectory format SFT reads: `{"messages", "tools", "source": "rft", "task_id"}`,
the format of the reference demonstrations and of `sft.sources` files. Then the SFT stage trains the same
adapter on them (the `sft` settings; `rft.max_steps` steps, default one pass). GRPO trains on the same episodes
with their rewards instead, so one trajectory format serves SFT, RFT and GRPO.

A rerun with --resume reuses RUN_DIR/samples.jsonl instead of sampling again. `rft.demonstrations` mixes that
many reference demonstrations back in: fine-tuning on the successes alone narrows the policy to what it already
solves (README, "Rejection-sampling fine-tuning"). Not covered: several rounds (run `--algo rft` again from the
new adapter) and sampling from GRPO traces.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

from agent_lightning.config import Config, SFTSource
from agent_lightning.envs import tasks_in_tiers
from agent_lightning.errors import UserError

log = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"


def sample_tasks(cfg: Config, env_cls: type) -> list[dict[str, Any]]:
    """`rft.tasks` training tasks, a sample of the train split seeded by `run.seed`."""
    pool = tasks_in_tiers(env_cls, "train", cfg.env.train_size, cfg.env.seed, cfg.env.train_tiers)
    if cfg.rft.tasks > len(pool):
        raise UserError(f"rft.tasks={cfg.rft.tasks}: the train split has {len(pool)} tasks (env.train_size); "
                        "ask for fewer or raise env.train_size.")
    return random.Random(cfg.run.seed).sample(pool, cfg.rft.tasks)


def sample_successes(cfg: Config, model: Any, tokenizer: Any, env_cls: type,
                     tasks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Play every task `rft.samples_per_task` times and keep the verified successes: (examples, stats)."""
    import torch

    from agent_lightning.rollout.generation import Sampling
    from agent_lightning.evaluate import BatchProgress
    from agent_lightning.rollout.episodes import generation_weights, play_episodes
    from agent_lightning.envs import prompt_prefix
    from agent_lightning.memory.context import MemoryContext
    from agent_lightning.train.sft_data import tool_schemas

    r = cfg.rft
    if env_cls.tool_names():  # replies are parsed into tool calls in the policy's format, as in training
        from agent_lightning.chat.tool_format import prepare_for_tools

        prepare_for_tools(tokenizer, cfg.policy.tool_prompt)
    system = prompt_prefix(cfg, env_cls)
    memory = MemoryContext.for_run(cfg.memory)
    sampling = Sampling(r.temperature, r.top_p, torch.Generator().manual_seed(cfg.run.seed))
    rows = [task for task in tasks for _ in range(r.samples_per_task)]
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    stats = {"episodes": 0, "successes": 0, "duplicates": 0}
    progress = BatchProgress("RFT SAMPLING", len(rows), "episodes")
    with generation_weights(model):
        for start in range(0, len(rows), r.batch_size):
            batch = rows[start:start + r.batch_size]
            episodes = play_episodes(model, tokenizer, env_cls, batch, system, max_new_tokens=r.max_turn_tokens,
                                     max_turns=cfg.env.max_turns, completion_budget=r.max_completion_length,
                                     sampling=sampling, memory=memory)
            for task, episode in zip(batch, episodes):
                stats["episodes"] += 1
                ends_with_reply = bool(episode.messages) and episode.messages[-1].get("role") == "assistant"
                if not (episode.env._finish_episode(episode.messages).success and ends_with_reply):
                    continue
                stats["successes"] += 1
                key = json.dumps([task["task_id"], episode.messages], sort_keys=True, default=str)
                if key in seen:
                    stats["duplicates"] += 1
                    continue
                seen.add(key)
                kept.append({"messages": episode.prompt + episode.messages, "tools": tool_schemas(episode.env),
                             "source": "rft", "task_id": task["task_id"]})
            progress.update(stats["episodes"], f"successes {stats['successes']}/{stats['episodes']}")
    progress.stop()
    stats["tasks_solved"] = len({example["task_id"] for example in kept})
    stats["success_rate"] = stats["successes"] / max(stats["episodes"], 1)
    return kept, stats


def prepare_samples(cfg: Config, run_dir: Path, model: Any, tokenizer: Any, env_cls: type,
                    reuse: bool) -> tuple[Config, dict[str, Any]]:
    """Sample and write RUN_DIR/samples.jsonl (or reuse it when resuming) and return (the config of the SFT pass
    over it, sampling stats). Only the main process samples; the others read its file."""
    from agent_lightning import distributed

    path = run_dir / SAMPLES_FILE
    stats: dict[str, Any] = {}
    if distributed.is_main() and not (reuse and path.is_file()):
        examples, stats = sample_successes(cfg, model, tokenizer, env_cls, sample_tasks(cfg, env_cls))
        write_samples(path, examples)
        log.info("rft: %d of %d sampled episodes succeeded (%d tasks of %d); %d distinct trajectories in %s",
                 stats["successes"], stats["episodes"], stats["tasks_solved"], cfg.rft.tasks, len(examples), path)
    distributed.barrier()
    count = sum(1 for line in path.read_text().splitlines() if line.strip())
    if not count:
        raise UserError(f"rft: none of the {cfg.rft.tasks * cfg.rft.samples_per_task} sampled episodes succeeded, so "
                        "there is nothing to fine-tune on; start from a policy that sometimes succeeds "
                        "(policy.init_adapter, or --algo sft+rft) or sample more (rft.tasks, rft.samples_per_task).")
    return sft_on_samples(cfg, path, count), {**stats, "examples": count, "samples": str(path)}


def write_samples(path: Path, examples: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))


def sft_on_samples(cfg: Config, path: Path, count: int) -> Config:
    """The config of the SFT pass: the samples and `rft.demonstrations` reference demonstrations, drawn in
    proportion to the two counts (`sft.sources` are not used), `rft.max_steps` steps (default: one pass)."""
    import dataclasses

    r, s = cfg.rft, cfg.sft
    size = count + r.demonstrations
    sources = [SFTSource(path=str(path), weight=float(count))]
    steps = r.max_steps or max(1, -(-size // (s.per_device_batch_size * s.gradient_accumulation_steps)))
    sft = dataclasses.replace(s, demonstrations=r.demonstrations, env_weight=float(r.demonstrations), sources=sources,
                              examples=0, max_steps=steps, learning_rate=r.learning_rate or s.learning_rate,
                              held_out_fraction=0.0)
    return dataclasses.replace(cfg, sft=sft)
