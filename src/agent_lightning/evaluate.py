"""Success rate of a policy on an environment's task split: rollouts through the same tools and sandbox.

    python main_agent_lightning.py eval --env filesystem --split test [--adapter DIR] [--limit N] [--json]
    python main_agent_lightning.py eval ... --samples 8 --temperature 0.8     # pass@1 and pass@k, sampled
    python main_agent_lightning.py eval ... --tiers 3                         # only the split's tier-3 tasks
    report = evaluate(cfg, split="test", adapter=None, limit=None)   # {"success_rate": ..., ...}

Each task is played greedily by the same rollout loop GRPO samples with (rollouts.play_episodes: the same
prompts, tool-call parser, wrapped tools and fresh workspaces), until the policy answers without a call,
`env.max_turns` rounds are used, or `eval.max_failed_turns` turns in a row had only failing calls (a policy that
cannot use the tools stops wasting turns; training has no such cut). The episode is then verified and scored by
the run's reward functions (through the same RewardSuite as training). Tasks are played `batch_size` at a time,
each row keeping its KV cache from turn to turn. A LoRA adapter on unquantized weights is merged into them for
the rollouts (and unmerged afterwards when it is the training model).

With `samples` K > 1 (`eval.samples`, `--samples`) every task is played K times, sampled at `eval.temperature` /
`eval.top_p` from a generator seeded by `run.seed`, and the report adds `pass_at_k` for k = 1, 2, 4, ... K (the
unbiased estimator, stats.pass_at_k): pass@K minus pass@1 is roughly the headroom that RL can turn into greedy
success. With K = 1 the rollouts are greedy (temperature 0).

Report: success_rate (pass@1: the mean over tasks of each task's share of successful samples), mean reward per
reward function and in total (weighted), tool_error_rate (failed / all tool calls), mean turns and tool calls,
and the same per task tier and per task template when tasks have a `tier` or a `template` (`by_tier`,
`by_template`; the text report shows the tiers), `episodes_with_memory` (episodes whose prompt got retrieved
code or SOPs, `memory.inject`), and `per_task`: each task's id, tier, template, samples and successes, so any two
reports on the same split can be paired afterwards (stats.paired_difference). Each training stage runs it at its
end on `eval.limit` test tasks (`eval.at_end`) and adds it to its summary.json.

`play` replaces the episode loop (same signature as rollout.episodes.play_episodes): the `agent` environment's
episodes are played by your agent program through the gateway (serve.agents.play_agents, greedy unless sampled),
which this module cannot import (serve is a layer above); `eval` and the training stages pass it
(`serve.player_for(cfg)`), and evaluating that environment without it is a one-line error.
Not covered: the generation-length budget counting tool results (here each turn may generate up to
`eval.max_new_tokens` tokens, default `grpo.max_completion_length`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from agent_lightning.config import Config
from agent_lightning.errors import UserError
from agent_lightning.rollout.episodes import can_merge, generation_weights, play_episodes
from agent_lightning.stats import pass_at_k

log = logging.getLogger(__name__)


def load_for_eval(cfg: Config, adapter: str | None) -> tuple[Any, Any]:
    """The policy (base, or base + `adapter`) in eval mode, and its tokenizer."""
    from agent_lightning.policy import load_base_model

    model, tokenizer = load_base_model(cfg.policy)
    if adapter:
        from pathlib import Path

        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise UserError(f"--adapter {adapter}: no adapter_config.json there (expected a run's adapter/ folder).")
        try:
            model = PeftModel.from_pretrained(model, adapter)
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign adapter: one line naming the file
            from agent_lightning.policy import unreadable

            if not unreadable(exc):
                raise
            raise UserError(f"--adapter {adapter}: cannot be loaded ({type(exc).__name__}: {str(exc)[:160]}); the "
                            "adapter files are damaged or were made for another base model: point --adapter at a "
                            "whole adapter/ folder of a run on this policy.".replace("\n", " ")) from None
        if can_merge(model):
            model = model.merge_and_unload()  # plain weights: no per-layer adapter work at every generated token
    model.eval()
    return model, tokenizer


def dev_source(env_cls: type, cfg: Config) -> str:
    """Where this run's dev tasks come from: 'held_out' (the environment's own dev split) or 'train'."""
    return "held_out" if cfg.env.dev_source == "held_out" and getattr(env_cls, "has_dev_split", False) else "train"


def split_tasks(env_cls: type, cfg: Config, split: str) -> list[dict[str, Any]]:
    """The task rows of `split`: 'test' (held out), 'train' (what training draws from), or 'dev', `env.dev_size`
    tasks for choosing recipes without touching the test split: the environment's own dev split where it has one
    (`has_dev_split`) and `env.dev_source` is 'held_out', else training-split tasks that training does not use
    (those after the ones `env.train_size` / `env.train_tiers` select, every tier)."""
    from agent_lightning.envs import tasks_in_tiers

    if split == "test":
        return env_cls.tasks("test", cfg.env.test_size, cfg.env.seed)
    if split == "dev" and dev_source(env_cls, cfg) == "held_out":
        return env_cls.tasks("dev", cfg.env.dev_size, cfg.env.seed)
    used = tasks_in_tiers(env_cls, "train", cfg.env.train_size, cfg.env.seed, cfg.env.train_tiers)
    if split == "train":
        return used
    if split != "dev":
        raise UserError(f"split '{split}' is not one of train, dev, test.")
    taken = {row["task_id"] for row in used}
    asked = len(taken) + cfg.env.dev_size
    while True:  # the rows are a prefix-stable sequence: dev is the dev_size rows after the last one training uses
        rows = env_cls.tasks("train", asked, cfg.env.seed)
        last = max((i for i, row in enumerate(rows) if row["task_id"] in taken), default=-1)
        if len(rows) - (last + 1) >= cfg.env.dev_size or len(rows) < asked:
            return rows[last + 1:][: cfg.env.dev_size]
        asked = last + 1 + cfg.env.dev_size


def evaluate(cfg: Config, split: str = "test", adapter: str | None = None, limit: int | None = None,
             batch_size: int | None = None, model: Any = None, tokenizer: Any = None,
             samples: int | None = None, play: Callable[..., list[Any]] | None = None,
             tiers: list[int] | None = None) -> dict[str, Any]:
    """Evaluation of the policy (or `model`/`tokenizer` given) on `split` (only its tasks of `tiers`, when given;
    then the first `limit` of them), `batch_size` (default `eval.batch_size`) episodes at a time, each task
    `samples` times (default `eval.samples`; 1: greedy); see the module docstring. `play` plays a batch instead of
    rollout.episodes.play_episodes (same signature): the agent environment's is serve.agents.play_agents, which its
    callers pass (`serve.player_for(cfg)`)."""
    from agent_lightning.registry import discover
    from agent_lightning.rewarding import RewardSuite
    from agent_lightning.envs import environment_class, prompt_prefix
    from agent_lightning.memory.context import MemoryContext

    discover()
    env_cls = environment_class(cfg)
    suite = RewardSuite.from_config(cfg.rewards, env_cls, cfg.env)
    memory = MemoryContext.for_run(cfg.memory)  # same prompts (retrieved context) as training
    tasks = split_tasks(env_cls, cfg, split)
    if tiers:
        if not all("tier" in task for task in tasks):
            raise UserError(f"--tiers: env '{cfg.env.name}' tasks have no `tier`; leave --tiers out.")
        tasks = [task for task in tasks if task["tier"] in tiers]
    tasks = tasks[: limit or None]
    if not tasks:
        raise UserError(f"eval: no {split} task of env '{cfg.env.name}' is left to play"
                        + (f" in tiers {tiers}" if tiers else "") + "; check --tiers and --limit.")
    if model is None:
        model, tokenizer = load_for_eval(cfg, adapter)
    if play is None and getattr(env_cls, "external_agent", False):
        raise UserError(f"env '{cfg.env.name}' is played by an agent program through the gateway: evaluate it with "
                        "`main_agent_lightning.py eval`, or pass play=agent_lightning.serve.agents.play_agents.")
    if env_cls.tool_names() or play is not None:  # a player through the gateway parses the policy's calls too
        from agent_lightning.chat.tool_format import prepare_for_tools

        prepare_for_tools(tokenizer, cfg.policy.tool_prompt)
    system = prompt_prefix(cfg, env_cls)
    samples = samples or cfg.eval.samples
    if samples < 1:
        raise UserError(f"--samples {samples}: expected a number of samples per task >= 1.")
    sampling = None
    if samples > 1:
        import torch

        from agent_lightning.rollout.generation import Sampling

        sampling = Sampling(cfg.eval.temperature, cfg.eval.top_p, torch.Generator().manual_seed(cfg.run.seed))
    started = time.time()
    episodes = [task for task in tasks for _ in range(samples)]  # a task's samples side by side in one batch
    with generation_weights(model):  # the training model: adapter folded in for the rollouts, unfolded afterwards
        rows = _play(cfg, model, tokenizer, env_cls, suite, episodes, system, batch_size or cfg.eval.batch_size,
                     started, memory, sampling, play)
    report = summarize(rows, dict(zip(suite.names, suite.weights)), samples)
    report.update({"env": cfg.env.name, "split": split, "tiers": tiers or None, "tasks": len(tasks), "samples": samples,
                   "dev_source": dev_source(env_cls, cfg) if split == "dev" else None,
                   "temperature": cfg.eval.temperature if samples > 1 else 0.0, "adapter": adapter,
                   "policy": cfg.policy.source, "prompt": _prompt_label(cfg),
                   "episodes_with_memory": sum(row["memory"] for row in rows),
                   "seconds": round(time.time() - started, 1)})
    return report


def _prompt_label(cfg: Config) -> str | None:
    """`path (fingerprint)` of the run's prompt.yaml (policy.prompt), None for the environment's own prompt."""
    if not cfg.policy.prompt:
        return None
    from agent_lightning.chat.prompt import Prompt

    return f"{cfg.policy.prompt} ({Prompt.load(cfg.policy.prompt).fingerprint})"


def _play(cfg: Config, model: Any, tokenizer: Any, env_cls: type, suite: Any, tasks: list[dict[str, Any]],
          system: str | None, batch_size: int, started: float, memory: Any = None,
          sampling: Any = None, play: Callable[..., list[Any]] | None = None) -> list[dict[str, Any]]:
    """Roll out `tasks` in batches and score them: one row per episode with its outcome and rewards."""
    rows: list[dict[str, Any]] = []
    progress = BatchProgress("EVAL", len(tasks), "episodes", started)
    played = env_cls.tool_names() or play is not None  # episodes bring their environments (single-turn: built here)
    for start in range(0, len(tasks), batch_size):
        chunk = tasks[start:start + batch_size]
        episodes = (play or play_episodes)(model, tokenizer, env_cls, chunk, system,
                                           max_new_tokens=cfg.eval.max_new_tokens or cfg.grpo.max_completion_length,
                                           max_turns=cfg.env.max_turns, max_failed_turns=cfg.eval.max_failed_turns,
                                           memory=memory, sampling=sampling)
        envs, completions = [e.env for e in episodes], [e.messages for e in episodes]
        retrieved = [getattr(env, "retrieved", None) or {} for env in envs]  # what memory put in each prompt
        columns = {k: [t.get(k) for t in chunk] for k in chunk[0] if k != "prompt"}
        scores = {name: fn(prompts=[[{"role": "user", "content": t["prompt"]}] for t in chunk], completions=completions,
                           completion_ids=None, environments=envs if played else None, **columns)
                  for name, fn in zip(suite.names, suite.functions)}
        envs = suite.environments_for(completions, {**columns, "environments": envs if played else None})
        for i, (task, env) in enumerate(zip(chunk, envs)):
            rows.append({"task_id": task["task_id"], "tier": task.get("tier"), "template": task.get("template"),
                         "outcome": env.outcome, "rewards": {n: v[i] for n, v in scores.items()},
                         "memory": bool(retrieved[i].get("code") or retrieved[i].get("sops"))})
        progress.update(len(rows), f"success {sum(r['outcome'].success for r in rows)}/{len(rows)}")
    progress.stop()
    return rows


class BatchProgress:
    """Progress of work done in batches: a one-line bar on a terminal, one log line per `update` when output is
    piped (a log file, or --json into a file)."""

    def __init__(self, label: str, total: int, unit: str, started: float | None = None):
        import sys

        self.label, self.total, self.unit = label, total, unit
        self.started = time.time() if started is None else started
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
                                console=Console(stderr=True), auto_refresh=False)
            self.bar.start()
            self.bar.add_task(label, total=total, stats="")

    def update(self, completed: int, stats: str) -> None:
        if self.bar is not None:
            self.bar.update(self.bar.task_ids[0], completed=completed, stats=stats, refresh=True)
        else:
            log.info("%s: %d/%d %s, %s, %.0f s", self.label.lower(), completed, self.total, self.unit, stats,
                     time.time() - self.started)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def summarize(rows: list[dict[str, Any]], weights: dict[str, float], samples: int = 1) -> dict[str, Any]:
    """The report of one row per episode (`samples` consecutive rows per task); see the module docstring."""

    def block(part: list[dict[str, Any]]) -> dict[str, Any]:
        n = max(len(part), 1)
        calls = sum(r["outcome"].tool_calls for r in part)
        errors = sum(r["outcome"].tool_errors for r in part)
        means = {}
        for name in weights:
            values = [r["rewards"][name] for r in part if r["rewards"][name] is not None]
            means[name] = sum(values) / len(values) if values else None
        total = sum(weights[k] * v for k, v in means.items() if v is not None)
        out = {"success_rate": sum(r["outcome"].success for r in part) / n, "reward": total,
               "rewards": means, "tool_error_rate": errors / calls if calls else 0.0,
               "mean_turns": sum(r["outcome"].turns for r in part) / n, "mean_tool_calls": calls / n,
               "n": len(part) // samples}
        if samples > 1:
            counts = [sum(r["outcome"].success for r in part[i:i + samples]) for i in range(0, len(part), samples)]
            ks = [k for k in (2 ** i for i in range(samples.bit_length())) if k <= samples]
            ks += [samples] if samples not in ks else []
            out["pass_at_k"] = {str(k): sum(pass_at_k(samples, c, k) for c in counts) / max(len(counts), 1)
                                for k in ks}
        return out

    report = block(rows)
    for key, name in (("tier", "by_tier"), ("template", "by_template")):
        groups = defaultdict(list)
        for row in rows:
            if row.get(key) is not None:
                groups[row[key]].append(row)
        if groups:
            report[name] = {str(k): block(part) for k, part in sorted(groups.items())}
    report["per_task"] = [{"task_id": rows[i]["task_id"], "tier": rows[i]["tier"], "template": rows[i]["template"],
                           "samples": samples,
                           "successes": sum(r["outcome"].success for r in rows[i:i + samples])}
                          for i in range(0, len(rows), samples)]
    return report


def task_successes(report: dict[str, Any]) -> dict[str, float]:
    """task id -> share of its samples that succeeded (0/1 when greedy), for stats.paired_difference."""
    return {str(t["task_id"]): t["successes"] / t["samples"] for t in report.get("per_task", [])}


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['env']} / {report['split']}: {report['tasks']} tasks, policy {report['policy']}"
             f"{' + ' + report['adapter'] if report['adapter'] else ''}"
             f"{', prompt ' + report['prompt'] if report.get('prompt') else ''} ({report['seconds']} s)",
             f"  success rate      {report['success_rate']:.1%}" + (
                 f" (pass@1 of {report['samples']} samples at temperature {report['temperature']})   " +
                 "  ".join(f"pass@{k} {v:.1%}" for k, v in report["pass_at_k"].items())
                 if report.get("pass_at_k") else ""),
             f"  reward (weighted) {report['reward']:.3f}   " +
             "  ".join(f"{k}={v:.3f}" for k, v in report["rewards"].items() if v is not None),
             f"  tool error rate   {report['tool_error_rate']:.1%}   mean turns {report['mean_turns']:.2f}   "
             f"mean tool calls {report['mean_tool_calls']:.2f}"]
    for tier, part in (report.get("by_tier") or {}).items():
        at_k = (", " + " ".join(f"pass@{k} {v:.1%}" for k, v in part["pass_at_k"].items())
                if part.get("pass_at_k") else "")
        lines.append(f"  tier {tier}: success {part['success_rate']:.1%} of {part['n']}{at_k}, "
                     f"tool errors {part['tool_error_rate']:.1%}, turns {part['mean_turns']:.2f}")
    return "\n".join(lines)
