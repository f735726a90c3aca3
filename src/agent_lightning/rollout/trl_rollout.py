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
(TRL's private `_log_metric`): this module touches no TRL internals itself. Each row arrives `num_generations`
times, already repeated by TRL's sampler, and gets one rollout.

Not covered: vLLM (with `grpo.use_vllm=true` TRL's own loop runs, vLLM generating), multimodal tool results,
sampling top-k.
"""

from __future__ import annotations

import time
from typing import Any

from agent_lightning.config import Config
from agent_lightning.rewarding import ROLLOUT_MESSAGES, ROLLOUT_PROMPTS


class CachedRollouts:
    """TRL `rollout_func(prompts, trainer)`; see the module docstring. With `signal_first` (a SignalFirst and the
    run's RewardSuite to score with), flat groups are replaced by groups of fresh training tasks
    (rollout/signal_first.py) and the step's dataset rows are swapped in place to match."""

    def __init__(self, cfg: Config, env_cls: type, system: str | list[dict[str, Any]] | None, memory: Any = None,
                 signal_first: Any = None, suite: Any = None):
        import torch

        self.cfg, self.env_cls, self.system, self.memory = cfg, env_cls, system, memory
        self.signal_first, self.suite = signal_first, suite
        self.generator = torch.Generator().manual_seed(cfg.run.seed)

    def play(self, model: Any, tokenizer: Any, tasks: list[dict[str, Any]]) -> list[Any]:
        """Sampled episodes of `tasks` (task rows, `prompt` being the user text) with the GRPO settings, all in one
        batch, on `model` as it is (the caller merges an adapter)."""
        from agent_lightning.rollout.episodes import play_episodes
        from agent_lightning.rollout.generation import Sampling

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
        model = trainer.accelerator.unwrap_model(trainer.model)
        started = time.perf_counter()
        with generation_weights(model):
            if self.signal_first is None:
                episodes, stats = self.play(model, trainer.processing_class, _tasks(rows)), None
            else:
                episodes, stats = self._play_signal_first(model, trainer.processing_class, rows)
        calls = sum(len(e.env.calls) for e in episodes)
        failures = sum(not c["ok"] for e in episodes for c in e.env.calls)
        trainer.log_rollout_metric("tools/call_frequency", calls / len(episodes))
        trainer.log_rollout_metric("tools/failure_frequency", failures / calls if calls else 0.0)
        if stats is not None:
            minutes = (time.perf_counter() - started) / 60
            signal_rollouts = stats.groups_with_signal * self.signal_first.group_size
            for name, value in (("groups_sampled", stats.groups_sampled),
                                ("groups_with_signal", stats.groups_with_signal),
                                ("groups_replaced", stats.groups_replaced),
                                ("skipped_predicted_flat", stats.skipped_predicted_flat),
                                ("swapped_for_spread", stats.swapped_for_spread), ("rollouts", stats.rollouts),
                                ("rollouts_per_minute", stats.rollouts / minutes),
                                ("signal_rollouts_per_minute", signal_rollouts / minutes)):
                trainer.log_rollout_metric(f"sampling/{name}", float(value))
        return {"prompt_ids": [e.prompt_ids for e in episodes],
                "completion_ids": [e.completion_ids for e in episodes],
                "logprobs": None,
                "env_mask": [e.generated_mask for e in episodes],
                "environments": [e.env for e in episodes],
                ROLLOUT_MESSAGES: [e.messages for e in episodes],
                ROLLOUT_PROMPTS: [e.prompt for e in episodes]}

    def _play_signal_first(self, model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> tuple[list[Any], Any]:
        """Play the round with flat groups predicted away beforehand and replaced afterwards by groups with signal
        from passes of at least `pass_groups` groups (rollout/signal_first.py); `rows` (TRL's list of the step's
        dataset rows, read again when TRL scores the rewards) is updated in place to match."""
        from agent_lightning.rollout.signal_first import RoundStats

        sf, size = self.signal_first, self.signal_first.group_size
        stats = RoundStats()
        rows[:] = sf.before_round(list(rows), stats)
        spares = sf.draw_groups(rows, max(sf.pass_groups - len(rows) // size, 0))
        tried = {str(row["task_id"]) for row in rows} | {str(group[0]["task_id"]) for group in spares}  # not again
        played_episodes, played_scores = self._play_groups(model, tokenizer, [*sf.groups(rows), *spares], stats)
        episodes, scores = played_episodes[:len(rows)], played_scores[:len(rows)]
        self._fill(rows, episodes, scores, spares, played_episodes[len(rows):], played_scores[len(rows):], stats)
        for _ in range(sf.passes):
            flat = sf.flat_groups(scores)
            if not flat:
                break
            fresh = sf.draw_groups(rows, max(len(flat), sf.pass_groups), exclude=tried)
            if not fresh:
                break
            tried.update(str(group[0]["task_id"]) for group in fresh)
            fresh_episodes, fresh_scores = self._play_groups(model, tokenizer, fresh, stats)
            self._fill(rows, episodes, scores, fresh, fresh_episodes, fresh_scores, stats)
        stats.groups_with_signal = len(rows) // size - len(sf.flat_groups(scores))
        return episodes, stats

    def _play_groups(self, model: Any, tokenizer: Any, groups: list[list[dict[str, Any]]],
                     stats: Any) -> tuple[list[Any], list[float]]:
        """Play `groups` in one batch, score them and record each group's flatness; counted in `stats`. Returns
        the episodes and scores, row by row."""
        flat_rows = [row for group in groups for row in group]
        episodes = self.play(model, tokenizer, _tasks(flat_rows))
        scores = self._scores(flat_rows, episodes)
        self._observe(flat_rows, scores)
        stats.groups_sampled += len(groups)
        stats.rollouts += len(flat_rows)
        return episodes, scores

    def _fill(self, rows: list[dict[str, Any]], episodes: list[Any], scores: list[float],
              groups: list[list[dict[str, Any]]], group_episodes: list[Any], group_scores: list[float],
              stats: Any) -> None:
        """Put the played `groups` that carry signal into the round's flat slots, in order (in place)."""
        sf, size = self.signal_first, self.signal_first.group_size
        slots = iter(sf.flat_groups(scores))
        flat = set(sf.flat_groups(group_scores))
        for k, group in enumerate(groups):
            if k in flat:
                continue
            index = next(slots, None)
            if index is None:
                return
            span, source = slice(index * size, (index + 1) * size), slice(k * size, (k + 1) * size)
            rows[span], episodes[span], scores[span] = group, group_episodes[source], group_scores[source]
            stats.groups_replaced += 1

    def _scores(self, rows: list[dict[str, Any]], episodes: list[Any]) -> list[float]:
        columns = {k: [row.get(k) for row in rows] for k in rows[0] if k not in ("prompt", "question")}
        return self.suite.totals([e.prompt for e in episodes], [e.messages for e in episodes],
                                 environments=[e.env for e in episodes], **columns)

    def _observe(self, rows: list[dict[str, Any]], scores: list[float]) -> None:
        """Record each group's flatness in the sampler's history."""
        flat = set(self.signal_first.flat_groups(scores))
        for g in range(len(rows) // self.signal_first.group_size):
            self.signal_first.observe(rows[g * self.signal_first.group_size], g in flat)


def _tasks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dataset rows -> task rows for env.reset (`prompt` is the user's text, as the environment's `tasks` gave it)."""
    return [{**{k: v for k, v in row.items() if k not in ("prompt", "question")}, "prompt": row["question"]}
            for row in rows]
