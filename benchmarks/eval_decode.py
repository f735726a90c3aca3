"""Claim: evaluation's own decode loop (cache grown in place, finished rows parked within a turn) plays the same
episodes faster than `model.generate` on the kept cache, with identical replies.

    .venv/bin/python benchmarks/eval_decode.py --adapter RUN_DIR/sft/adapter [--config configs/default.yaml]
                                               [--limit 100] [--batch-size 100]

Both variants run agent_lightning.rollout.episodes.play_episodes on the same test tasks with the same policy, tools and
sandbox; only the generation session differs:
  - generate: the kept-cache session as it was before (transformers' `generate` on a DynamicCache, whose every
    token re-concatenates the whole cache, and whose finished rows keep computing until the longest reply ends);
  - own loop: agent_lightning.cached_generation.CachedSession (what `eval` runs).
Prints wall time and success of each, whether every reply was identical, and the speed-up. Use a policy that
makes tool calls (an SFT adapter): replies of very different lengths are where the two differ. Not covered:
sampling, batch sizes other than the one given.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


class GenerateSession:
    """The baseline: the previous kept-cache session, generating each turn with `model.generate`."""

    min_shared_prefix = 16

    def __init__(self, model: Any, tokenizer: Any, sampling: Any = None) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.rows: list[int] = []
        self.ids = self.mask = self.cache = None

    @torch.no_grad()
    def generate(self, segments: dict[int, list[int]],
                 max_new_tokens: dict[int, int]) -> dict[int, tuple[list[int], bool]]:
        keep = [r for r, i in enumerate(self.rows) if i in segments]
        if self.ids is not None and len(keep) < len(self.rows):
            index = torch.tensor(keep)
            self.ids, self.mask = self.ids[index], self.mask[index]
            self.cache.batch_select_indices(index)
        self.rows = [self.rows[r] for r in keep] if self.ids is not None else sorted(segments)
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        encoded = [list(segments[i]) for i in self.rows]
        max_new_tokens = max(max_new_tokens.values())  # one limit per turn (evaluation gives every row the same)
        if self.ids is None:
            encoded = self._prefill_shared_prefix(encoded)
        width = max(len(e) for e in encoded)
        block = torch.tensor([[pad] * (width - len(e)) + e for e in encoded])
        block_mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
        ids = block if self.ids is None else torch.cat([self.ids, block], dim=1)
        mask = block_mask if self.mask is None else torch.cat([self.mask, block_mask], dim=1)
        out = self.model.generate(input_ids=ids, attention_mask=mask, cache=self.cache, max_new_tokens=max_new_tokens,
                                  do_sample=False, pad_token_id=pad, eos_token_id=eos, return_dict_in_generate=True)
        new = out.sequences[:, ids.shape[1]:]
        ended = (new == eos).long()
        valid = (ended.cumsum(dim=1) - ended) == 0
        self.ids, self.mask, self.cache = out.sequences, torch.cat([mask, valid.long()], dim=1), out.past_key_values
        return {i: (new[row, :int(valid[row].sum())].tolist(), bool(ended[row].any())) for row, i in enumerate(self.rows)}

    def _prefill_shared_prefix(self, encoded: list[list[int]]) -> list[list[int]]:
        from transformers import DynamicCache

        shared, limit = 0, min(len(e) for e in encoded) - 1
        while shared < limit and all(e[shared] == encoded[0][shared] for e in encoded):
            shared += 1
        if len(encoded) < 2 or shared < self.min_shared_prefix:
            return encoded
        prefix = torch.tensor([encoded[0][:shared]])
        self.cache = DynamicCache(config=self.model.config)
        self.model(input_ids=prefix, attention_mask=torch.ones_like(prefix), cache=self.cache, use_cache=True,
                   logits_to_keep=1)
        self.cache.batch_repeat_interleave(len(encoded))
        self.ids = prefix.repeat(len(encoded), 1)
        self.mask = torch.ones_like(self.ids)
        return [e[shared:] for e in encoded]


def main() -> int:
    from _eval_setup import load_eval_setup

    from agent_lightning.rollout import episodes as rollouts
    from agent_lightning.rollout.generation import CachedSession

    setup = load_eval_setup(__doc__.splitlines()[0], default_limit=100)
    args, cfg, env_cls, tasks = setup.args, setup.cfg, setup.env_cls, setup.tasks
    model, tokenizer, system, max_new = setup.model, setup.tokenizer, setup.system, setup.max_new

    results = {}
    for name, session in (("generate", GenerateSession), ("own loop", CachedSession)):
        rollouts.CachedSession = session
        started, envs, replies = time.time(), [], []
        for start in range(0, len(tasks), args.batch_size):
            episodes = rollouts.play_episodes(model, tokenizer, env_cls, tasks[start:start + args.batch_size], system,
                                              max_new_tokens=max_new, max_turns=cfg.env.max_turns,
                                              max_failed_turns=cfg.eval.max_failed_turns)
            done, completions = [e.env for e in episodes], [e.messages for e in episodes]
            for env, completion in zip(done, completions):
                env._finish_episode(completion)  # verify the episode, as the reward functions do in `eval`
            envs += done
            replies += [[m.get("content") or str(m.get("tool_calls")) for m in c] for c in completions]
        results[name] = (time.time() - started, sum(e.outcome.success for e in envs), replies)
        print(f"{name:9s} {results[name][0]:7.1f} s   success {results[name][1]}/{len(tasks)}", flush=True)
    rollouts.CachedSession = CachedSession
    same = results["generate"][2] == results["own loop"][2]
    print(f"speed-up of the own decode loop: {results['generate'][0] / results['own loop'][0]:.2f}x wall time; "
          f"replies identical: {same}")
    print("reproduce: .venv/bin/python benchmarks/eval_decode.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
