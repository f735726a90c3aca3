"""Success rate of a policy on an environment's task split: greedy rollouts through the same tools and sandbox.

    python main_agent_lightning.py eval --env filesystem --split test [--adapter DIR] [--limit N] [--json]
    report = evaluate(cfg, split="test", adapter=None, limit=None)   # {"success_rate": ..., ...}

Each task is played like a training rollout: the prompt with the environment's system prompt and tools (rendered
in the policy's own tool-call format, chat/tool_format.py), greedy generation, the policy's tool calls parsed by
the same tolerant parser and executed by the same wrapped tools in a fresh workspace, tool results appended,
until the policy answers without a call or `env.max_turns` rounds are used. The episode is then verified and
scored by the run's reward functions (through the same RewardSuite as training). Episodes of one turn are
generated in batches of `batch_size`, left-padded.

Report: success_rate, mean reward per reward function and in total (weighted), tool_error_rate (failed / all
tool calls), mean turns and tool calls, and the same per task tier when tasks have a `tier`. Each training stage
runs it at its end on `eval.limit` test tasks (`eval.at_end`) and adds it to its summary.json.
Not covered: sampling-based pass@k, and the generation-length budget counting tool results (here each turn may
generate up to `eval.max_new_tokens` tokens, default `grpo.max_completion_length`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import torch

from agent_lightning.config import Config
from agent_lightning.env import tool_message
from agent_lightning.errors import UserError

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
        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    return model, tokenizer


def rollout_batch(model: Any, tokenizer: Any, env_cls: type, tasks: list[dict[str, Any]], system: str | None,
                  max_new_tokens: int, max_turns: int) -> tuple[list[Any], list[list[dict[str, Any]]]]:
    """Play `tasks` greedily; returns (environments with their episodes done, completions as message lists)."""
    envs = [env_cls() for _ in tasks]
    conversations, completions = [], []
    for env, task in zip(envs, tasks):
        observation = env.reset(**task)
        user = task["prompt"] + (observation or "")
        conversations.append(([{"role": "system", "content": system}] if system else []) +
                             [{"role": "user", "content": user}])
        completions.append([])
    has_tools = bool(env_cls.tool_names())
    active = list(range(len(tasks)))
    for _ in range(max_turns + 1 if has_tools else 1):
        if not active:
            break
        replies = _generate(model, tokenizer, [conversations[i] for i in active],
                            [_tools(envs[i]) for i in active] if has_tools else None, max_new_tokens)
        still = []
        for i, reply in zip(active, replies):
            conversations[i].append(reply)
            completions[i].append(reply)
            calls = reply.get("tool_calls") or []
            if not calls:
                continue
            for call in calls:
                function = call.get("function", {})
                message = tool_message(envs[i], function.get("name"), function.get("arguments", {}))
                conversations[i].append(message)
                completions[i].append(message)
            still.append(i)
        active = still
    return envs, completions


def _tools(env: Any) -> list[Any]:
    return [getattr(env, name) for name in env.tool_names()]


@torch.no_grad()
def _generate(model: Any, tokenizer: Any, conversations: list[list[dict]], tools: list[list] | None,
              max_new_tokens: int) -> list[dict[str, Any]]:
    prompts = [tokenizer.apply_chat_template(c, tools=tools[k] if tools else None, add_generation_prompt=True,
                                             tokenize=False) for k, c in enumerate(conversations)]
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    replies = []
    for ids in out[:, batch["input_ids"].shape[1]:].tolist():
        if tools:
            reply = tokenizer.parse_response(ids, tools=tools[0])
        else:
            reply = {"role": "assistant", "content": tokenizer.decode(ids, skip_special_tokens=True)}
        replies.append(reply)
    return replies


def evaluate(cfg: Config, split: str = "test", adapter: str | None = None, limit: int | None = None,
             batch_size: int = 8, model: Any = None, tokenizer: Any = None) -> dict[str, Any]:
    """Greedy evaluation of the policy (or `model`/`tokenizer` given) on `split`; see the module docstring."""
    from agent_lightning.registry import discover
    from agent_lightning.rewarding import RewardSuite
    from agent_lightning.train.grpo import environment_class

    from agent_lightning.memory.context import configure

    discover()
    env_cls = environment_class(cfg)
    suite = RewardSuite.from_config(cfg.rewards, env_cls)
    configure(cfg.memory)  # same prompts (retrieved context) as training
    size = cfg.env.test_size if split == "test" else cfg.env.train_size
    tasks = env_cls.tasks(split, size, cfg.env.seed)[: limit or None]
    if model is None:
        model, tokenizer = load_for_eval(cfg, adapter)
    if env_cls.tool_names():
        from agent_lightning.chat.tool_format import prepare_for_tools

        prepare_for_tools(tokenizer, cfg.policy.tool_prompt)
    system = cfg.env.system_prompt if cfg.env.system_prompt is not None else env_cls.system_prompt
    started = time.time()
    rows = []
    was_training = getattr(model, "training", False)
    model.eval()
    progress = _progress(len(tasks))
    for start in range(0, len(tasks), batch_size):
        chunk = tasks[start:start + batch_size]
        envs, completions = rollout_batch(model, tokenizer, env_cls, chunk, system,
                                          cfg.eval.max_new_tokens or cfg.grpo.max_completion_length, cfg.env.max_turns)
        columns = {k: [t.get(k) for t in chunk] for k in chunk[0] if k != "prompt"}
        scores = {name: fn(prompts=[[{"role": "user", "content": t["prompt"]}] for t in chunk], completions=completions,
                           completion_ids=None, environments=envs if env_cls.tool_names() else None, **columns)
                  for name, fn in zip(suite.names, suite.functions)}
        envs = suite.environments_for(completions, {**columns, "environments": envs if env_cls.tool_names() else None})
        for i, (task, env) in enumerate(zip(chunk, envs)):
            rows.append({"task_id": task["task_id"], "tier": task.get("tier"), "outcome": env.outcome,
                         "rewards": {n: v[i] for n, v in scores.items()}})
        done = sum(r["outcome"].success for r in rows)
        if progress is not None:
            progress.update(progress.task_ids[0], completed=len(rows), stats=f"success {done}/{len(rows)}", refresh=True)
        else:  # piped output (a log file): one line per batch instead of a bar
            log.info("eval: %d/%d tasks, success %d, %.0f s", len(rows), len(tasks), done, time.time() - started)
    if progress is not None:
        progress.stop()
    if was_training:
        model.train()
    report = summarize(rows, dict(zip(suite.names, suite.weights)))
    report.update({"env": cfg.env.name, "split": split, "tasks": len(rows), "adapter": adapter,
                   "policy": cfg.policy.source, "seconds": round(time.time() - started, 1)})
    return report


def _progress(total: int) -> Any:
    """A one-line progress bar on a terminal (none when output is piped, e.g. --json into a file)."""
    import sys

    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("[bold]EVAL"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
                        TimeRemainingColumn(), console=Console(stderr=True), auto_refresh=False)
    progress.start()
    progress.add_task("eval", total=total, stats="")
    return progress


def summarize(rows: list[dict[str, Any]], weights: dict[str, float]) -> dict[str, Any]:
    def block(part: list[dict[str, Any]]) -> dict[str, Any]:
        n = max(len(part), 1)
        calls = sum(r["outcome"].tool_calls for r in part)
        errors = sum(r["outcome"].tool_errors for r in part)
        means = {}
        for name in weights:
            values = [r["rewards"][name] for r in part if r["rewards"][name] is not None]
            means[name] = sum(values) / len(values) if values else None
        total = sum(weights[k] * v for k, v in means.items() if v is not None)
        return {"success_rate": sum(r["outcome"].success for r in part) / n, "reward": total,
                "rewards": means, "tool_error_rate": errors / calls if calls else 0.0,
                "mean_turns": sum(r["outcome"].turns for r in part) / n, "mean_tool_calls": calls / n, "n": len(part)}

    report = block(rows)
    tiers = defaultdict(list)
    for row in rows:
        if row["tier"] is not None:
            tiers[row["tier"]].append(row)
    if tiers:
        report["by_tier"] = {str(t): block(part) for t, part in sorted(tiers.items())}
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['env']} / {report['split']}: {report['tasks']} tasks, policy {report['policy']}"
             f"{' + ' + report['adapter'] if report['adapter'] else ''} ({report['seconds']} s)",
             f"  success rate      {report['success_rate']:.1%}",
             f"  reward (weighted) {report['reward']:.3f}   " +
             "  ".join(f"{k}={v:.3f}" for k, v in report["rewards"].items() if v is not None),
             f"  tool error rate   {report['tool_error_rate']:.1%}   mean turns {report['mean_turns']:.2f}   "
             f"mean tool calls {report['mean_tool_calls']:.2f}"]
    for tier, part in (report.get("by_tier") or {}).items():
        lines.append(f"  tier {tier}: success {part['success_rate']:.1%} of {part['n']}, "
                     f"tool errors {part['tool_error_rate']:.1%}, turns {part['mean_turns']:.2f}")
    return "\n".join(lines)
