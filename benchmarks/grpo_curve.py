"""Held-out success against GRPO rollouts: every checkpoint of a GRPO run evaluated on the same tasks.

    .venv/bin/python benchmarks/grpo_curve.py RUN_DIR [--split dev] [--limit 100] [--start ADAPTER] [--steps 4,8,12]
        [--dev-size 300 --tiers 1,2] [--against OTHER_RUN_DIR]

RUN_DIR is a GRPO run (or a chain's grpo stage folder) that kept its checkpoints (`--save-steps 1` and a
`grpo.save_total_limit` large enough). The starting adapter (the run's `policy.init_adapter`, or `--start`) and each
`checkpoint-N` (and RUN_DIR/adapter, the last step) are evaluated greedily with `main_agent_lightning.py eval
--split SPLIT --limit N --json` under the run's own config.yaml, so every point uses the same tasks. Rollouts played
up to step N come from the run's metrics.jsonl (`sampling/rollouts`, or num_generations x the groups of a round when
signal-first is off).

Prints one row per point: optimizer step, rollouts played, success, and the paired difference from the start (95%
bootstrap interval, tasks won and lost, n), then each task template's successes at every point (where the points
come from, when the tasks have templates); writes RUN_DIR/curve/<point>.json (reused when present, so an
interrupted curve continues), RUN_DIR/curve/curve.json and RUN_DIR/curve/curve.png (with `--dev-size`, `--tiers`
or another `--limit`, each file's name starts with the selection, e.g. curve/dev-own300-tiers12-limit1000-step4.json).

`--dev-source train` evaluates on the earlier dev split, unused training tasks (names as before: dev-step4.json);
the default, the environment's own dev split where it has one (filesystem: words of its own), is cached as
dev-own-step4.json (and dev-own-curve.json).
`--dev-size N` widens the dev split (`env.dev_size`; its first 100 tasks stay the usual ones) and `--tiers 1,2` keeps
only those tiers' tasks (`eval --tiers`): a tier no adapter solves adds evaluation time and no pairs that differ.
`--against OTHER_RUN_DIR` also prints, at each step both runs evaluated with the same options, this run minus the
other, paired task by task (two recipes from one start, compared without re-evaluating either).

Use `--split dev` (the default) to choose a recipe or a checkpoint; `--split test` only for the final number.
Not covered: sampling noise of a single greedy evaluation per point (one seed; rerun with --set env.seed=N).
"""

from __future__ import annotations

import argparse
import json
import shlex
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


def evaluate(config: Path, adapter: Path | None, split: str, limit: int, out: Path,
             extra: list[str]) -> dict[str, Any]:
    return cached_eval(out, "--config", str(config), "--split", split, "--limit", str(limit), *extra,
                       *(["--adapter", str(adapter)] if adapter else []))


def own_dev_split(config: Path, dev_source: str) -> bool:
    """Whether `eval --split dev` under `config` with `env.dev_source` set so plays the environment's own dev split."""
    from agent_lightning.config import load_config
    from agent_lightning.envs import environment_class
    from agent_lightning.evaluate import dev_source as effective_dev_source
    from agent_lightning.registry import discover

    discover()
    cfg = load_config(str(config), [f"env.dev_source={dev_source}"])
    return effective_dev_source(environment_class(cfg), cfg) == "held_out"


def selection(args: argparse.Namespace, own_dev: bool = False) -> tuple[str, list[str]]:
    """The cached reports' name prefix and the extra `eval` arguments of the task selection asked for: one prefix
    per selection, so reports of different task sets never mix. The dev split of unused training tasks keeps the
    names it had (`dev-step4.json`); the environment's own dev split (`own_dev`: `env.dev_source: held_out`, the
    default, in an environment that has one) is `dev-own-step4.json`."""
    prefix, extra = args.split, []
    if args.split == "dev":
        extra += ["--set", f"env.dev_source={args.dev_source}"]
        prefix += "-own" if own_dev else ""
    if args.dev_size:
        prefix += str(args.dev_size)
        extra += ["--set", f"env.dev_size={args.dev_size}"]
    if args.tiers:
        prefix += f"-tiers{args.tiers.replace(',', '')}"
        extra += ["--tiers", args.tiers]
    if args.limit != 100:
        prefix += f"-limit{args.limit}"
    return prefix, extra


def template_table(reports: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Lines of a table: one row per task template, one column per (label, eval report): successes of n ([] when
    the reports have no templates)."""
    templates = sorted({t for _, report in reports for t in report.get("by_template") or {}})
    if not templates:
        return []
    width = max(len(t) for t in templates)
    lines = [f"{'template':{width}s} " + " ".join(f"{label:>8s}" for label, _ in reports)]
    for template in templates:
        cells = []
        for _, report in reports:
            row = (report.get("by_template") or {}).get(template)
            cells.append(f"{round(row['success_rate'] * row['n']):d}/{row['n']}" if row else "")
        lines.append(f"{template:{width}s} " + " ".join(f"{cell:>8s}" for cell in cells))
    return lines


def plot(points: list[dict[str, Any]], out: Path, title: str, name: str,
         other: tuple[str, list[dict[str, Any]]] | None = None) -> None:
    """Success of run `name` against rollouts played, with the start's paired interval; `other` (a run's name and
    its curve's points, from `--against`) is drawn beside it."""
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
    ax.plot(xs, ys, marker="o", label=f"held-out success ({name})" if other else "held-out success")
    if other:
        ax.plot([p["rollouts"] for p in other[1]], [100 * p["success"] for p in other[1]], marker="s",
                linestyle="--", label=f"held-out success ({other[0]})")
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
    parser.add_argument("--dev-size", type=int, help="Tasks of the dev split (env.dev_size; default: the config's).")
    parser.add_argument("--tiers", help="Only the split's tasks of these tiers, e.g. 1,2 (eval --tiers).")
    parser.add_argument("--dev-source", choices=["held_out", "train"], default="held_out",
                        help="env.dev_source: the environment's own dev split (default) or unused training tasks "
                             "(the dev split of results measured before 2026-12-07).")
    parser.add_argument("--against", type=Path, metavar="OTHER_RUN_DIR",
                        help="Another GRPO run from the same start: print this run minus it at the steps both have.")
    args = parser.parse_args()
    if args.dev_size and args.split != "dev":
        parser.error(f"--dev-size sizes the dev split; drop it or use --split dev (not --split {args.split})")
    from agent_lightning.stats import format_difference, paired_difference

    run_dir = args.run_dir
    config_path, config, start = run_config(run_dir)
    start = args.start or start
    out_dir = run_dir / "curve"
    out_dir.mkdir(exist_ok=True)
    prefix, extra = selection(args, args.split == "dev" and own_dev_split(config_path, args.dev_source))
    print(f"reproduce: .venv/bin/python benchmarks/grpo_curve.py {shlex.join(sys.argv[1:])}")
    played = rollouts_by_step(run_dir, config)
    first = evaluate(config_path, start, args.split, args.limit, out_dir / f"{prefix}-start.json", extra)
    points = [{"step": 0, "rollouts": 0, "success": first["success_rate"], "report": str(out_dir / "start"),
               "vs_start": paired_difference(task_successes(first), task_successes(first))}]
    reports = [("start", first)]
    for step, folder in checkpoints(run_dir, max(played, default=0)):
        if args.steps and step not in args.steps:
            continue
        report = evaluate(config_path, folder, args.split, args.limit, out_dir / f"{prefix}-step{step}.json", extra)
        reports.append((f"step {step}", report))
        points.append({"step": step, "rollouts": played.get(step, 0), "success": report["success_rate"],
                       "report": folder.name,
                       "vs_start": paired_difference(task_successes(first), task_successes(report))})
        other_report = args.against / "curve" / f"{prefix}-step{step}.json" if args.against else None
        if other_report is not None and other_report.is_file():
            other = json.loads(other_report.read_text())
            points[-1]["vs_against"] = paired_difference(task_successes(other), task_successes(report))
    print(f"\n{run_dir}: {args.split} split, {first['n']} tasks, greedy")
    print(f"{'step':>5s} {'rollouts':>9s} {'success':>8s}  vs start (paired, 95% interval)")
    for p in points:
        print(f"{p['step']:5d} {p['rollouts']:9d} {100 * p['success']:7.1f}%  {format_difference(p['vs_start'])}")
    table = template_table(reports)
    if table:
        print("\nsuccesses by task template:")
        print("\n".join(table))
    compared = [p for p in points if "vs_against" in p]
    if compared:
        print(f"\n{run_dir} minus {args.against} (paired, 95% interval), at the steps both evaluated:")
        for p in compared:
            print(f"{p['step']:5d}  {format_difference(p['vs_against'])}")
    elif args.against:
        print(f"\n{args.against}: no report of these steps with these options (run grpo_curve.py on it first)")
    stem = "curve" if prefix == args.split else f"{prefix}-curve"  # the old dev split's default keeps its names
    (out_dir / f"{stem}.json").write_text(
        json.dumps({"split": args.split, "limit": args.limit, "eval_args": extra, "points": points}, indent=1) + "\n")
    other_curve = args.against / "curve" / f"{stem}.json" if args.against else None
    other = (str(args.against), json.loads(other_curve.read_text())["points"]) \
        if other_curve and other_curve.is_file() else None
    plot(points, out_dir / f"{stem}.png", f"{run_dir.name}: {args.split} split, {first['n']} tasks", str(run_dir),
         other)
    print(f"plot: {out_dir / f'{stem}.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
