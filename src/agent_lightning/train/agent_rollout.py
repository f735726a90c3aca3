"""GRPO rollouts played by your agent program through the gateway, as TRL's `rollout_func` (env.name=agent).

    trainer = build_grpo_trainer(...)   # env.name=agent wires this in (train/grpo.py)

Each sampling round, the step's dataset rows (each repeated `grpo.num_generations` times by TRL's sampler, so a
group's rollouts run side by side) are played by serve.agents.play_agents on the model being trained, its LoRA
adapter merged for the round (rollout.episodes.generation_weights, as CachedRollouts does): the gateway starts on
the loopback, the agent command runs once per row with OPENAI_BASE_URL pointing at its rollout, every call is
sampled at `grpo.temperature` / `grpo.top_p` whatever the agent asks (its `max_tokens` capped at
`grpo.max_turn_tokens`, else `grpo.max_completion_length`), and each rollout's recorded trajectory is cut at
`grpo.max_completion_length` tokens after its prompt. It hands TRL what CachedRollouts hands it:
  - `prompt_ids`, `completion_ids`: the exact tokens the policy read and wrote, as the gateway recorded them;
  - `env_mask`: the recording's `generated_mask` (1 on tokens the policy generated, 0 on tool results and template
    text the agent sent back); `logprobs`: the sampling logprobs the gateway recorded (0.0 on masked tokens);
  - `environments`, `rollout_messages`, `rollout_prompts`: each rollout's agent environment (the run recorded in
    it: the reported reward or why it failed) and its conversation, which the reward suite verifies and traces.
Per round it logs `agent/rollouts`, `agent/failed`, `agent/crashed`, `agent/timed_out`, `agent/no_calls`,
`agent/no_reward`, `agent/truncated`, `agent/model_calls` (counts), `agent/seconds`, and `tools/call_frequency`.

Not covered: signal-first sampling (grpo.signal_first is not applied: the agent's rounds are played as TRL samples
them), vLLM (the gateway generates), several processes (each would start its own gateway and agents on its share).
"""

from __future__ import annotations

import time
from typing import Any

from agent_lightning.config import Config
from agent_lightning.rewarding import ROLLOUT_MESSAGES, ROLLOUT_PROMPTS


class AgentRollouts:
    """TRL `rollout_func(prompts, trainer)`; see the module docstring. `last` holds the last round's episodes (their
    runs and recordings), for inspection."""

    def __init__(self, cfg: Config, env_cls: type):
        import torch

        self.cfg, self.env_cls = cfg, env_cls
        self.generator = torch.Generator().manual_seed(cfg.run.seed)
        self.rounds = 0
        self.last: list[Any] = []

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from agent_lightning.rollout.episodes import generation_weights
        from agent_lightning.rollout.generation import Sampling
        from agent_lightning.serve.agents import play_agents, round_counts

        rows = trainer.rollout_inputs
        if len(rows) != len(prompts):
            raise RuntimeError(f"rollout function: {len(prompts)} prompts but {len(rows)} dataset rows this step")
        tasks = [{**{k: v for k, v in row.items() if k not in ("prompt", "question")}, "prompt": row["question"]}
                 for row in rows]
        g = self.cfg.grpo
        model = trainer.accelerator.unwrap_model(trainer.model)
        started = time.perf_counter()
        self.rounds += 1
        with generation_weights(model):
            episodes = play_agents(model, trainer.processing_class, self.env_cls, tasks,
                                   max_new_tokens=g.max_turn_tokens or g.max_completion_length,
                                   completion_budget=g.max_completion_length,
                                   sampling=Sampling(g.temperature, g.top_p, self.generator),
                                   label=f"step{trainer.state.global_step}")
        self.last = episodes
        counts = round_counts(episodes)
        for name in ("rollouts", "failed", "crashed", "timed_out", "no_calls", "no_reward", "truncated",
                     "model_calls"):
            trainer.log_rollout_metric(f"agent/{name}", float(counts[name]))
        trainer.log_rollout_metric("agent/seconds", time.perf_counter() - started)
        trainer.log_rollout_metric("tools/call_frequency", counts["tool_calls"] / max(len(episodes), 1))
        return {"prompt_ids": [e.prompt_ids for e in episodes],
                "completion_ids": [e.completion_ids for e in episodes],
                "logprobs": [e.logprobs for e in episodes],
                "env_mask": [e.generated_mask for e in episodes],
                "environments": [e.env for e in episodes],
                ROLLOUT_MESSAGES: [e.messages for e in episodes],
                ROLLOUT_PROMPTS: [e.prompt for e in episodes]}
