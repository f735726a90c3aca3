"""Claim under test: where the ~8 s of one GRPO rollout's forward/backward goes on the CPU (embedded default).

    .venv/bin/python benchmarks/grpo_step_profile.py [--tokens 500] [--adapter RUN_DIR/sft/adapter] [--repeats 3]

One rollout-sized sequence (`--tokens`, a whole episode: prompt + replies + tool results) through the embedded
policy with its LoRA trainable, measured three ways in one process: a no-grad forward (what TRL's old/reference
log-probabilities cost), a forward + backward of the mean token log-probability (what one micro-batch of the loss
costs), and the same under torch.profiler, whose top operators by self CPU time are printed. Also prints the
achieved GFLOP/s against the model's FLOP count (forward 2·N·T; backward through frozen weights ~2·N·T for the
activation gradients, LoRA's own weight gradients negligible) and the share of time in the LM head's
vocabulary-wide log-softmax. Not covered: TRL's bookkeeping between micro-batches (benchmarks/grpo_overhead.py),
sampling the rollouts (benchmarks/grpo_rollouts.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from agent_lightning.config import load_config
    from agent_lightning.policy import load_policy

    cfg = load_config("default", [f"policy.init_adapter={args.adapter}"] if args.adapter else [])
    model, tokenizer = load_policy(cfg.policy)
    model.train()
    ids = torch.randint(100, tokenizer.vocab_size - 1, (1, args.tokens), generator=torch.Generator().manual_seed(0))
    params = sum(p.numel() for p in model.parameters())

    def loss_of(logits: torch.Tensor) -> torch.Tensor:  # what the GRPO loss reads: per-token log-probs of the ids
        logps = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        return -logps.mean()

    def forward_only() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            loss_of(model(input_ids=ids).logits)
        return time.perf_counter() - start

    def forward_backward() -> float:
        start = time.perf_counter()
        loss_of(model(input_ids=ids).logits).backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    forward_backward()  # warm-up
    fwd = statistics.median(forward_only() for _ in range(args.repeats))
    fb = statistics.median(forward_backward() for _ in range(args.repeats))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        forward_backward()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40)
    head_start = time.perf_counter()
    hidden = torch.randn(1, args.tokens, model.config.hidden_size, requires_grad=True)
    head = model.get_output_embeddings()
    loss_of(head(hidden)).backward()
    head_time = time.perf_counter() - head_start
    flops_fwd = 2 * params * args.tokens
    print(f"policy: {cfg.policy.source}, {params / 1e6:.0f}M parameters, {torch.get_num_threads()} threads, "
          f"{args.tokens} tokens")
    print(f"| pass | seconds | GFLOP/s |\n|---|---|---|\n| forward (no grad) | {fwd:.2f} | {flops_fwd / fwd / 1e9:.0f} |\n"
          f"| forward + backward | {fb:.2f} | {2 * flops_fwd / fb / 1e9:.0f} |\n"
          f"| LM head + log-softmax, forward + backward | {head_time:.2f} | |")
    print(table)
    print(f"reproduce: .venv/bin/python benchmarks/grpo_step_profile.py --tokens {args.tokens}"
          + (f" --adapter {args.adapter}" if args.adapter else ""))


if __name__ == "__main__":
    main()
