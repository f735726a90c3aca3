"""Claim: GRPO's tool rollouts cost less per generated token with our cached multi-turn loop than with TRL's tool
loop, and so do whole GRPO steps.

    .venv/bin/python benchmarks/grpo_rollouts.py --adapter RUN_DIR/sft/adapter [--config configs/default.yaml]
                                                 [--steps 3] [--set key=value ...]

Runs the same GRPO stage twice from the same adapter, config and seed, `--steps` optimizer steps each:
  - trl:    `grpo.rollouts=trl`, TRL's `environment_factory` tool loop (each turn `generate`s on the whole
            conversation so far, through the unmerged LoRA layers; a reply may use the whole
            episode budget, as `grpo.max_turn_tokens` applies to the cached loop only);
  - cached: `grpo.rollouts=cached` (the default), rollouts.play_episodes as TRL's `rollout_func` (adapter merged,
            KV cache kept between turns, one batch for all rollouts of the step).
The two sample different episodes (different generation code, same distribution), so rollout cost is compared per
generated token: wall time inside the trainer's `_generate` (generation and tool calls; verification and rewards
come after it) divided by the policy's own tokens (TRL's `completions/mean_length` x rollouts). Also prints the
whole step time and mean reward of each. Use an adapter that makes tool calls (an SFT adapter). Not covered: GPUs
/ vLLM, batch sizes other than the config's, the variance between runs (one run each).
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


def run(mode: str, args: argparse.Namespace, out: Path) -> dict[str, float]:
    from trl import GRPOTrainer

    from agent_lightning.config import load_config
    from agent_lightning.train.pipeline import run_training

    cfg = load_config(args.config, [f"grpo.rollouts={mode}", f"grpo.max_steps={args.steps}", "eval.at_end=false",
                                    f"policy.init_adapter={args.adapter}", "grpo.save_steps=1000", *args.overrides])
    spent = {"rollouts": 0.0}
    original = GRPOTrainer._generate

    def timed(self, prompts):  # noqa: ANN001 - TRL's signature
        started = time.perf_counter()
        try:
            return original(self, prompts)
        finally:
            spent["rollouts"] += time.perf_counter() - started

    GRPOTrainer._generate = timed
    try:
        run_dir = run_training(cfg, "grpo", str(out / mode))
    finally:
        GRPOTrainer._generate = original
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "step_seconds" in r]
    rounds = [r for r in rows if "reward" in r]  # steps that sampled (grpo.steps_per_generation: not all do)
    rollouts = cfg.grpo.rollouts_per_round()
    generated = sum(r["completions/mean_length"] * rollouts for r in rounds)
    return {"steps": len(rows), "step_s": sum(r["step_seconds"] for r in rows), "rollout_s": spent["rollouts"],
            "generated": generated, "reward": sum(r["reward"] for r in rounds) / max(len(rounds), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", required=True, help="An adapter that makes tool calls, e.g. RUN_DIR/sft/adapter.")
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="grpo-rollouts-") as tmp:
        for mode in ("trl", "cached"):
            r = results[mode] = run(mode, args, Path(tmp))
            print(f"{mode:6s}  {r['steps']} steps  {r['step_s']:7.1f} s in steps  rollouts {r['rollout_s']:7.1f} s  "
                  f"{r['generated']:6.0f} generated tokens  {1000 * r['rollout_s'] / max(r['generated'], 1):6.1f} "
                  f"ms/token  mean reward {r['reward']:.3f}", flush=True)
    trl, cached = results["trl"], results["cached"]
    per_token = (trl["rollout_s"] / max(trl["generated"], 1)) / (cached["rollout_s"] / max(cached["generated"], 1))
    print(f"rollout cost per generated token, trl / cached: {per_token:.2f}x; "
          f"seconds per step, trl / cached: {trl['step_s'] / trl['steps'] / (cached['step_s'] / cached['steps']):.2f}x")
    print("reproduce: .venv/bin/python benchmarks/grpo_rollouts.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
