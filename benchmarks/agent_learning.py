"""Claim under test: an unchanged `openai` agent, trained by GRPO through the gateway, gets better on held-out tasks.

    .venv/bin/python benchmarks/agent_learning.py [--work runs/agent-learning] [--steps 40] [--learning-rate 2e-4]
        [--fresh-seed 1] [--fresh-count 100] [--no-write]

1. The example agent (examples/openai_agent/agent.py: the official `openai` client, its own tools, its own reward)
   is evaluated greedily on the held-out split of its task file, through the gateway, with the base policy of the
   embedded default (SmolLM2-135M-Instruct, configs/default.yaml).
2. `--algo grpo --set env.name=agent`: every rollout runs the agent program once with OPENAI_BASE_URL set to its
   rollout's URL; GRPO trains on the recorded tokens with the reward the agent reports. The recipe is the
   arithmetic config's (configs/arithmetic.yaml: 2 tasks x 8 rollouts per round, one optimizer step per round,
   learning rate 2e-4), taken as it is: nothing was tuned on these tasks' test split.
3. The trained adapter is evaluated on the same held-out tasks, and base and trained on a fresh draw of the task
   generator (`make_tasks.py --seed FRESH`, every task whose prompt is in the shipped file dropped, all marked
   `split: test`), so the gain is checked on tasks the recipe never saw in any form.
4. Prints, and writes into docs/results.md (block `agent-learning`; `--no-write` only prints): success per tier
   before and after, the paired difference with its 95% interval and n, the share of tool calls, the GRPO
   stage's time and failures, and the command.

Everything lands in `--work` and is reused on a rerun (the GRPO stage resumes from its last checkpoint). Not
covered: signal-first sampling (it does not apply to agent rollouts), other agents or frameworks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _cached_eval import cached_eval, tier_cells, tiers_of  # noqa: E402
from _results import publish  # noqa: E402
from agent_lightning.evaluate import task_successes  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/agent_learning.py"
EXAMPLE = ROOT / "examples" / "openai_agent"
AGENT = ["--set", "env.name=agent", "--set", "agent.command=python examples/openai_agent/agent.py"]


def fresh_tasks(seed: int, count: int, out: Path) -> Path:
    """`count` tasks of a fresh draw of the example's generator, none whose prompt is in the shipped file."""
    if out.is_file():
        return out
    sys.path.insert(0, str(EXAMPLE))
    from make_tasks import make_tasks

    shipped = {json.loads(line)["prompt"] for line in (EXAMPLE / "tasks.jsonl").read_text().splitlines() if line}
    rows = [t for t in make_tasks(4 * count, seed) if t["prompt"] not in shipped][:count]
    out.write_text("".join(json.dumps({**t, "task_id": f"fresh-{t['task_id']}", "split": "test"}) + "\n"
                           for t in rows))
    return out


def train(work: Path, steps: int, learning_rate: float) -> Path:
    """The GRPO stage through the gateway (resumed when a checkpoint exists, skipped when finished); its adapter."""
    run = work / "grpo"
    adapter = run / "adapter"
    if adapter.is_dir():
        return adapter
    args = ["--algo", "grpo", *AGENT, "--set", "agent.tasks=examples/openai_agent/tasks.jsonl",
            "--set", "grpo.warm_start_sft=false", "--set", "grpo.gradient_accumulation_steps=16",
            "--set", "grpo.steps_per_generation=16", "--set", f"grpo.learning_rate={learning_rate}",
            "--max-steps", str(steps), "--save-steps", "10", "--set", "eval.at_end=false",
            "--output-dir", str(run), *(["--resume"] if any(run.glob("checkpoint-*")) else [])]
    print("  $ main_agent_lightning.py " + " ".join(args), flush=True)
    done = subprocess.run([sys.executable, str(ROOT / "main_agent_lightning.py"), *args], cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"GRPO stage failed ({done.returncode}); rerun to resume it")
    return adapter


def evaluate(out: Path, tasks: Path, adapter: Path | None) -> dict[str, Any]:
    return cached_eval(out, *AGENT, "--set", f"agent.tasks={tasks}", "--split", "test",
                       *(["--adapter", str(adapter)] if adapter else []))


def stage_metrics(run: Path) -> dict[str, float]:
    """Over the GRPO run's logged steps: their seconds, the mean share of groups without signal, and agent runs
    that failed (crashed, timed out, made no model call or reported no reward)."""
    seconds, flat, steps, failures = 0.0, 0.0, 0, 0.0
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "frac_reward_zero_std" in row:
            seconds += row.get("step_seconds", 0.0)
            flat += row["frac_reward_zero_std"]
            steps += 1
            failures += sum(row.get(f"agent/{k}", 0) for k in ("crashed", "timed_out", "no_calls", "no_reward"))
    return {"seconds": seconds, "flat": flat / max(steps, 1), "steps": steps, "failures": failures}


def table(pairs: list[tuple[str, dict[str, Any], dict[str, Any]]], stage: dict[str, float], command: str) -> str:
    from agent_lightning.stats import format_difference, paired_difference

    tiers = tiers_of(*(base for _, base, _ in pairs))
    rows = ["| held-out tasks | policy | success | after - before (paired, 95% interval) | " +
            " | ".join(f"tier {t}" for t in tiers) + " | tool calls per task |",
            "|---|---|---|---|" + "---|" * len(tiers) + "---|"]
    for label, base, trained in pairs:
        for name, r in (("base", base), (f"after GRPO ({stage['steps']} steps)", trained)):
            cells = tier_cells(r, tiers)
            diff = format_difference(paired_difference(task_successes(base), task_successes(r))) \
                if r is trained else ""
            rows.append(f"| {label} | {name} | {100 * r['success_rate']:.1f}% | {diff} | " + " | ".join(cells) +
                        f" | {r.get('mean_tool_calls', 0):.2f} |")
    return "\n".join(rows) + (
        f"\n\nGreedy, through the gateway, the agent's own reward. GRPO stage: {stage['seconds'] / 60:.1f} min "
        f"of steps on 2 CPU cores, {100 * stage['flat']:.0f}% of the groups without signal (mean over the rounds), "
        f"{stage['failures']:.0f} agent runs failed. Reproduce: `{command}`.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "agent-learning")
    parser.add_argument("--steps", type=int, default=40, help="GRPO optimizer steps (one round of 2 x 8 each).")
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--fresh-seed", type=int, default=1, help="make_tasks.py seed of the fresh draw.")
    parser.add_argument("--fresh-count", type=int, default=100)
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/results.md as it is.")
    args = parser.parse_args()
    command = f"{COMMAND} {' '.join(sys.argv[1:])}".strip()
    print(f"reproduce: {command}")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    shipped = EXAMPLE / "tasks.jsonl"
    fresh = fresh_tasks(args.fresh_seed, args.fresh_count, work / f"fresh-seed{args.fresh_seed}.jsonl")
    base = evaluate(work / "base-test.json", shipped, None)
    adapter = train(work, args.steps, args.learning_rate)
    trained = evaluate(work / "trained-test.json", shipped, adapter)
    base_fresh = evaluate(work / f"base-fresh{args.fresh_seed}.json", fresh, None)
    trained_fresh = evaluate(work / f"trained-fresh{args.fresh_seed}.json", fresh, adapter)
    body = table([("the example's test split", base, trained),
                  (f"fresh draw (seed {args.fresh_seed})", base_fresh, trained_fresh)],
                 stage_metrics(work / "grpo"), command)
    publish("agent-learning", body, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
