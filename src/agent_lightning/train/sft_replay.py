"""Replay SFT demonstrations inside GRPO: each micro-batch's loss gains `coef` x the NLL of one demonstration.

    --algo sft+grpo --set grpo.sft_replay=1.0 [--set grpo.sft_replay_every=4]

What it is: InstructGPT's PPO-ptx (arXiv 2203.02155, section 3.5) with the SFT stage's own data in place of
pretraining text. GRPO moves the policy towards what its sampled groups reward; the templates a round does not
sample, or whose correct action conflicts with the rewarded ones, drift (docs/results.md: a KL term on the sampled
tokens was too weak to hold them). The replayed NLL supervises every template at every step.

How: the demonstrations are the SFT stage's training examples (train/sft.py `sft_examples`: the same verified
reference trajectories and local sources, the same seeds, so the replay is what SFT trained on), tokenized as SFT
tokenizes them (assistant tokens only carry loss; tool results and prompts are masked), truncated at
`sft.max_length`. Every `every`-th micro-batch (counted from the run's start, so a resumed run replays the same
sequence) adds `coef x every x NLL / gradient_accumulation_steps`: the replay term of one optimizer step then
averages `gradient_accumulation_steps / every` demonstrations at weight `coef`, in expectation the same term for
any `every`, at 1/every the cost (one forward and backward of a ~600-token episode each: ~3.5 s on 2 CPU cores).
The NLL is the mean over the demonstration's assistant tokens, as SFT's loss is per example; GRPO's dapo loss is a
mean over tokens too, so `coef` 1 weighs a demonstration token like a rollout token of advantage 1.

The trainer-side hook (a `compute_loss` override adding this term and logging `sft_replay_nll`) lives in
train/trl_compat.py with every other override of TRL internals. Not covered: several processes (each would replay
its own draw; the term is still right in expectation, untested), and demonstrations that change during the run.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from agent_lightning.errors import UserError

log = logging.getLogger(__name__)


def tokenize_demonstration(example: dict[str, Any], tokenizer: Any, max_length: int) -> tuple[list[int], list[int]]:
    """(input_ids, loss mask) of one SFT example, as the SFT stage trains it: a tool episode by the template's
    generation markers (every assistant turn), a plain chat by its last assistant message."""
    messages = example["messages"]
    if example.get("tools"):
        from agent_lightning.train.sft import tokenize_episode

        row = tokenize_episode(example, tokenizer, assistant_only_loss=True)
        ids, mask = row["input_ids"], row["assistant_masks"]
    else:
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=True, add_generation_prompt=True,
                                               return_dict=True)["input_ids"]
        ids = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        mask = [0] * len(prompt) + [1] * (len(ids) - len(prompt))
    ids, mask = ids[:max_length], mask[:max_length]
    if 1 not in mask[1:]:  # the first token is never predicted
        raise UserError(f"grpo.sft_replay: example {example.get('task_id')} has no assistant tokens within "
                        f"sft.max_length={max_length} under the chat template; raise sft.max_length or drop it.")
    return ids, mask


class SFTReplay:
    """The tokenized demonstrations in replay order: `demonstration(position)` is micro-batch `position`'s (or None),
    `nll(model, demonstration)` scores it, `weight(gradient_accumulation_steps)` is what the score is multiplied by."""

    def __init__(self, demonstrations: list[tuple[list[int], list[int]]], coef: float, every: int = 1,
                 seed: int = 0) -> None:
        if not demonstrations:
            raise UserError("grpo.sft_replay: no demonstrations to replay (check sft.demonstrations and "
                            "sft.sources).")
        self.demonstrations = demonstrations
        self.coef = coef
        self.every = every
        self.seed = seed
        self.order = random.Random(seed).sample(range(len(demonstrations)), len(demonstrations))

    @classmethod
    def from_config(cls, cfg: Any, env_cls: type, tokenizer: Any) -> SFTReplay:
        """The SFT stage's training examples for `cfg` (same mixture and seeds), tokenized for `tokenizer`."""
        from agent_lightning.train.sft import sft_examples

        train, _ = sft_examples(cfg, env_cls)
        demos = [tokenize_demonstration(e, tokenizer, cfg.sft.max_length) for e in train]
        tokens = sum(sum(mask) for _, mask in demos)
        log.info("grpo.sft_replay=%g: %d demonstrations (%d assistant tokens), one every %d micro-batch(es)",
                 cfg.grpo.sft_replay, len(demos), tokens, cfg.grpo.sft_replay_every)
        return cls(demos, cfg.grpo.sft_replay, cfg.grpo.sft_replay_every, cfg.run.seed)

    def demonstration(self, position: int) -> tuple[list[int], list[int]] | None:
        """The demonstration replayed at micro-batch `position` (counted from the run's start), or None there."""
        if position % self.every:
            return None
        n = len(self.order)
        turn, index = divmod(position // self.every, n)
        order = self.order if turn == 0 else random.Random(f"{self.seed}:{turn}").sample(self.order, n)  # new pass
        return self.demonstrations[order[index]]

    def weight(self, gradient_accumulation_steps: int) -> float:
        """What one replayed NLL is multiplied by in a micro-batch's loss (see the module docstring)."""
        return self.coef * self.every / gradient_accumulation_steps

    @staticmethod
    def nll(model: Any, demonstration: tuple[list[int], list[int]]) -> Any:
        """Mean negative log-likelihood of the demonstration's assistant tokens under `model` (a scalar tensor
        with its graph, so its backward trains the adapter)."""
        import torch
        import torch.nn.functional as F

        ids, mask = demonstration
        device = next(model.parameters()).device
        input_ids = torch.tensor([ids], device=device)
        logits = model(input_ids=input_ids, use_cache=False).logits[0, :-1]
        targets = torch.tensor(mask[1:], device=device, dtype=torch.bool)
        return F.cross_entropy(logits[targets].float(), input_ids[0, 1:][targets])
