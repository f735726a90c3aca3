"""Claim: on a CPU, one decode step of the embedded policy costs far less per row in a wide batch, which is why
signal-first sampling plays wide passes (`grpo.signal_pass_groups`: 8 groups = 64 rows per pass).

    .venv/bin/python benchmarks/decode_rows.py [--adapter RUN_DIR/sft/adapter] [--rows 8 32 64 96]
                                               [--cache 100] [--steps 15]

For each batch width, one process: a random `--cache`-token prefix per row (prefilled, not timed), then
`--steps` greedy decode steps of the merged policy (adapter folded in, as rollouts run), timed. Prints the
milliseconds per step and per row, and each width's step cost relative to the narrowest. A narrow replacement
pass (one or two groups) pays nearly a full pass's decode steps for a fraction of its rows. Not covered: the
prefill of prompts and tool results (linear in rows), the turn-synchronous wait for a batch's longest reply
(benchmarks/rollout_rows.py plays whole rollouts), GPUs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def step_seconds(model, rows: int, cache: int, steps: int) -> float:
    import torch

    with torch.no_grad():
        ids = torch.randint(100, 5000, (rows, cache), generator=torch.Generator().manual_seed(rows))
        out = model(input_ids=ids, use_cache=True)
        past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        started = time.perf_counter()
        for _ in range(steps):
            out = model(input_ids=token, past_key_values=past, use_cache=True)
            past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        return (time.perf_counter() - started) / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--rows", type=int, nargs="+", default=[8, 32, 64, 96])
    parser.add_argument("--cache", type=int, default=100, help="Tokens already in each row's KV cache.")
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()

    from agent_lightning.config import load_config
    from agent_lightning.policy import load_policy
    from agent_lightning.rollout.episodes import generation_weights

    cfg = load_config("default", [f"policy.init_adapter={args.adapter}"] if args.adapter else [])
    model, _ = load_policy(cfg.policy)
    print("| rows | ms per decode step | ms per row | step cost vs the narrowest |")
    print("|---|---|---|---|")
    with generation_weights(model):
        step_seconds(model, args.rows[0], args.cache, 2)  # warm-up
        first = None
        for rows in args.rows:
            seconds = step_seconds(model, rows, args.cache, args.steps)
            first = first or seconds
            print(f"| {rows} | {seconds * 1000:.0f} | {seconds * 1000 / rows:.1f} | {seconds / first:.2f}x |",
                  flush=True)
    print(f"reproduce: .venv/bin/python benchmarks/decode_rows.py {shlex.join(sys.argv[1:])}".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
