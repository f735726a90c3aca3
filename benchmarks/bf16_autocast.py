"""Claim: on a CPU with bf16 in hardware, SFT steps under bf16 autocast run ~1.3x faster and learn the same.

    .venv/bin/python benchmarks/bf16_autocast.py [--config configs/default.yaml] [--steps 30] [--set key=value ...]

Runs the same SFT stage twice from the same config and seed, side by side in one process: `policy.autocast=none`
(float32 throughout) and `policy.autocast=bf16` (forward and backward under torch autocast over float32 weights;
train/trainer_args.py). Same demonstrations, same order, `--steps` optimizer steps each, no end-of-stage
evaluation. Prints, per mode: the Trainer's train runtime, seconds per step, the mean training loss over the
steps, the held-out loss at the end (the stage's eval split of demonstrations), and the ratio of the runtimes.
Also prints whether this CPU has bf16 in hardware (`auto` picks bf16 only then): on a CPU without it, bf16 is
emulated and this script shows the slowdown that `auto` avoids.
Not measured: GRPO (its training forward and backward are the same passes as SFT's; its sampling runs under
autocast too, through accelerate's wrapped forward, and is not timed here), held-out task success (a full SFT
stage each: `benchmarks/learning.py` with `--set policy.autocast=...`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

COMMAND = ".venv/bin/python benchmarks/bf16_autocast.py"


def run(mode: str, args: argparse.Namespace, out: Path) -> dict[str, float]:
    from agent_lightning.config import load_config
    from agent_lightning.train.pipeline import run_training

    cfg = load_config(args.config, [f"policy.autocast={mode}", f"sft.max_steps={args.steps}",
                                    f"sft.save_steps={args.steps}", "eval.at_end=false", *args.set])
    run_dir = run_training(cfg, "sft", str(out / mode))
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    return {"runtime": summary["train_runtime_seconds"], "per_step": summary["train_runtime_seconds"] / args.steps,
            "loss": sum(losses) / len(losses), "eval_loss": summary.get("eval_loss_last") or float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    from agent_lightning.train.trainer_args import cpu_has_native_bf16

    out = Path(tempfile.mkdtemp(prefix="bf16-autocast-"))
    started = time.strftime("%Y-%m-%d")
    results = {mode: run(mode, args, out) for mode in ("none", "bf16")}
    print(f"\nSFT, {args.steps} steps each, {Path(args.config).name}; this CPU has bf16 in hardware: "
          f"{cpu_has_native_bf16()}")
    print("| policy.autocast | train runtime | s / step | mean train loss | held-out loss at the end |")
    print("|---|---|---|---|---|")
    for mode, r in results.items():
        print(f"| {mode} | {r['runtime']:.0f} s | {r['per_step']:.2f} | {r['loss']:.4f} | {r['eval_loss']:.4f} |")
    ratio = results["none"]["runtime"] / results["bf16"]["runtime"]
    print(f"\nbf16 autocast vs float32: {ratio:.2f}x the speed. {started}, reproduce: "
          f"`{' '.join([COMMAND, *sys.argv[1:]])}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
