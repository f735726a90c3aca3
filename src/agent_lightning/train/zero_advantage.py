"""Skip the forward and backward pass of GRPO micro-batches that cannot change the weights.

    trainer_cls = trl_compat.grpo_trainer_class(skip_zero_advantage=True)   # what grpo.skip_zero_advantage does

With no KL term (`grpo.beta: 0`), every TRL loss type multiplies each token's term by its rollout's advantage. A
rollout whose group scored all alike (all succeeded, or all failed) has advantage 0, so a micro-batch made only of
such rollouts has loss 0 and gradient 0 whatever the policy does with it, yet TRL still runs a full forward and
backward pass over it: on a CPU about 8 s per 512-token tool episode of a 135M model, and in a round where most
groups score alike (the usual case right after SFT) most of GRPO's training time. The trainer's `compute_loss`
(overridden in train/trl_compat.py, with every other override of TRL internals) returns, for such a micro-batch, a
zero loss wired to the trainable weights instead: its backward gives them zero gradients, so the optimizer steps
exactly as it would have (AdamW's moments decay and its momentum still moves the weights) and the run's weights come
out the same to the last bit (tested), only sooner. What is skipped is logged as `skipped_zero_advantage`, the share
of micro-batches per logged step (`skipped_zero_advantage_mean` in summary.json); the loss metrics TRL logs from the
pass (entropy, clip ratios) then average the micro-batches that did train, and a step that trained none logs none.

Only advantages of exactly 0 count: TRL scales a group's advantages by its reward spread (plus 1e-4), so a group
whose rewards differ only by float rounding gets tiny non-zero advantages, and trains as before.

Bit-identical only when the forward pass draws no random numbers: with LoRA dropout (policy.lora.dropout > 0) a
skipped pass leaves the random stream where it was, so later micro-batches draw other dropout masks (and TRL's
shuffle of the next round differs): the same training in distribution, not the same bits. The embedded default
has no dropout.

Off (the full pass runs) when `grpo.beta` is not 0 (the KL term has a gradient of its own), when the loss has a
term that does not scale with the advantage (a mixture-of-experts router loss, TRL's entropy bonus), and when
several processes train (TRL's loss gathers across processes, and DDP/DeepSpeed reduce gradients in the backward:
a process that skipped them would stall its peers). Not covered: the pass that scores the sampling round's old
log-probabilities (TRL runs it before the rewards are known), and dynamic sampling (drawing new groups in place
of the flat ones), which TRL does not offer.
"""

from __future__ import annotations

from typing import Any


def can_skip(trainer: Any, model: Any) -> bool:
    """Whether a zero-advantage micro-batch of `trainer` may skip its pass (see the module docstring)."""
    return (model.training and trainer.beta == 0.0
            and not getattr(trainer, "aux_loss_enabled", False)
            and not getattr(trainer, "_entropy_bonus_enabled", False)
            and trainer.accelerator.num_processes == 1)


def all_zero(advantages: Any) -> bool:
    """True when every rollout of the micro-batch has advantage exactly 0."""
    return not bool(advantages.any())


def zero_loss(model: Any) -> Any:
    """0, as a loss whose backward leaves a zero gradient on every trainable weight (what a zero-advantage
    micro-batch's real loss gives them), at the cost of one sum per weight instead of a pass over the sequence."""
    return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
