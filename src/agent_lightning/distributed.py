"""Who writes what when several processes train one run (`accelerate launch`, torchrun, DeepSpeed).

    accelerate launch --config_file configs/accelerate/ddp.yaml main_agent_lightning.py --algo grpo ...

Every process runs the same command. These helpers make them agree: the main process picks the run directory
and the others receive it (`broadcast`), only the main process writes the run directory's files (`is_main`),
the others wait where they need those files (`barrier`), and per-process counters are summed (`sum_counts`).
In a plain single process every helper is a cheap no-op. accelerate's `PartialState` owns the process group; it
is the same one the Trainer uses later.

Not covered here: how gradients and TRL's metrics are reduced (DDP/DeepSpeed and TRL gather them), multi-node
file systems (the run directory must be on a disk every node's main process sees).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def launched() -> bool:
    """True under a multi-process launcher (WORLD_SIZE > 1 in the environment)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _state() -> Any:
    import torch
    from accelerate import PartialState

    # as the Trainer builds it (trainer_args.common_args: use_cpu without CUDA): gloo between CPU processes
    return PartialState(cpu=not torch.cuda.is_available())


def rank() -> int:
    return _state().process_index if launched() else 0


def world_size() -> int:
    return _state().num_processes if launched() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if launched():
        _state().wait_for_everyone()


def broadcast(value: T) -> T:
    """The main process's `value`, on every process."""
    if not launched():
        return value
    from accelerate.utils import broadcast_object_list

    _state()
    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def sum_counts(counts: dict[str, int]) -> dict[str, int]:
    """Counters summed over all processes (every process must call this, with any subset of the names)."""
    if not launched():
        return dict(counts)
    from accelerate.utils import gather_object

    _state()
    merged: dict[str, int] = {}
    for part in gather_object([dict(counts)]):
        for name, count in part.items():
            merged[name] = merged.get(name, 0) + int(count)
    return merged


def zero3(trainer: Any) -> bool:
    """True when `trainer` runs under DeepSpeed ZeRO-3 (weights sharded: no process holds the whole model)."""
    if not getattr(trainer, "is_deepspeed_enabled", False):
        return False
    plugin = trainer.accelerator.state.deepspeed_plugin
    return plugin is not None and plugin.zero_stage == 3


def quiet_other_processes() -> None:
    """Only the main process logs INFO lines; the others keep warnings and errors."""
    if launched() and not is_main():
        import logging

        logging.getLogger().setLevel(logging.WARNING)


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """The main process runs the block first (e.g. builds a cached model), then the others (which reuse it)."""
    if not launched():
        yield
        return
    with _state().main_process_first():
        yield
