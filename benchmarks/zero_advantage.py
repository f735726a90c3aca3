"""Claim: skipping the forward/backward of zero-advantage micro-batches (`grpo.skip_zero_advantage`, the default)
makes a GRPO round from an SFT adapter faster and leaves the weights the same.

    .venv/bin/python benchmarks/zero_advantage.py --adapter RUN_DIR/sft/adapter [--config configs/default.yaml]
                                                  [--steps N] [--set key=value ...]

Runs the GRPO stage of the config (`--algo grpo`, from `--adapter`, `--steps` optimizer steps, default the
config's `grpo.max_steps`, no evaluation)
twice, each in a fresh process, with the skip on and off: the same seed, so the same rollouts. Prints each run's
training time, the share of micro-batches skipped, the groups that scored all alike (TRL's
`frac_reward_zero_std`), the time ratio, and the largest difference between the two adapters' weights. The
saving is the forward/backward pass of every rollout in a flat group (one rollout per micro-batch on the embedded
default), so it grows with the share of flat groups: right after SFT most groups are all-success or all-failure.
Not covered: the sampling and the old-log-probability pass, which both runs do in full.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def grpo_run(config: str, overrides: list[str], adapter: str, steps: int | None, skip: bool, out: Path) -> dict:
    """One GRPO stage through the CLI: its training seconds, skipped share, flat-group share and adapter weights."""
    from safetensors.torch import load_file

    command = [sys.executable, str(REPO / "main_agent_lightning.py"), "--algo", "grpo", "--config", config,
               "--set", f"policy.init_adapter={adapter}", "--set", "eval.at_end=false",
               "--set", f"grpo.skip_zero_advantage={str(skip).lower()}", "--output-dir", str(out)]
    command += ["--max-steps", str(steps)] if steps else []
    command += [arg for item in overrides for arg in ("--set", item)]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"GRPO run failed ({shlex.join(command)}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]

    def mean(key: str) -> float | None:
        values = [m[key] for m in metrics if key in m]
        return statistics.mean(values) if values else None

    return {"seconds": summary["train_runtime_seconds"], "skipped": mean("skipped_zero_advantage"),
            "flat": mean("frac_reward_zero_std"), "reward": mean("reward"),
            "weights": load_file(out / "adapter" / "adapter_model.safetensors")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", required=True, help="an SFT adapter to start GRPO from (RUN_DIR/sft/adapter)")
    parser.add_argument("--config", default=str(REPO / "configs" / "default.yaml"))
    parser.add_argument("--steps", type=int, help="optimizer steps (default: the config's grpo.max_steps)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        on = grpo_run(args.config, args.set, args.adapter, args.steps, True, Path(tmp) / "skip")
        off = grpo_run(args.config, args.set, args.adapter, args.steps, False, Path(tmp) / "full")
    diff = max((on["weights"][k] - w).abs().max().item() for k, w in off["weights"].items())
    print(f"{'':<24}{'training':>10}{'skipped':>10}{'flat groups':>13}{'mean reward':>13}")
    for label, run in (("skip_zero_advantage on", on), ("skip_zero_advantage off", off)):
        skipped = "-" if run["skipped"] is None else f"{run['skipped']:.0%}"
        print(f"{label:<24}{run['seconds']:>9.0f}s{skipped:>10}{run['flat']:>13.0%}{run['reward']:>13.3f}")
    print(f"speed-up: {off['seconds'] / on['seconds']:.2f}x; largest adapter weight difference: {diff:.2e}")
    print("reproduce: .venv/bin/python benchmarks/zero_advantage.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
