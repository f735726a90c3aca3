"""Claim: APO (prompt optimization, no weight update) raises held-out success, measured on the same test tasks.

    .venv/bin/python benchmarks/apo.py                                   # arithmetic from the base policy (~4 min)
    .venv/bin/python benchmarks/apo.py --config default --set policy.init_adapter=RUN_DIR/sft/adapter \\
        --set apo.rounds=2 --set apo.dev_tasks=40 ...                    # filesystem from an SFT adapter
    .venv/bin/python benchmarks/apo.py --from-run RUN_DIR                # a finished `--algo apo` run

Runs `--algo apo` (train/apo.py: the search on dev tasks, then the starting and the optimized prompt on the same
test tasks), then evaluates both prompts again on a fresh draw of the test generator (`env.seed` + 1) that nothing
was chosen on. Prints one row per draw: starting prompt, optimized prompt, the paired difference with its 95%
interval and number of tasks, the search's wall time and episodes, and what the winning prompt is. Writes the
table into docs/results.md (block `apo-<env>`, where the file has one) unless --no-write.
Not covered: run-to-run variance of the search (one run), the critic (apo.critic) path.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _results import replace_block  # noqa: E402


def fresh_draw(cfg, prompt: Path, seed: int) -> dict:
    """(starting prompt report, optimized prompt report, paired difference) on test tasks of `env.seed` = seed."""
    from agent_lightning.evaluate import evaluate, load_for_eval, task_successes
    from agent_lightning.stats import paired_difference

    cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, seed=seed))
    model, tokenizer = load_for_eval(cfg, cfg.policy.init_adapter)
    limit = cfg.eval.limit or None
    before = evaluate(cfg, "test", limit=limit, model=model, tokenizer=tokenizer, adapter=cfg.policy.init_adapter)
    with_prompt = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, prompt=str(prompt)))
    after = evaluate(with_prompt, "test", limit=limit, model=model, tokenizer=tokenizer,
                     adapter=cfg.policy.init_adapter)
    return {"before": before, "after": after,
            "paired": paired_difference(task_successes(before), task_successes(after))}


def describe(prompt_path: Path) -> str:
    from agent_lightning.chat.prompt import Prompt

    prompt = Prompt.load(prompt_path)
    text = prompt.instructions if prompt.instructions is not None else "(the environment's own)"
    return f"instructions \"{text}\", {len(prompt.demonstrations)} demonstration(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="arithmetic")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--from-run", type=Path, help="a finished `--algo apo` run directory")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from agent_lightning.config import load_config
    from agent_lightning.stats import format_difference

    if args.from_run:
        run_dir = args.from_run
        cfg = load_config(str(run_dir / "config.yaml"))
        recipe = cfg.run.name if (ROOT / "configs" / f"{cfg.run.name}.yaml").is_file() else "CONFIG"
        command = f".venv/bin/python benchmarks/apo.py --config {recipe}"  # what makes such a run on a fresh machine
    else:
        from agent_lightning.train.pipeline import run_training

        cfg = load_config(args.config, ["eval.limit=0", *args.set])
        run_dir = ROOT / "runs" / f"apo-bench-{cfg.env.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_training(cfg, "apo", str(run_dir))
        command = " ".join([".venv/bin/python benchmarks/apo.py", "--config", args.config,
                            *(f"--set {shlex.quote(s)}" for s in args.set)])
    summary = json.loads((run_dir / "summary.json").read_text())
    draws = [(cfg.env.seed, summary["eval_start"], summary["eval"], summary["paired"])]
    fresh = fresh_draw(cfg, run_dir / "prompt.yaml", cfg.env.seed + 1)
    draws.append((cfg.env.seed + 1, fresh["before"], fresh["after"], fresh["paired"]))

    start = "base policy" if not cfg.policy.init_adapter else f"adapter {cfg.policy.init_adapter}"
    lines = [f"| {cfg.env.name} test tasks (env.seed) | starting prompt | optimized prompt | optimized - starting "
             "(paired, 95% interval) |", "|---|---|---|---|"]
    for seed, before, after, paired in draws:
        lines.append(f"| seed {seed}{' (fresh draw)' if seed != cfg.env.seed else ''} | {before['success_rate']:.1%} | "
                     f"{after['success_rate']:.1%} | {format_difference(paired)} |")
    body = "\n".join(lines) + (
        f"\n\nFrom the {start}, no weight update. The search: {summary['steps']} rounds (round 0 included), "
        f"{summary['candidates']} candidates, {summary['episodes_played']} dev episodes, "
        f"{summary['wall_seconds'] / 60:.1f} min; best dev score {summary['dev_score']:.1%} against "
        f"{summary['start_dev_score']:.1%} for the starting prompt on {summary['dev_tasks']} dev tasks. Winner: "
        f"{describe(run_dir / 'prompt.yaml')}. {time.strftime('%Y-%m-%d')}, reproduce: `{command}`.")
    print(body)
    if not args.no_write:
        replace_block(ROOT / "docs" / "results.md", f"apo-{cfg.env.name}", body)


if __name__ == "__main__":
    main()
