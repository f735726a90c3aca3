"""Run a training algorithm end to end into a run directory (what `--algo` does).

    run_training(cfg, algo="grpo", output_dir=None, resume=False)

Steps: pick/create the run directory, write config.yaml, load the policy, build the stage's TRL trainer,
train (resuming from the latest checkpoint-* when asked), save the final adapter, write summary.json and the
reward plot. Metrics lines and traces after the resumed checkpoint are dropped first, so each step is logged
once.

Under `accelerate launch` every process runs this: the main process picks the run directory and broadcasts it,
and only it writes config.yaml, metrics, the adapter, plots and summaries (distributed.py); the others
train their share of each batch and wait where they need its files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from agent_lightning import distributed
from agent_lightning.config import Config
from agent_lightning.errors import UserError
from agent_lightning.observe.traces import truncate_after as truncate_traces
from agent_lightning.train import rundir

log = logging.getLogger(__name__)

ALGOS = ("sft", "grpo", "rft", "sft+grpo", "sft+rft")


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
        checkpoint = rundir.latest_checkpoint(run_dir)
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
    checkpoint."""
    if algo not in ALGOS:
        raise UserError(f"--algo {algo}: expected one of {', '.join(ALGOS)}.")
    from agent_lightning.registry import discover
    from agent_lightning.rewarding import RewardSuite
    from agent_lightning.envs import environment_class

    discover()
    env_cls = environment_class(cfg)  # unknown env or reward: fail here, before loading weights
    RewardSuite.from_config(cfg.rewards, env_cls)
    run_dir, checkpoint = resolve_run_dir(cfg, algo, output_dir, resume)
    distributed.quiet_other_processes()
    if distributed.is_main():
        rundir.write_config(run_dir, cfg, algo)
    log.info("writing the run to %s", run_dir)
    if algo in ("grpo", "rft") and cfg.grpo.warm_start_sft and not cfg.policy.init_adapter:
        log.warning("grpo.warm_start_sft: no policy.init_adapter, so a short SFT (%d steps) warm-starts the policy "
                    "first, into %s/sft, then %s into %s/%s (--set grpo.warm_start_sft=false to skip)",
                    cfg.sft.max_steps, run_dir, algo.upper(), run_dir, algo)
        algo = f"sft+{algo}"
    if "+" not in algo:
        train_stage(algo, cfg, run_dir, env_cls, checkpoint, callbacks)
        return run_dir
    base = baseline_eval(cfg, run_dir, resume)
    stages = {}
    for stage in algo.split("+"):
        stage_dir = run_dir / stage
        if stage != "sft":
            cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, init_adapter=str(run_dir / "sft" / "adapter")))
        wanted = {"sft": cfg.sft.max_steps, "grpo": cfg.grpo.max_steps}.get(stage, 0)  # rft: its summary is enough
        done = stage_dir / "summary.json"
        if resume and done.exists() and json.loads(done.read_text()).get("steps", 0) >= wanted:
            log.info("%s: already done in %s; skipping", stage, stage_dir)
        else:
            stage_checkpoint = rundir.latest_checkpoint(stage_dir) if resume and stage_dir.exists() else None
            train_stage(stage, cfg, stage_dir, env_cls, stage_checkpoint, callbacks)
        stages[stage] = json.loads((stage_dir / "summary.json").read_text())
    if distributed.is_main():
        from agent_lightning.observe.compare import format_table, plot_success, stage_rows

        final_adapter = rundir.publish_adapter(run_dir / stage / "adapter", run_dir / "adapter")
        rows = stage_rows(base, stages)
        plot = plot_success(rows, run_dir / "success.png", f"{cfg.policy.source} on {cfg.env.name}") if rows else None
        rundir.write_json(run_dir / "summary.json", {"algo": algo, "run_dir": str(run_dir), "stages": stages,
                                                     "base_eval": base, "comparison": rows,
                                                     "plot": str(plot) if plot else None,
                                                     "final_stage": stage, "adapter": str(final_adapter)})
        if rows:
            print(format_table(rows) + (f"\nchart: {plot}" if plot else ""), flush=True)
    return run_dir


def baseline_eval(cfg: Config, run_dir: Path, resume: bool) -> dict[str, Any] | None:
    """Test-split report of the policy before training (RUN_DIR/base_eval.json; reused on --resume), when
    `eval.at_end` and `eval.baseline` are on; None otherwise or on processes other than the main one."""
    path = run_dir / "base_eval.json"
    if not (cfg.eval.at_end and cfg.eval.baseline) or not distributed.is_main():
        return None
    if resume and path.is_file():
        return json.loads(path.read_text())
    from agent_lightning.evaluate import evaluate, format_report

    report = evaluate(cfg, "test", adapter=cfg.policy.init_adapter, limit=cfg.eval.limit or None)
    log.info("before training:\n%s", format_report(report))
    rundir.write_json(path, report)
    return report


def train_stage(stage: str, cfg: Config, run_dir: Path, env_cls: type, checkpoint: Path | None,
                callbacks: list[Any] | None) -> None:
    """One TRL stage ('sft', 'grpo', or 'rft': sampling, then SFT on the successes) into `run_dir`: metrics,
    traces, adapter, plot, summary."""
    from transformers import set_seed

    from agent_lightning.policy import load_policy, trainable_summary
    from agent_lightning.rewarding import RewardSuite
    from agent_lightning.observe.plots import plot_rewards
    from agent_lightning.observe.callbacks import MetricsCallback, RichProgressCallback
    from agent_lightning.observe.diagnostics import SignalCallback, SignalDiagnostics

    run_dir.mkdir(parents=True, exist_ok=True)
    suite = RewardSuite.from_config(cfg.rewards, env_cls)
    metrics_path = run_dir / "metrics.jsonl"
    suite.trace_dir = run_dir / "traces"
    if distributed.is_main() and checkpoint is not None:
        rundir.truncate_metrics(metrics_path, rundir.checkpoint_step(checkpoint))
        truncate_traces(suite.trace_dir, rundir.checkpoint_step(checkpoint))
    elif distributed.is_main():
        metrics_path.unlink(missing_ok=True)
        truncate_traces(suite.trace_dir, -1)
    distributed.barrier()  # nobody logs or traces a step before what came after the checkpoint is gone

    set_seed(cfg.run.seed)
    started = time.time()
    with distributed.main_process_first():  # a converted/built policy is cached once, by the main process
        model, tokenizer = load_policy(cfg.policy)
    trainable, total = trainable_summary(model)
    all_callbacks = [MetricsCallback(metrics_path, suite.error_counts), RichProgressCallback(stage.upper()),
                     *(callbacks or [])]
    sampled = None
    if stage == "rft":
        from agent_lightning.train.rft import prepare_samples

        cfg, sampled = prepare_samples(cfg, run_dir, model, tokenizer, env_cls, reuse=checkpoint is not None)
    if stage in ("sft", "rft"):
        from agent_lightning.train.sft import build_sft_trainer

        trainer = build_sft_trainer(cfg, run_dir, model, tokenizer, env_cls, all_callbacks)
    else:
        from agent_lightning.train.grpo import build_grpo_trainer

        suite.diagnostics = SignalDiagnostics(window=cfg.grpo.signal_window, group_size=cfg.grpo.num_generations,
                                              weights=dict(zip(suite.names, suite.weights)), outcome=suite.names[0])
        trainer = build_grpo_trainer(cfg, run_dir, model, tokenizer, env_cls, suite,
                                     [SignalCallback(suite.diagnostics), *all_callbacks], checkpoint)
    if checkpoint is not None:
        log.info("%s: resuming from %s (step %d)", stage, checkpoint, rundir.checkpoint_step(checkpoint))
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    trainer.save_model(str(run_dir / "adapter"))  # every process: ZeRO-3 gathers the shards; the main one writes
    errors = distributed.sum_counts(suite.error_counts)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(run_dir / "adapter"))
        plot = plot_rewards(run_dir) if stage == "grpo" else None
        summary = write_summary(run_dir, cfg, stage, started, result, suite, trainable, total, plot, errors,
                                extra={"rft": sampled} if sampled else None)
    distributed.barrier()  # the adapter and summary.json exist for every process from here on
    if trainer.is_world_process_zero():
        if cfg.eval.at_end and distributed.zero3(trainer):
            log.warning("eval.at_end skipped: DeepSpeed ZeRO-3 shards the weights across processes; run "
                        "`main_agent_lightning.py eval --adapter %s` afterwards.", run_dir / "adapter")
        elif cfg.eval.at_end:
            from agent_lightning.evaluate import evaluate, format_report

            report = evaluate(cfg, "test", limit=cfg.eval.limit or None, model=trainer.model, tokenizer=tokenizer, adapter=str(run_dir / "adapter"))
            log.info("%s", format_report(report))
            rundir.write_json(run_dir / "summary.json", {**summary, "eval": report})


def write_summary(run_dir: Path, cfg: Config, algo: str, started: float, result: Any, suite: Any,
                  trainable: int, total: int, plot: Path | None, errors: dict[str, int] | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    rows = [r for r in rundir.read_jsonl(run_dir / "metrics.jsonl") if r.get("reward") is not None]
    head, tail = rows[: max(1, len(rows) // 5)], rows[-max(1, len(rows) // 5):]
    losses = [r for r in rundir.read_jsonl(run_dir / "metrics.jsonl") if r.get("loss") is not None]
    evals = [r["eval_loss"] for r in rundir.read_jsonl(run_dir / "metrics.jsonl") if r.get("eval_loss") is not None]

    def mean(values: list[float]) -> float | None:
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    summary = {
        "algo": algo,
        "run_dir": str(run_dir),
        "policy": cfg.policy.source,
        "env": cfg.env.name,
        "rewards": {name: w for name, w in zip(suite.names, suite.weights)},
        "steps": result.global_step,
        "wall_seconds": round(time.time() - started, 1),
        "train_runtime_seconds": result.metrics.get("train_runtime"),
        "reward_first_fifth": mean([r["reward"] for r in head]),
        "reward_last_fifth": mean([r["reward"] for r in tail]),
        "frac_reward_zero_std_mean": mean([r.get("frac_reward_zero_std") for r in rows]),
        "skipped_zero_advantage_mean": mean([r.get("skipped_zero_advantage") for r in rows]),
        "step_seconds_mean": mean([r.get("step_seconds") for r in rows]),
        "tokens_per_second_mean": mean([r.get("tokens_per_second") for r in rows]),
        "loss_first": losses[0]["loss"] if losses else None,
        "loss_last": losses[-1]["loss"] if losses else None,
        "eval_loss_last": evals[-1] if evals else None,
        "reward_errors": dict(suite.error_counts) if errors is None else errors,
        "signal_warnings": list(suite.diagnostics.ever) if suite.diagnostics is not None else [],
        "trainable_params": trainable,
        "total_params": total,
        "adapter": str(run_dir / "adapter"),
        "plot": str(plot) if plot else None,
        **(extra or {}),
    }
    rundir.write_json(run_dir / "summary.json", summary)
    return summary
