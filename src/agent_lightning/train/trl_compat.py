"""Every override of TRL internals, in one place, behind a check of the TRL versions they were written for.

    from agent_lightning.train import trl_compat
    trainer_cls = trl_compat.grpo_trainer_class(rollout_inputs=True, skip_zero_advantage=True)

The rest of the project uses TRL through its public API (GRPOTrainer, GRPOConfig, SFTTrainer, rollout_func,
environment_factory). What it cannot do through that API lives here:

  - `rollout_inputs`: TRL hands a `rollout_func` only the prompts; the override of the private
    `_generate_and_score_completions` keeps the step's dataset rows in `trainer.rollout_inputs` (the task columns
    `env.reset` needs) and `log_rollout_metric` reaches the private `_log_metric` (rollout/trl_rollout.py).
  - `skip_zero_advantage`: `compute_loss` returns a zero loss for micro-batches whose every advantage is 0 and
    appends to the private `_metrics` (train/zero_advantage.py says when that is exact).
  - `sft_replay`: `compute_loss` adds the NLL of a replayed SFT demonstration to the GRPO loss (which TRL has
    already scaled for gradient accumulation, `loss_is_scaled_for_ga`) and logs it as `sft_replay_nll` in the
    private `_metrics` (train/sft_replay.py).

Importing this module checks the installed TRL against `SUPPORTED_TRL`; any other version stops with one line that
names the range, because a private method that changed shape would otherwise fail silently or mid-run.
Not covered here: TRL's public settings (train/grpo.py, train/sft.py map our config to them).
"""

from __future__ import annotations

from typing import Any

from agent_lightning.errors import UserError
from agent_lightning.train.sft_replay import SFTReplay
from agent_lightning.train.zero_advantage import all_zero, can_skip, zero_loss

SUPPORTED_TRL = (">=1.16.0", "<1.17")  # the versions these overrides were written and tested against


def check_trl_version(version: str | None = None) -> None:
    """Raise a one-line UserError unless `version` (default: the installed TRL) is in `SUPPORTED_TRL`."""
    from packaging.specifiers import SpecifierSet

    if version is None:
        import trl

        version = trl.__version__
    if version not in SpecifierSet(",".join(SUPPORTED_TRL)):
        raise UserError(f"trl {version} is installed, but agent_lightning.train.trl_compat overrides TRL internals "
                        f"written for trl{','.join(SUPPORTED_TRL)}: install that (`pip install "
                        f"'trl{','.join(SUPPORTED_TRL)}'`), or port train/trl_compat.py to the new version.")


check_trl_version()


def grpo_trainer_class(rollout_inputs: bool = False, skip_zero_advantage: bool = False,
                       sft_replay: SFTReplay | None = None) -> type:
    """TRL's GRPOTrainer with the overrides asked for (see the module docstring); GRPOTrainer itself for none."""
    from trl import GRPOTrainer

    cls: type = GRPOTrainer
    if rollout_inputs:
        cls = _with_rollout_inputs(cls)
    if skip_zero_advantage:
        cls = _skipping_zero_advantage(cls)
    if sft_replay is not None:  # outermost: a skipped micro-batch still replays its demonstration
        cls = _with_sft_replay(cls, sft_replay)
    return cls


def _with_rollout_inputs(base: type) -> type:
    class RolloutGRPOTrainer(base):
        rollout_inputs: list[dict[str, Any]] = []

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            self.rollout_inputs = inputs
            return super()._generate_and_score_completions(inputs)

        def log_rollout_metric(self, name: str, value: float) -> None:
            self._log_metric(name, value)

    return RolloutGRPOTrainer


def _skipping_zero_advantage(base: type) -> type:
    class SkipZeroAdvantage(base):
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if can_skip(self, model):
                flat = all_zero(inputs["advantages"])
                self._metrics["train"]["skipped_zero_advantage"].append(float(flat))
                if flat:
                    return zero_loss(model)
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    SkipZeroAdvantage.__name__ = SkipZeroAdvantage.__qualname__ = f"SkipZeroAdvantage{base.__name__}"
    return SkipZeroAdvantage


def _with_sft_replay(base: type, replay: SFTReplay) -> type:
    class SFTReplayTrainer(base):
        replay_position: int | None = None  # micro-batches trained since the run's start (resumes included)

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            loss = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
            if not model.training:
                return loss
            if self.replay_position is None:
                self.replay_position = self.state.global_step * self.args.gradient_accumulation_steps
            demonstration = replay.demonstration(self.replay_position)
            self.replay_position += 1
            if demonstration is None:
                return loss
            nll = replay.nll(model, demonstration)
            self._metrics["train"]["sft_replay_nll"].append(nll.item())
            return loss + replay.weight(self.current_gradient_accumulation_steps) * nll

    SFTReplayTrainer.__name__ = SFTReplayTrainer.__qualname__ = f"SFTReplay{base.__name__}"
    return SFTReplayTrainer
