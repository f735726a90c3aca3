"""How far adapters drifted from the SFT data: mean NLL per assistant token of SFT demonstrations under each adapter.

    .venv/bin/python benchmarks/sft_drift.py --config RUN_DIR/config.yaml ADAPTER [ADAPTER ...] [--demos 40]

The demonstrations are the SFT stage's for that config (train/sft.py `sft_examples`: the same mixture and seeds),
tokenized and masked as SFT trains them (train/sft_replay.py); `--demos` of its training examples (a seeded
sample) and all of its held-out ones are scored, one forward pass each, on one thread. Prints one line per adapter.
Use it to see whether GRPO moved a policy away from what SFT taught (e.g. an SFT adapter, then a GRPO run's
checkpoints with and without `grpo.sft_replay`). Not covered: held-out task success (benchmarks/grpo_curve.py).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    import torch

    from agent_lightning.chat.tool_format import prepare_for_tools
    from agent_lightning.config import load_config
    from agent_lightning.evaluate import load_for_eval
    from agent_lightning.registry import ENVIRONMENTS, discover
    from agent_lightning.train.sft import sft_examples
    from agent_lightning.train.sft_replay import SFTReplay, tokenize_demonstration

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapters", nargs="+")
    parser.add_argument("--config", required=True, help="The run's config.yaml (its env and sft sections).")
    parser.add_argument("--demos", type=int, default=40, help="SFT training demonstrations scored (seeded sample).")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config, [])
    discover()
    train, held = sft_examples(cfg, ENVIRONMENTS.get(cfg.env.name).obj)
    sample = random.Random(0).sample(train, min(args.demos, len(train)))
    print(f"{len(sample)} SFT training demonstrations, {len(held)} held out; mean NLL per assistant token")
    tokenized: dict[str, list] = {}  # the same tokens under every adapter: tokenized once, with the first
    for adapter in args.adapters:
        model, tokenizer = load_for_eval(cfg, adapter)
        if not tokenized:
            prepare_for_tools(tokenizer, cfg.policy.tool_prompt)
            tokenized = {name: [tokenize_demonstration(e, tokenizer, cfg.sft.max_length) for e in examples]
                         for name, examples in (("train", sample), ("held out", held))}
        with torch.no_grad():
            means = {name: sum(SFTReplay.nll(model, d).item() for d in demos) / max(1, len(demos))
                     for name, demos in tokenized.items()}
        print(f"{adapter}: " + "  ".join(f"{name} {value:.4f}" for name, value in means.items()), flush=True)
    print(f"reproduce: .venv/bin/python benchmarks/sft_drift.py --config {args.config} {' '.join(args.adapters)} "
          f"--demos {args.demos}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
