"""Claim: signal-first sampling fills GRPO rounds with groups that teach, for more signal per minute.

    .venv/bin/python benchmarks/signal_first.py --adapter RUN_DIR/sft/adapter [--config configs/default.yaml]
                                                [--steps 4] [--set key=value ...]
    .venv/bin/python benchmarks/signal_first.py --from-runs OFF_RUN_DIR ON_RUN_DIR     # two finished GRPO stages

Runs the same GRPO stage twice from the same adapter, config and seed (end-of-stage evaluation off), side by side:
  - off: `grpo.signal_first=false`, the groups TRL's sampler draws are trained on as they come;
  - on:  `grpo.signal_first=true`, tasks predicted flat are skipped and flat groups replaced
         (rollout/signal_first.py).
For each it reads the rollouts the stage trained on (RUN_DIR/traces: one line per rollout with its task and total
reward) and prints: groups trained on, the share of them whose rewards differ (signal), rollouts played
(`sampling/rollouts`, or the trained ones when off), the stage's wall time, and rollouts with signal per minute of
the stage. Targets: >= 80% of trained groups with signal, >= 3x the signal rollouts per minute of `off`.
Not covered: whether the policy learns more from them (benchmarks/learning.py measures held-out success), and
the variance between runs (one run each). Writes the table into docs/results.md (block `signal-first`) unless
--no-write.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _results import replace_block  # noqa: E402


def run(signal_first: bool, args: argparse.Namespace, out: Path) -> dict[str, float]:
    from agent_lightning.config import load_config
    from agent_lightning.train.pipeline import run_training

    cfg = load_config(args.config, [f"grpo.signal_first={str(signal_first).lower()}", f"grpo.max_steps={args.steps}",
                                    "eval.at_end=false", f"policy.init_adapter={args.adapter}", *args.set])
    run_dir = run_training(cfg, "grpo", str(out / ("on" if signal_first else "off")))
    return measure(run_dir, cfg.grpo.num_generations)


def measure(run_dir: Path, size: int) -> dict[str, float]:
    """Groups trained on, their share with signal, rollouts played, stage minutes and signal rollouts per minute of
    one finished GRPO stage's run directory."""
    groups = []
    for path in sorted((run_dir / "traces").glob("step-*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        groups += [rows[i:i + size] for i in range(0, len(rows), size)]
    seen, trained = set(), []
    for group in groups:  # a round feeds several optimizer steps: count each group once
        key = (group[0]["task_id"], tuple(r["reward"] for r in group))
        if key not in seen:
            seen.add(key)
            trained.append(group)
    signal = [g for g in trained if len({round(r["reward"], 9) for r in g}) > 1]
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    played = sum(m.get("sampling/rollouts", 0) for m in metrics) or sum(len(g) for g in trained)
    summary = json.loads((run_dir / "summary.json").read_text())
    minutes = summary["wall_seconds"] / 60
    return {"groups": len(trained), "signal_share": len(signal) / max(len(trained), 1), "played": played,
            "minutes": minutes, "signal_per_minute": sum(len(g) for g in signal) / minutes,
            "eval": summary.get("eval")}  # the stage's held-out evaluation, when it ran one


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", help="An adapter that makes tool calls, e.g. RUN_DIR/sft/adapter.")
    parser.add_argument("--from-runs", nargs=2, metavar=("OFF_RUN_DIR", "ON_RUN_DIR"),
                        help="Measure two finished GRPO stages (same adapter and seed, signal_first off and on) "
                             "instead of training them here.")
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--steps", type=int, default=4, help="GRPO optimizer steps of each run (default 4).")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", help="Keep both run directories here.")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/results.md alone.")
    parser.add_argument("--results", default=str(ROOT / "docs" / "results.md"), help="File whose block is replaced.")
    args = parser.parse_args()
    if args.from_runs:
        import yaml

        off_dir, on_dir = map(Path, args.from_runs)
        config = next(p for p in (on_dir / "config.yaml", on_dir.parent / "config.yaml") if p.is_file())  # a chain's stage
        size = yaml.safe_load(config.read_text())["grpo"]["num_generations"]
        off, on = measure(off_dir, size), measure(on_dir, size)
    elif not args.adapter:
        parser.error("give --adapter (train both stages here) or --from-runs OFF ON")
    else:
        with tempfile.TemporaryDirectory(prefix="signal-first-") as tmp:
            out = Path(args.keep or tmp)
            off, on = run(False, args, out), run(True, args, out)
    ratio = on["signal_per_minute"] / off["signal_per_minute"] if off["signal_per_minute"] else float("inf")
    command = ".venv/bin/python benchmarks/signal_first.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = ["| grpo.signal_first | groups trained | with signal | rollouts played | stage minutes | "
             "signal rollouts / min |", "|---|---|---|---|---|---|"]
    for name, r in (("off", off), ("on", on)):
        lines.append(f"| {name} | {r['groups']} | {r['signal_share']:.0%} | {int(r['played'])} | {r['minutes']:.1f} | "
                     f"{r['signal_per_minute']:.1f} |")
    held_out = ""
    if off["eval"] and on["eval"]:
        from agent_lightning.evaluate import task_successes
        from agent_lightning.stats import format_difference, paired_difference

        diff = paired_difference(task_successes(off["eval"]), task_successes(on["eval"]))
        held_out = (f" Held-out success after the stage: off {off['eval']['success_rate']:.1%}, on "
                    f"{on['eval']['success_rate']:.1%}; on - off {format_difference(diff)}.")
    table = "\n".join(lines) + (f"\n\nSignal rollouts per minute, on / off: {ratio:.2f}x (targets: >= 80% of "
                                 f"groups with signal, >= 3x).{held_out} {time.strftime('%Y-%m-%d')}, reproduce: "
                                 f"`{command}`.")
    print("\n" + table)
    if not args.no_write and replace_block(Path(args.results), "signal-first", table):
        print(f"table written to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
