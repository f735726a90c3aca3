"""Run a training algorithm, or a chain of them, end to end into a run directory (what `--algo` does).

    run_training(cfg, algo="sft+grpo", output_dir=None, resume=False)

Steps: check the chain's names against the registry (built-ins and plugins: train/algorithm.py is the contract),
pick/create the run directory, write config.yaml, evaluate the starting policy (chains), then run each algorithm
in its own folder from the adapter the previous one left (resuming from its latest checkpoint-* when asked),
complete its summary.json and evaluation, copy the chain's last adapter to RUN_DIR/adapter (and the last
prompt.yaml a prompt stage such as apo left to RUN_DIR/prompt.yaml; later stages start from it), and write the
chain's comparison table and chart.

Under `accelerate launch` every process runs this: the main process picks the run directory and broadcasts it,
and only it writes config.yaml, metrics, the adapter, plots and summaries (distributed.py); the others
train their share of each batch and wait where they need its files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from agent_lightning import distributed
from agent_lightning.config import Config
from agent_lightning.environments.agent import is_agent_env
from agent_lightning.errors import UserError, close_matches
from agent_lightning.train import rundir
from agent_lightning.train.algorithm import Stage
from agent_lightning.train.graceful import GracefulStop
from agent_lightning.train.run_lock import RunLock

log = logging.getLogger(__name__)

def resolve_run_dir(cfg: Config, algo: str, output_dir: str | None, resume: bool) -> tuple[Path, Path | None]:
    """(run directory, checkpoint to resume from or None)."""
    if output_dir:
        run_dir = Path(output_dir)
    elif resume:
        run_dir = rundir.latest_run_dir(cfg, algo)
    else:
        run_dir = distributed.broadcast(rundir.new_run_dir(cfg, algo))  # one name, even if clocks tick apart
    checkpoint = None
    if resume:
        checkpoint = rundir.latest_checkpoint(run_dir, set_aside=distributed.is_main())
        if checkpoint is None:
            log.warning("--resume: no checkpoint in %s yet; starting from step 0", run_dir)
    elif output_dir and rundir.latest_checkpoint(run_dir) is not None:
        raise UserError(
            f"--output-dir {run_dir} already holds checkpoints; add --resume to continue it, or pick a new folder."
        )
    return run_dir, checkpoint


def run_training(cfg: Config, algo: str, output_dir: str | None = None, resume: bool = False,
                 callbacks: list[Any] | None = None) -> Path:
    """Train `algo` per `cfg` into a run directory and return it (extra TrainerCallbacks may be added).

    `sft+grpo` runs SFT into RUN_DIR/sft, then GRPO from its adapter into RUN_DIR/grpo (`sft+rft`: RFT into
    RUN_DIR/rft), and copies the final stage's adapter to RUN_DIR/adapter, where a single-stage run leaves its
    own; with --resume a stage that already finished is skipped and any other continues from its latest
    checkpoint. The run holds RUN_DIR/.lock throughout (train/run_lock.py: one writer per run directory), and a
    SIGTERM or SIGINT saves a checkpoint at the next step and raises `Preempted` (train/graceful.py)."""
    from agent_lightning.envs import environment_class
    from agent_lightning.registry import discover
    from agent_lightning.rewarding import RewardSuite

    discover()
    names = parse_chain(algo)
    env_cls = environment_class(cfg)  # unknown env or reward: fail here, before loading weights
    if is_agent_env(env_cls) and {"sft", "rft", "apo"} & set(names):
        raise UserError(f"--algo {algo}: env.name=agent trains your agent program with grpo; sft, rft and apo do not "
                        "run agent programs.")
    RewardSuite.from_config(cfg.rewards, env_cls)
    with contextlib.ExitStack() as held:
        if output_dir and distributed.is_main():  # before its checkpoints are looked at: a live run owns them
            held.enter_context(RunLock(Path(output_dir)))
        run_dir, checkpoint = resolve_run_dir(cfg, algo, output_dir, resume)
        if not output_dir and distributed.is_main():
            held.enter_context(RunLock(run_dir))
        stop = held.enter_context(GracefulStop())
        return _run(cfg, algo, names, env_cls, run_dir, checkpoint, resume, list(callbacks or []), stop)


def _run(cfg: Config, algo: str, names: list[str], env_cls: type, run_dir: Path, checkpoint: Path | None,
         resume: bool, callbacks: list[Any], stop: GracefulStop) -> Path:
    distributed.quiet_other_processes()
    if distributed.is_main():
        rundir.write_config(run_dir, cfg, algo)
    log.info("writing the run to %s", run_dir)
    if names in (["grpo"], ["rft"]) and cfg.grpo.warm_start_sft and not cfg.policy.init_adapter \
            and is_agent_env(env_cls):
        log.info("grpo.warm_start_sft does not apply to env.name=agent (your agent's prompts and tools have no "
                 "reference demonstrations): %s starts from the base policy", algo.upper())
    elif names in (["grpo"], ["rft"]) and cfg.grpo.warm_start_sft and not cfg.policy.init_adapter:
        log.warning("grpo.warm_start_sft: no policy.init_adapter, so a short SFT (%d steps) warm-starts the policy "
                    "first, into %s/sft, then %s into %s/%s (--set grpo.warm_start_sft=false to skip)",
                    cfg.sft.max_steps, run_dir, algo.upper(), run_dir, algo)
        names, algo = ["sft", *names], f"sft+{algo}"
    if len(names) == 1:
        run_stage(Stage(names[0], cfg, run_dir, env_cls, checkpoint, callbacks, graceful=stop))
        return run_dir
    base = baseline_eval(cfg, run_dir, resume)
    stages = {}
    previous: Path | None = None
    for stage in names:
        stage_dir = run_dir / stage
        if previous is not None and (previous / "adapter").is_dir():
            policy = dataclasses.replace(cfg.policy, init_adapter=str(previous / "adapter"))
            cfg = dataclasses.replace(cfg, policy=policy)
        if previous is not None and (previous / "prompt.yaml").is_file():  # a prompt-only stage (apo) left one
            cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, prompt=str(previous / "prompt.yaml")))
        wanted = {"sft": cfg.sft.max_steps, "grpo": cfg.grpo.max_steps}.get(stage, 0)  # others: a summary is enough
        done = stage_dir / "summary.json"
        if resume and done.exists() and json.loads(done.read_text()).get("steps", 0) >= wanted:
            log.info("%s: already done in %s; skipping", stage, stage_dir)
        else:
            stage_checkpoint = rundir.latest_checkpoint(stage_dir, set_aside=distributed.is_main()) \
                if resume and stage_dir.exists() else None
            run_stage(Stage(stage, cfg, stage_dir, env_cls, stage_checkpoint, callbacks, previous, graceful=stop))
        stages[stage] = json.loads((stage_dir / "summary.json").read_text())
        previous = stage_dir
    if distributed.is_main():
        from agent_lightning.observe.compare import format_table, plot_success, stage_rows

        final_adapter, final_prompt = publish_outputs(run_dir, names)
        rows = stage_rows(base, stages)
        plot = plot_success(rows, run_dir / "success.png", f"{cfg.policy.source} on {cfg.env.name}") if rows else None
        rundir.write_json(run_dir / "summary.json", {"algo": algo, "run_dir": str(run_dir), "stages": stages,
                                                     "base_eval": base, "comparison": rows,
                                                     "plot": str(plot) if plot else None,
                                                     "final_stage": stage,
                                                     "adapter": str(final_adapter) if final_adapter else None,
                                                     "prompt": str(final_prompt) if final_prompt else None})
        if rows:
            print(format_table(rows) + (f"\nchart: {plot}" if plot else ""), flush=True)
    return run_dir


def publish_outputs(run_dir: Path, names: list[str]) -> tuple[Path | None, Path | None]:
    """Copy the chain's last adapter to RUN_DIR/adapter and its last prompt.yaml to RUN_DIR/prompt.yaml (a stage that
    only changes the prompt, like apo, leaves no adapter; the one before it still counts)."""
    import shutil

    adapters = [run_dir / n / "adapter" for n in names if (run_dir / n / "adapter" / "adapter_config.json").is_file()]
    prompts = [run_dir / n / "prompt.yaml" for n in names if (run_dir / n / "prompt.yaml").is_file()]
    adapter = rundir.publish_adapter(adapters[-1], run_dir / "adapter") if adapters else None
    prompt = None
    if prompts:
        prompt = run_dir / "prompt.yaml"
        shutil.copyfile(prompts[-1], prompt.with_name("prompt.yaml.tmp"))
        prompt.with_name("prompt.yaml.tmp").replace(prompt)
    return adapter, prompt


def parse_chain(algo: str) -> list[str]:
    """`a+b+c` -> ['a', 'b', 'c'], each a registered algorithm (one-line error with did-you-mean otherwise)."""
    from agent_lightning.registry import ALGORITHMS

    names = [name.strip() for name in algo.split("+")]
    if not all(names):
        raise UserError(f"--algo {algo}: expected names joined by '+', e.g. sft+grpo.")
    for name in names:
        if name not in ALGORITHMS:
            raise UserError(f"--algo {algo}: unknown algorithm '{name}'.{close_matches(name, ALGORITHMS.names())} "
                            f"Known: {', '.join(ALGORITHMS.names())} (`algos list`; yours via --plugin-dir).")
    if len(set(names)) != len(names):
        raise UserError(f"--algo {algo}: each algorithm may appear once in a chain (its stage folder is its name).")
    return names


def run_stage(stage: Stage) -> None:
    """Run one registered algorithm and complete what it leaves: summary.json (its returned values merged in) and,
    for an algorithm that left only an adapter (no summary.json of its own), the end-of-stage evaluation of that
    adapter when `eval.at_end` is on. One that writes its summary decides about evaluation itself (the built-ins
    evaluate in-process, or say why not, as under ZeRO-3)."""
    from agent_lightning.registry import ALGORITHMS

    stage.run_dir.mkdir(parents=True, exist_ok=True)
    returned = ALGORITHMS.get(stage.name).obj(stage) or {}
    if not distributed.is_main():
        return
    path = stage.run_dir / "summary.json"
    own = path.is_file()  # an algorithm that writes its summary also decides about its evaluation (the built-ins do)
    summary = json.loads(path.read_text()) if own else {
        "algo": stage.name, "run_dir": str(stage.run_dir), "policy": stage.cfg.policy.source, "env": stage.cfg.env.name,
        "wall_seconds": round(time.time() - stage.started, 1), "adapter": str(stage.run_dir / "adapter")}
    summary.update(returned)
    adapter = stage.run_dir / "adapter"
    if not own and stage.cfg.eval.at_end and (adapter / "adapter_config.json").is_file():
        from agent_lightning.evaluate import evaluate, format_report
        from agent_lightning.serve import player_for

        summary["eval"] = evaluate(stage.cfg, "test", adapter=str(adapter), limit=stage.cfg.eval.limit or None,
                                   play=player_for(stage.cfg))
        log.info("%s", format_report(summary["eval"]))
    rundir.write_json(path, summary)


def baseline_eval(cfg: Config, run_dir: Path, resume: bool) -> dict[str, Any] | None:
    """Test-split report of the policy before training (RUN_DIR/base_eval.json; reused on --resume), when
    `eval.at_end` and `eval.baseline` are on; None otherwise or on processes other than the main one."""
    path = run_dir / "base_eval.json"
    if not (cfg.eval.at_end and cfg.eval.baseline) or not distributed.is_main():
        return None
    if resume and path.is_file():
        return json.loads(path.read_text())
    from agent_lightning.evaluate import evaluate, format_report
    from agent_lightning.serve import player_for

    report = evaluate(cfg, "test", adapter=cfg.policy.init_adapter, limit=cfg.eval.limit or None,
                      play=player_for(cfg))
    log.info("before training:\n%s", format_report(report))
    rundir.write_json(path, report)
    return report
