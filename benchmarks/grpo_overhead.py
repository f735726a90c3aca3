"""Claim: our GRPO wrapper costs at most 5% step time over a bare `trl.GRPOTrainer` (target ratio <= 1.05).

    .venv/bin/python benchmarks/grpo_overhead.py [--policy tiny-mistral|smollm2] [--steps 12] [--rounds 2]

Runs the same model, data, reward and settings twice per round, each in a fresh process (ours, then bare,
alternating order each round): ours is `run_training` (reward suite with verified outcomes, metrics.jsonl,
progress bar, summary, plot); bare is `GRPOTrainer` with an equivalent plain reward function. A step is the wall
time between successive `on_step_begin` calls (so logging and callbacks count); the first 2 steps are warm-up.
Prints the median step time of each, their ratio, each process's peak RSS by the end of training (before the
final save, which only ours does), and the mean completion length
(equal lengths mean both sides sampled the same work).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WARMUP = 2


def step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.marks: list[float] = []
            self.lengths: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.marks.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "completions/mean_length" in logs:
                self.lengths.append(logs["completions/mean_length"])

        def on_train_end(self, args, state, control, **kwargs):
            self.marks.append(time.perf_counter())
            self.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        def steps(self) -> list[float]:
            return [b - a for a, b in zip(self.marks, self.marks[1:])]

    return StepTimer()


def config(policy: str, steps: int):
    from agent_lightning.config import load_config

    return load_config(REPO / "configs" / ("tiny.yaml" if policy == "tiny-mistral" else "arithmetic.yaml"), [
        f"policy.source={policy}", f"grpo.max_steps={steps}", f"grpo.save_steps={steps * 10}",
        "grpo.report_to=[none]", "grpo.skip_zero_advantage=false",  # the same passes as the bare trainer
    ])


def child(mode: str, policy: str, steps: int, out_dir: str) -> dict:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from transformers import set_seed

    cfg = config(policy, steps)
    timer = step_timer()
    if mode == "ours":
        from agent_lightning.train.pipeline import run_training

        run_training(cfg, "grpo", output_dir=out_dir, callbacks=[timer])
    else:
        from trl import GRPOTrainer

        from agent_lightning.policy import load_policy
        from agent_lightning.registry import discover
        from agent_lightning.envs import environment_class
        from agent_lightning.train.grpo import grpo_args, task_dataset

        discover()
        env_cls = environment_class(cfg)

        def exact_answer(completions, answer, **kwargs):  # a plain TRL reward: the env's verifier, no suite
            scores = []
            for completion, expected in zip(completions, answer):
                env = env_cls()
                env.reset(answer=expected)
                scores.append(float(env._finish(completion[0]["content"]).success))
            return scores

        set_seed(cfg.run.seed)
        model, tokenizer = load_policy(cfg.policy)
        args = grpo_args(cfg, Path(out_dir))
        trainer = GRPOTrainer(model=model, reward_funcs=[exact_answer], args=args,
                              train_dataset=task_dataset(env_cls, cfg, "train"), processing_class=tokenizer,
                              callbacks=[timer])
        trainer.train()
    return {"mode": mode, "steps": timer.steps(), "lengths": timer.lengths, "peak_rss_mb": timer.peak_rss_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="tiny-mistral", choices=["tiny-mistral", "smollm2"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["ours", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.policy, args.steps, args.out)))
        return
    results: dict[str, list[dict]] = {"ours": [], "bare": []}
    for round_index in range(args.rounds):
        order = ("ours", "bare") if round_index % 2 == 0 else ("bare", "ours")
        for mode in order:
            with tempfile.TemporaryDirectory() as out:
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", mode, "--policy", args.policy, "--steps", str(args.steps),
                     "--out", str(Path(out) / "run")], capture_output=True, text=True, cwd=REPO)
            line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
            if proc.returncode or line is None:
                sys.exit(f"{mode} run failed:\n{proc.stderr[-3000:]}")
            results[mode].append(json.loads(line[len("RESULT "):]))
            print(f"round {round_index + 1} {mode}: median step {statistics.median(results[mode][-1]['steps'][WARMUP:]):.3f} s",
                  flush=True)
    median = {m: statistics.median([s for r in rs for s in r["steps"][WARMUP:]]) for m, rs in results.items()}
    rss = {m: max(r["peak_rss_mb"] for r in rs) for m, rs in results.items()}
    print()
    print(f"policy {args.policy}, {args.steps} steps x {args.rounds} rounds per side (first {WARMUP} steps warm-up)")
    length = {m: statistics.mean([x for r in rs for x in r["lengths"]]) for m, rs in results.items()}
    print(f"{'':6s} {'median step (s)':>16s} {'peak RSS (MB)':>14s} {'mean completion tokens':>23s}")
    for m in ("ours", "bare"):
        print(f"{m:6s} {median[m]:16.3f} {rss[m]:14.0f} {length[m]:23.2f}")
    paired = [statistics.median(o["steps"][WARMUP:]) / statistics.median(b["steps"][WARMUP:])
              for o, b in zip(results["ours"], results["bare"])]
    print(f"step-time ratio ours/bare: {median['ours'] / median['bare']:.3f} pooled; per round "
          f"{', '.join(f'{r:.3f}' for r in paired)} (target <= 1.05)")
    print(f"reproduce: .venv/bin/python benchmarks/grpo_overhead.py --policy {args.policy} --steps {args.steps} "
          f"--rounds {args.rounds}")


if __name__ == "__main__":
    main()
