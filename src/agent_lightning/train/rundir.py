"""The run directory: where a run writes everything, and how `--resume` finds it again.

    runs/<name>-<algo>-<YYYYmmdd-HHMMSS>/
        config.yaml      the resolved config (after --set overrides)
        adapter/         final PEFT adapter (PeftModel.from_pretrained-loadable)
        checkpoint-N/    HF Trainer checkpoints (model, optimizer, scheduler, RNG, trainer_state.json)
        metrics.jsonl    one JSON line per logged step
        summary.json     what the run achieved
        reward.png       reward over steps
        tensorboard/     TensorBoard event files (when report_to has tensorboard)
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from agent_lightning.config import Config
from agent_lightning.errors import UserError
from agent_lightning.observe.traces import read_jsonl

log = logging.getLogger(__name__)
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _run_prefix(cfg: Config, algo: str) -> str:
    return f"{cfg.run.name}-{algo.replace('+', '-')}-"


def new_run_dir(cfg: Config, algo: str) -> Path:
    base = Path(cfg.run.runs_dir) / (_run_prefix(cfg, algo) + time.strftime("%Y%m%d-%H%M%S"))
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def latest_run_dir(cfg: Config, algo: str) -> Path:
    prefix = _run_prefix(cfg, algo)
    root = Path(cfg.run.runs_dir)
    candidates = sorted(p for p in root.glob(prefix + "*") if p.is_dir()) if root.is_dir() else []
    if not candidates:
        raise UserError(f"--resume: no earlier run '{prefix}*' in {root}/. Pass --output-dir of the run to resume.")
    return candidates[-1]


def latest_checkpoint(run_dir: Path, set_aside: bool = False) -> Path | None:
    """The newest checkpoint-N of `run_dir` that is whole (`checkpoint_problem`); a newer damaged or half-written
    one is skipped with a warning naming what is wrong with it, and with `set_aside` (a resume, main process)
    renamed to checkpoint-N.damaged so the resumed run writes a clean one in its place. None when none is whole."""
    found = sorted(((int(m.group(1)), p) for p in run_dir.glob("checkpoint-*") if (m := CHECKPOINT.match(p.name))),
                   reverse=True)
    for _, path in found:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        log.warning("--resume: skipping %s: %s; falling back to the previous checkpoint", path, problem)
        if set_aside:
            path.rename(path.with_name(path.name + ".damaged"))
    return None


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from (None: it is whole). The Trainer writes trainer_state.json
    last, so a checkpoint cut off while being written has none; a damaged one has files that do not parse:
    safetensors headers and tensors, the zip archives torch saves (optimizer, scheduler, RNG), the JSON state."""
    import zipfile

    state = path / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json (cut off while being written)"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError) as exc:
        return f"trainer_state.json does not parse ({exc})"
    for file in sorted(path.glob("*.safetensors")):
        try:
            from safetensors import safe_open

            with safe_open(str(file), "pt") as handle:
                for key in handle.keys():
                    handle.get_slice(key)
        except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
            return f"{file.name} is damaged ({type(exc).__name__}: {str(exc)[:120]})"
    for file in sorted([*path.glob("*.pt"), *path.glob("*.pth")]):
        try:
            with zipfile.ZipFile(file) as archive:
                bad = archive.testzip()
        except (OSError, zipfile.BadZipFile) as exc:
            return f"{file.name} is damaged ({exc})"
        if bad is not None:
            return f"{file.name} is damaged (member {bad} fails its CRC)"
    return None


def checkpoint_step(checkpoint: Path) -> int:
    return int(CHECKPOINT.match(checkpoint.name).group(1))


def write_config(run_dir: Path, cfg: Config, algo: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    data = {"algo": algo, **cfg.to_dict()}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def truncate_metrics(path: Path, last_step: int) -> int:
    """Keep only records with step <= last_step (what a resumed run will not redo); return how many remain."""
    rows = [r for r in read_jsonl(path) if r.get("step", 0) <= last_step]
    if path.exists():
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def publish_adapter(source: Path, target: Path) -> Path:
    """Copy a stage's adapter folder to `target` (RUN_DIR/adapter of a staged run), replacing what was there: the
    copy is written beside it and renamed into place, so a reader never sees half an adapter."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    old = target.with_name(target.name + ".old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target
