"""The algorithm contract: one training stage as a plugin, the same for the built-ins and for yours.

    from agent_lightning import algorithm

    @algorithm("imitate")
    def imitate(stage):                          # a Stage: see below
        \"\"\"One line that `algos list` shows.\"\"\"
        model, tokenizer = stage.load_policy()   # base + what the previous stage left (or a fresh LoRA)
        ...                                      # train it: your loop, or a TRL trainer
        stage.save_adapter(model, tokenizer)     # RUN_DIR/<stage>/adapter, what the next stage starts from
        return {"steps": n}                      # merged into the stage's summary.json

`--algo a+b` runs registered algorithms in order, each in its own folder RUN_DIR/<name>/ (a single algorithm writes
RUN_DIR itself), each starting from the adapter the previous one saved. An algorithm receives a `Stage`: the
resolved config, its run directory, the environment class, the checkpoint to resume from (when --resume found one),
the extra trainer callbacks, the previous stage's folder, its own settings (`algorithms.<name>` in the config), and
helpers for what every algorithm needs. It must leave `adapter/` in its run directory (or, for an algorithm that
only changes the prompt, `prompt.yaml`). The pipeline then writes summary.json (unless the algorithm wrote one; then
the algorithm also decides about evaluation), evaluates the adapter on the test split when `eval.at_end` is on, and
builds the chain's comparison table. The built-ins (train/algorithms.py: sft, grpo, rft) are registered the same
way.

Not covered here: launching several processes (accelerate does; `agent_lightning.distributed` says who writes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_lightning.config import Config
from agent_lightning.errors import UserError


@dataclass
class Stage:
    """What one algorithm gets for one stage of a run (see the module docstring)."""

    name: str
    cfg: Config
    run_dir: Path
    env_cls: type
    checkpoint: Path | None = None
    callbacks: list[Any] = field(default_factory=list)
    previous: Path | None = None  # the previous stage's folder in a chain, None for the first stage
    graceful: Any = None  # train.graceful.GracefulStop of the run: add `stop_callback()` to a Trainer
    started: float = field(default_factory=time.time)

    def stop_callback(self) -> Any:
        """A TrainerCallback that saves a checkpoint and stops at the next step when the run gets SIGTERM/SIGINT;
        call `stopped(step)` after training (it raises when that happened). None outside a run."""
        return self.graceful.callback() if self.graceful is not None else None

    def stopped(self, step: int) -> None:
        """Raise train.graceful.Preempted when a signal stopped training after checkpoint-`step`."""
        if self.graceful is not None:
            self.graceful.check(self.run_dir, step)

    @property
    def settings(self) -> dict[str, Any]:
        """This algorithm's own settings: the config's `algorithms.<name>` mapping (empty when unset)."""
        settings = self.cfg.algorithms.get(self.name) or {}
        if not isinstance(settings, dict):
            raise UserError(f"algorithms.{self.name}: expected a mapping of settings, e.g. "
                            f"--set algorithms.{self.name}.steps=10, got {settings!r}.")
        return dict(settings)

    def load_policy(self) -> tuple[Any, Any]:
        """(model, tokenizer): the configured policy with a trainable LoRA, continued from `policy.init_adapter` (in a
        chain: the previous stage's adapter) when there is one."""
        from agent_lightning.policy import load_policy

        return load_policy(self.cfg.policy)

    def reward_suite(self) -> Any:
        """The run's configured rewards as TRL reward functions (rewarding.RewardSuite)."""
        from agent_lightning.rewarding import RewardSuite

        return RewardSuite.from_config(self.cfg.rewards, self.env_cls, self.cfg.env)

    def tasks(self, split: str = "train") -> list[dict[str, Any]]:
        """The environment's task rows of `split` (training tasks from `env.train_tiers`)."""
        from agent_lightning.envs import tasks_in_tiers

        size = self.cfg.env.train_size if split == "train" else self.cfg.env.test_size
        return tasks_in_tiers(self.env_cls, split, size, self.cfg.env.seed,
                              self.cfg.env.train_tiers if split == "train" else None)

    def log(self, metrics: dict[str, Any]) -> None:
        """Append one line to RUN_DIR/metrics.jsonl (give it a `step`)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(metrics) + "\n")

    def save_adapter(self, model: Any, tokenizer: Any) -> Path:
        """Save the PEFT adapter (and tokenizer) to RUN_DIR/adapter, loadable by PeftModel.from_pretrained."""
        out = self.run_dir / "adapter"
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
        return out
