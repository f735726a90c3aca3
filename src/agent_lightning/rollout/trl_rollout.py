"""GRPO rollouts for tool environments played by our cached multi-turn loop, as TRL's `rollout_func`.

    trainer = build_grpo_trainer(...)   # grpo.rollouts: cached (the default) wires this in (train/grpo.py)

TRL's own tool loop (`environment_factory`) regenerates every turn with `generate` on the whole conversation so
far, through the unmerged LoRA layers. `CachedRollouts` plays the step's episodes with rollouts.play_episodes
instead: every rollout of the step in one batch, the adapter merged into the weights while generating, each row's
KV cache kept between turns, sampled with `grpo.temperature` / `grpo.top_p` from a generator seeded by `run.seed`,
each reply at most `grpo.max_turn_tokens` long (a sampled reply that runs on is cut there instead of spending the
whole episode budget while every other row of the batch waits).
It hands TRL what its own loop would have produced:
  - `prompt_ids`, `completion_ids`: the exact tokens the policy read and wrote (tool results included), so TRL's
    loss forward sees the sequence the samples were drawn from;
  - `env_mask`: 1 on generated tokens, 0 on tool results and template text (TRL's tool mask: no loss there);
  - `logprobs`: None (no importance-sampling correction, as with TRL's transformers generation);
  - `environments`, `rollout_messages` and `rollout_prompts`: each rollout's environment, its messages and its
    prompt as played (with what `env.reset` added, e.g. retrieved memory), which the reward suite (rewarding.py)
    verifies, scores and traces instead of TRL's re-parse of the concatenated tokens and its dataset prompt;
  - `tools/call_frequency`, `tools/failure_frequency`: the metrics TRL's loop logs.

TRL passes a rollout function only the prompts; the trainer class of train/trl_compat.py keeps the step's dataset
rows (the task columns `env.reset` needs) in `trainer.rollout_inputs` and logs through `trainer.log_rollout_metric`
(TRL's private `_log_metric`): this module touches no TRL internals itself. Each row arrives `num_generations` times, already
repeated by TRL's sampler, and gets one rollout.

Not covered: vLLM (with `grpo.use_vllm=true` TRL's own loop runs, vLLM generating), multimodal tool results,
sampling top-k.
"""

from __future__ import annotations

from typing import Any

from agent_lightning.config import Config
from agent_lightning.rewarding import ROLLOUT_MESSAGES, ROLLOUT_PROMPTS


class CachedRollouts:
    """TRL `rollout_func(prompts, trainer)`; see the module docstring."""

    def __init__(self, cfg: Config, env_cls: type, system: str | None, memory: Any = None):
        import torch

        self.cfg, self.env_cls, self.system, self.memory = cfg, env_cls, system, memory
        self.generator = torch.Generator().manual_seed(cfg.run.seed)

    def play(self, model: Any, tokenizer: Any, tasks: list[dict[str, Any]]) -> list[Any]:
        """Sampled episodes of `tasks` (task rows, `prompt` being the user text) with the GRPO settings, all in one
        batch, on `model` as it is (the caller merges an adapter)."""
        from agent_lightning.rollout.generation import Sampling
        from agent_lightning.rollout.episodes import play_episodes

        g = self.cfg.grpo
        return play_episodes(model, tokenizer, self.env_cls, tasks, self.system,
                             max_new_tokens=g.max_turn_tokens or g.max_completion_length,
                             max_turns=self.cfg.env.max_turns, completion_budget=g.max_completion_length,
                             sampling=Sampling(g.temperature, g.top_p, self.generator), memory=self.memory)

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from agent_lightning.rollout.episodes import generation_weights

        rows = trainer.rollout_inputs
        if len(rows) != len(prompts):
            raise RuntimeError(f"rollout function: {len(prompts)} prompts but {len(rows)} dataset rows this step")
        tasks = [{**{k: v for k, v in row.items() if k not in ("prompt", "question")}, "prompt": row["question"]}
                 for row in rows]
        model = trainer.accelerator.unwrap_model(trainer.model)
        with generation_weights(model):
            episodes = self.play(model, trainer.processing_class, tasks)
        calls = sum(len(e.env.calls) for e in episodes)
        failures = sum(not c["ok"] for e in episodes for c in e.env.calls)
        trainer.log_rollout_metric("tools/call_frequency", calls / len(episodes))
        trainer.log_rollout_metric("tools/failure_frequency", failures / calls if calls else 0.0)
        return {"prompt_ids": [e.prompt_ids for e in episodes],
                "completion_ids": [e.completion_ids for e in episodes],
                "logprobs": None,
                "env_mask": [e.generated_mask for e in episodes],
                "environments": [e.env for e in episodes],
                ROLLOUT_MESSAGES: [e.messages for e in episodes],
                ROLLOUT_PROMPTS: [e.prompt for e in episodes]}
