"""Graceful stop: SIGTERM or SIGINT saves a checkpoint at the next step boundary and ends the run resumably.

    with GracefulStop() as stop:                 # the pipeline wraps each run in it
        trainer.train(callbacks=[stop.callback()])
    stop.check(run_dir)                          # raises Preempted when a signal asked the run to stop

How SLURM, Kubernetes and spot instances preempt: SIGTERM, then SIGKILL after a grace period. The first SIGTERM
or SIGINT sets a flag; the trainer callback sees it at the end of the current optimizer step and asks the
Trainer to save a checkpoint and stop (under `accelerate launch` the processes sum their flags, so all stop at
the same step). The pipeline then raises `Preempted`, which the CLI prints as one line naming the checkpoint and
the command that continues it, and exits with 128 + the signal number (143 for SIGTERM, 130 for SIGINT). A
second signal stops at once (the default handler runs). A signal that arrives outside a trainer's steps (loading
the policy, RFT's sampling, an evaluation) stops the run at once as well: nothing would be saved by waiting,
and --resume redoes that part.

Not covered: a SIGKILL (nothing can run; --resume continues the last checkpoint written), and a grace period
shorter than one optimizer step plus a checkpoint write.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

from agent_lightning.errors import UserError

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(UserError):
    """The run stopped on a signal after saving a checkpoint; the message names it and the resume command."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class GracefulStop:
    """Catches SIGTERM/SIGINT for the duration of a run; see the module docstring."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.training = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        for sig in SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None or not self.training:  # a second signal, or nothing to save: stop now
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))  # SIGINT: KeyboardInterrupt
            signal.raise_signal(signum)
            return
        self.signum = signum
        log.warning("%s received: saving a checkpoint at the end of this step, then stopping (send it again to "
                    "stop at once)", signal.Signals(signum).name)

    def callback(self) -> Any:
        """A TrainerCallback that turns a received signal into save-and-stop at the step's end."""
        from transformers import TrainerCallback

        from agent_lightning import distributed

        stop = self

        class StopOnSignal(TrainerCallback):
            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                stop.training = True

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                asked = distributed.sum_counts({"stop": int(stop.signum is not None)})["stop"]
                if asked:
                    stop.signum = stop.signum or signal.SIGTERM
                    control.should_save = True
                    control.should_training_stop = True

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                stop.training = False

        return StopOnSignal()

    def check(self, run_dir: Path, step: int) -> None:
        """Raise `Preempted` when a signal stopped the trainer (after it saved checkpoint-`step`)."""
        if self.signum is None:
            return
        checkpoint = Path(run_dir) / f"checkpoint-{step}"
        raise Preempted(f"stopped by {signal.Signals(self.signum).name} after saving {checkpoint}; continue with "
                        "the same command and --resume.", self.signum)
