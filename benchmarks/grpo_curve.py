"""Held-out success against GRPO rollouts: every checkpoint of a GRPO run evaluated on the same tasks.

    .venv/bin/python benchmarks/grpo_curve.py RUN_DIR [--split dev] [--limit 100] [--start ADAPTER] [--steps 4,8,12]

RUN_DIR is a GRPO run (or a chain's grpo stage folder) that kept its checkpoints (`--save-steps 1` and a
`grpo.save_total_limit` large enough). The starting adapter (the run's `policy.init_adapter`, or `--start`) and each
`checkpoint-N` (and RUN_DIR/adapter, the last step) are evaluated greedily with `main_agent_lightning.py eval
--split SPLIT --limit N --json` under the run's own config.yaml, so every point uses the same tasks. Rollouts played
up to step N come from the run's metrics.jsonl (`sampling/rollouts`, or num_generations x the groups of a round when
signal-first is off).

Prints one row per point: optimizer step, rollouts played, success, and the paired difference from the start (95%
bootstrap interval, tasks won and lost, n); writes RUN_DIR/curve/<point>.json (reused when present, so an
interrupted curve continues), RUN_DIR/curve/curve.json and RUN_DIR/curve/curve.png.

Use `--split dev` (the default) to choose a recipe or a checkpoint; `--split test` only for the final number.
Not covered: sampling noise of a single greedy evaluation per point (one seed; rerun with --set env.seed=N).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _cached_eval import cached_eval  # noqa: E402
from agent_lightning.evaluate import task_successes  # noqa: E402


def checkpoints(run_dir: Path, last_step: int) -> list[tuple[int, Path]]:
    """(step, adapter folder) of each checkpoint-N, and RUN_DIR/adapter as the last logged step if no checkpoint
    holds that step."""
    found = []
    for folder in run_dir.glob("checkpoint-*"):
        suffix = folder.name.split("-", 1)[1]
        if suffix.isdigit() and (folder / "adapter_model.safetensors").is_file():
            found.append((int(suffix), folder))
    if (run_dir / "adapter" / "adapter_model.safetensors").is_file() and last_step not in {s for s, _ in found}:
        found.append((last_step, run_dir / "adapter"))
    return sorted(found)


def run_config(run_dir: Path) -> tuple[Path, dict[str, Any], Path | None]:
    """(config.yaml, its contents, starting adapter or None) of a GRPO run, or of a chain's grpo stage folder
    (`--algo sft+grpo` keeps one config.yaml in the chain's folder, and the stage starts from the chain's
    sft/adapter); a run starts from its `policy.init_adapter`."""
    import yaml

    chain = run_dir.parent
    if (run_dir / "config.yaml").is_file():
        path = run_dir / "config.yaml"
    elif (chain / "config.yaml").is_file():
        path = chain / "config.yaml"
    else:
        raise SystemExit(f"{run_dir}: no config.yaml here or in {chain} (expected a GRPO run or a chain's grpo "
                         "stage).")
    config = yaml.safe_load(path.read_text())
    if path.parent == chain:
        sft = chain / "sft" / "adapter"
        return path, config, sft if (sft / "adapter_config.json").is_file() else None
    init = config["policy"].get("init_adapter")
    return path, config, Path(init) if init else None


def rollouts_by_step(run_dir: Path, config: dict[str, Any]) -> dict[int, int]:
    """Cumulative rollouts played (sampled, kept or not) up to each logged optimizer step."""
    total, out = 0, {}
    grpo = config.get("grpo", {})
    per_round = int(grpo.get("steps_per_generation") or grpo.get("gradient_accumulation_steps") or 8)
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "step" not in row or "loss" not in row and "reward" not in row:
            continue
        total += int(row.get("sampling/rollouts") or per_round)
        out[int(row["step"])] = total
    return out


def evaluate(config: Path, adapter: Path | None, split: str, limit: int, out: Path) -> dict[str, Any]:
    return cached_eval(out, "--config", str(config), "--split", split, "--limit", str(limit),
                       *(["--adapter", str(adapter)] if adapter else []))


def plot(points: list[dict[str, Any]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    xs = [p["rollouts"] for p in points]
    ys = [100 * p["success"] for p in points]
    base = ys[0]
    lows = [base + 100 * (p["vs_start"]["low"] or 0) for p in points]
    highs = [base + 100 * (p["vs_start"]["high"] or 0) for p in points]
    ax.fill_between(xs, lows, highs, alpha=0.2, label="start + paired 95% interval")
    ax.plot(xs, ys, marker="o", label="held-out success")
    ax.axhline(base, color="grey", linestyle="--", linewidth=1, label="start")
    ax.set_xlabel("GRPO rollouts played")
    ax.set_ylabel("success (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--split", default="dev", choices=["dev", "test", "train"])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--start", type=Path, help="Starting adapter (default: the run's policy.init_adapter).")
    parser.add_argument("--steps", type=lambda text: {int(x) for x in text.split(",")},
                        help="Evaluate only these optimizer steps, e.g. 4,8,12 (default: every checkpoint).")
    args = parser.parse_args()
    from agent_lightning.stats import format_difference, paired_difference

    run_dir = args.run_dir
    config_path, config, start = run_config(run_dir)
    start = args.start or start
    out_dir = run_dir / "curve"
    out_dir.mkdir(exist_ok=True)
    steps = f" --steps {','.join(map(str, sorted(args.steps)))}" if args.steps else ""
    print(f"reproduce: .venv/bin/python benchmarks/grpo_curve.py {run_dir} --split {args.split} --limit {args.limit}"
          f"{steps}")
    played = rollouts_by_step(run_dir, config)
    first = evaluate(config_path, start, args.split, args.limit, out_dir / f"{args.split}-start.json")
    points = [{"step": 0, "rollouts": 0, "success": first["success_rate"], "report": str(out_dir / "start"),
               "vs_start": paired_difference(task_successes(first), task_successes(first))}]
    for step, folder in checkpoints(run_dir, max(played, default=0)):
        if args.steps and step not in args.steps:
            continue
        report = evaluate(config_path, folder, args.split, args.limit, out_dir / f"{args.split}-step{step}.json")
        points.append({"step": step, "rollouts": played.get(step, 0), "success": report["success_rate"],
                       "report": folder.name, "vs_start": paired_difference(task_successes(first), task_successes(report))})
    print(f"\n{run_dir}: {args.split} split, {first['n']} tasks, greedy")
    print(f"{'step':>5s} {'rollouts':>9s} {'success':>8s}  vs start (paired, 95% interval)")
    for p in points:
        print(f"{p['step']:5d} {p['rollouts']:9d} {100 * p['success']:7.1f}%  {format_difference(p['vs_start'])}")
    (out_dir / "curve.json").write_text(json.dumps({"split": args.split, "limit": args.limit, "points": points},
                                                   indent=1) + "\n")
    plot(points, out_dir / "curve.png", f"{run_dir.name}: {args.split} split, {first['n']} tasks")
    print(f"plot: {out_dir / 'curve.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
