"""Success rate of a policy on an environment's task split: greedy rollouts through the same tools and sandbox.

    python main_agent_lightning.py eval --env filesystem --split test [--adapter DIR] [--limit N] [--json]
    report = evaluate(cfg, split="test", adapter=None, limit=None)   # {"success_rate": ..., ...}

Each task is played like a training rollout: the prompt with the environment's system prompt and tools (rendered
in the policy's own tool-call format, chat/tool_format.py), greedy generation, the policy's tool calls parsed by
the same tolerant parser and executed by the same wrapped tools in a fresh workspace, tool results appended,
until the policy answers without a call, `env.max_turns` rounds are used, or `eval.max_failed_turns` turns in a
row had only failing calls (a policy that cannot use the tools stops wasting turns; training has no such cut). The episode is then verified and
scored by the run's reward functions (through the same RewardSuite as training). Tasks are played `batch_size`
at a time; each row keeps its KV cache from turn to turn (cached_generation.CachedSession), so a turn only
processes the new tool results instead of the whole conversation again, finished episodes leave the batch, and
rows that finished their reply stop costing compute within a turn. A LoRA adapter on
unquantized weights is merged into them for the rollouts (and unmerged afterwards when it is the training model).

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

from agent_lightning.cached_generation import CachedSession
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
        if _can_merge(model):
            model = model.merge_and_unload()  # plain weights: no per-layer adapter work at every generated token
    model.eval()
    return model, tokenizer


def _can_merge(model: Any) -> bool:
    """A LoRA-wrapped model whose base weights are not quantized (merging into 4-bit weights would round them)."""
    if not hasattr(model, "merge_adapter"):
        return False
    inner = model.get_base_model()
    return (getattr(inner.config, "quantization_config", None) is None
            and not getattr(inner, "is_loaded_in_4bit", False) and not getattr(inner, "is_loaded_in_8bit", False))


def rollout_batch(model: Any, tokenizer: Any, env_cls: type, tasks: list[dict[str, Any]], system: str | None,
                  max_new_tokens: int, max_turns: int,
                  max_failed_turns: int = 0) -> tuple[list[Any], list[list[dict[str, Any]]]]:
    """Play `tasks` greedily; returns (environments with their episodes done, completions as message lists).
    An episode also ends after `max_failed_turns` turns in a row whose calls all failed (0: no such limit)."""
    envs = [env_cls() for _ in tasks]
    conversations, completions = [], []
    for env, task in zip(envs, tasks):
        observation = env.reset(**task)
        user = task["prompt"] + (observation or "")
        conversations.append(([{"role": "system", "content": system}] if system else []) +
                             [{"role": "user", "content": user}])
        completions.append([])
    tools = [_tools(env) for env in envs] if env_cls.tool_names() else None
    session = CachedSession(model, tokenizer)
    segments = {i: _render(tokenizer, conversations[i], tools, i) for i in range(len(tasks))}
    failed_turns = [0] * len(tasks)
    for _ in range(max_turns + 1 if tools else 1):
        if not segments:
            break
        replies = session.generate(segments, max_new_tokens)
        segments = {}
        for i, (ids, stopped) in replies.items():
            reply = tokenizer.parse_response(ids, tools=tools[i]) if tools else \
                {"role": "assistant", "content": tokenizer.decode(ids, skip_special_tokens=True)}
            conversations[i].append(reply)
            completions[i].append(reply)
            calls = reply.get("tool_calls") or []
            functions = [call.get("function", {}) for call in calls]
            results = [tool_message(envs[i], f.get("name"), f.get("arguments", {})) for f in functions]
            completions[i].extend(results)
            all_failed = bool(calls) and all(r["content"].startswith("{'error'") for r in results)
            failed_turns[i] = failed_turns[i] + 1 if all_failed else 0
            if calls and not (max_failed_turns and failed_turns[i] >= max_failed_turns):
                segments[i] = _next_segment(tokenizer, conversations[i], results, tools, i, stopped)
    return envs, completions


def _next_segment(tokenizer: Any, conversation: list[dict], results: list[dict], tools: list[list] | None, i: int,
                  stopped: bool) -> str:
    """Append the tool `results` to `conversation` (which ends with the reply) and return the text the template
    adds after the reply: the results and the next assistant header, the next turn's only new input."""
    before = _render(tokenizer, conversation, tools, i, generation_prompt=False)
    conversation.extend(results)
    after = _render(tokenizer, conversation, tools, i)
    if not after.startswith(before):
        raise UserError("the chat template is not prefix-preserving (a rendered conversation changed when tool "
                        "results were appended); evaluation needs one that is, as TRL does.")
    # the reply's own tokens end at its end-of-turn token (added here if generation was cut off); the rendered
    # reply may end with a newline after it
    return ("" if stopped else tokenizer.eos_token) + "\n" * before.endswith("\n") + after[len(before):]


def _render(tokenizer: Any, conversation: list[dict], tools: list[list] | None, i: int,
            generation_prompt: bool = True) -> str:
    return tokenizer.apply_chat_template(conversation, tools=tools[i] if tools else None,
                                         add_generation_prompt=generation_prompt, tokenize=False)


def _tools(env: Any) -> list[Any]:
    return [getattr(env, name) for name in env.tool_names()]


def evaluate(cfg: Config, split: str = "test", adapter: str | None = None, limit: int | None = None,
             batch_size: int | None = None, model: Any = None, tokenizer: Any = None) -> dict[str, Any]:
    """Greedy evaluation of the policy (or `model`/`tokenizer` given) on `split`, `batch_size` (default
    `eval.batch_size`) episodes at a time; see the module docstring."""
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
    was_training = getattr(model, "training", False)
    model.eval()
    merged = _can_merge(model)
    if merged:  # the training model: fold the adapter into the weights for the rollouts, unfold it afterwards
        model.merge_adapter()
    try:
        rows = _play(cfg, model, tokenizer, env_cls, suite, tasks, system, batch_size or cfg.eval.batch_size, started)
    finally:
        if merged:
            model.unmerge_adapter()
        if was_training:
            model.train()
    report = summarize(rows, dict(zip(suite.names, suite.weights)))
    report.update({"env": cfg.env.name, "split": split, "tasks": len(rows), "adapter": adapter,
                   "policy": cfg.policy.source, "seconds": round(time.time() - started, 1)})
    return report


def _play(cfg: Config, model: Any, tokenizer: Any, env_cls: type, suite: Any, tasks: list[dict[str, Any]],
          system: str | None, batch_size: int, started: float) -> list[dict[str, Any]]:
    """Roll out `tasks` in batches and score them: one row per task with its outcome and rewards."""
    rows: list[dict[str, Any]] = []
    progress = _progress(len(tasks))
    for start in range(0, len(tasks), batch_size):
        chunk = tasks[start:start + batch_size]
        envs, completions = rollout_batch(model, tokenizer, env_cls, chunk, system,
                                          cfg.eval.max_new_tokens or cfg.grpo.max_completion_length, cfg.env.max_turns,
                                          cfg.eval.max_failed_turns)
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
    return rows


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
