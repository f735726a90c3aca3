"""Claim: on a CPU, sampling GRPO's tool rollouts 32 at a time costs much less per rollout than 8 at a time, which
is why the embedded default plays one round of 4 tasks x 8 rollouts (`grpo.steps_per_generation: 32`).

    .venv/bin/python benchmarks/rollout_rows.py --adapter RUN_DIR/sft/adapter [--config configs/default.yaml]
                                                [--tasks 4] [--group 8] [--small 8]

The same rollouts (`--tasks` test tasks, each `--group` times, as GRPO samples them) are played by GRPO's own
rollout function (rollout/trl_rollout.py: adapter merged, `grpo.temperature` / `grpo.top_p`,
`grpo.max_turn_tokens`, `grpo.max_completion_length`, `env.max_turns`) twice: in batches of `--small` rows, and
all in one batch. Prints the wall time of each, seconds per rollout and per generated token, and the ratio.
Decoding a small model on a CPU reads every weight once per generated token whatever the batch, so rows are
cheap until compute catches up. The samples differ between the two arrangements (one generator, consumed in a
different order), so compare per generated token as well as per rollout. Not covered: the policy-gradient pass
(its cost grows with the rollouts whatever the batching), GPUs.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def play(setup, tasks: list[dict], batch: int) -> tuple[float, int, int]:
    """Seconds, generated tokens and successes of playing `tasks` `batch` rows at a time, through GRPO's own
    rollout function (its sampling generator seeded by `run.seed`, as in training)."""
    from agent_lightning.rollout.trl_rollout import CachedRollouts

    rollouts = CachedRollouts(setup.cfg, setup.env_cls, setup.system)
    started, generated, successes = time.perf_counter(), 0, 0
    for start in range(0, len(tasks), batch):
        episodes = rollouts.play(setup.model, setup.tokenizer, tasks[start:start + batch])
        generated += sum(sum(e.generated_mask) for e in episodes)
        for e in episodes:
            e.env._finish_episode(e.messages)
            successes += bool(e.env.outcome.success)
    return time.perf_counter() - started, generated, successes


def main() -> int:
    import argparse

    from _eval_setup import load_eval_setup

    extra = argparse.ArgumentParser(add_help=False)
    for flag, default in (("--tasks", 4), ("--group", 8), ("--small", 8)):
        extra.add_argument(flag, type=int, default=default)
    own, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    setup = load_eval_setup(__doc__.splitlines()[0], default_limit=own.tasks)
    tasks = [t for t in setup.tasks[: own.tasks] for _ in range(own.group)]
    results = {}
    for label, batch in ((f"{own.small} rows", own.small), (f"{len(tasks)} rows", len(tasks))):
        seconds, generated, successes = results[label] = play(setup, tasks, batch)
        print(f"{label:8s}  {seconds:7.1f} s  {seconds / len(tasks):5.2f} s/rollout  "
              f"{1000 * seconds / max(generated, 1):6.1f} ms/generated token  ({generated} tokens, "
              f"{successes}/{len(tasks)} verified)", flush=True)
    (small_s, small_n, _), (big_s, big_n, _) = results.values()
    print(f"seconds per rollout, {own.small} rows / {len(tasks)} rows: {small_s / big_s:.2f}x; "
          f"per generated token: {(small_s / max(small_n, 1)) / (big_s / max(big_n, 1)):.2f}x")
    print("reproduce: .venv/bin/python benchmarks/rollout_rows.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]
                                                                               + [f"--tasks={own.tasks}",
                                                                                  f"--group={own.group}",
                                                                                  f"--small={own.small}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
