"""The built-in algorithms, registered like a user's: SFT, GRPO and RFT (TRL trainer stages) and APO (prompts).

    python main_agent_lightning.py --algo sft+grpo          # `algos list` shows them with their config sections

Each is a thin `@algorithm` function over `trainer_stage`, which builds the stage's TRL trainer (train/sft.py,
train/grpo.py, train/rft.py), trains it (resuming from the stage's checkpoint), saves the adapter, writes
summary.json and the reward plot, and evaluates the adapter on the test split (`eval.at_end`). What a stage
receives and must leave is the contract of train/algorithm.py. `apo` searches prompts instead (train/apo.py) and
leaves RUN_DIR/prompt.yaml.

Not covered here: chaining stages and the run directory (train/pipeline.py).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from pathlib import Path
from typing import Any

from agent_lightning import distributed
from agent_lightning.config import Config
from agent_lightning.errors import UserError
from agent_lightning.observe.traces import truncate_after as truncate_traces
from agent_lightning.registry import algorithm
from agent_lightning.train import rundir
from agent_lightning.train.algorithm import Stage

log = logging.getLogger(__name__)


@algorithm("sft", section="sft")
def sft(stage: Stage) -> dict[str, Any]:
    """Supervised fine-tuning (TRL SFTTrainer) on verified reference trajectories and your JSONL sources."""
    return trainer_stage(stage)


@algorithm("grpo", section="grpo")
def grpo(stage: Stage) -> dict[str, Any]:
    """GRPO (TRL GRPOTrainer) on the environment's verified outcomes, rollouts played by our multi-turn loop."""
    return trainer_stage(stage)


@algorithm("rft", section="rft")
def rft(stage: Stage) -> dict[str, Any]:
    """Rejection-sampling fine-tuning: sample episodes, keep the verified successes, SFT on them."""
    return trainer_stage(stage)


@algorithm("apo", section="apo")
def apo(stage: Stage) -> dict[str, Any]:
    """Prompt optimization: instructions + few-shot demonstrations chosen by verified success on dev tasks."""
    from agent_lightning.train.apo import PromptSearch

    return PromptSearch(stage).run()


def trainer_stage(stage: Stage) -> dict[str, Any]:
    """One TRL stage ('sft', 'grpo', or 'rft': sampling, then SFT on the successes) into `stage.run_dir`:
    metrics, traces, adapter, plot, summary.json, and the end-of-stage evaluation."""
    from transformers import set_seed

    from agent_lightning.policy import load_policy, trainable_summary
    from agent_lightning.rewarding import RewardSuite
    from agent_lightning.observe.plots import plot_rewards
    from agent_lightning.observe.callbacks import CurrentIntervalsCallback, MetricsCallback, RichProgressCallback
    from agent_lightning.observe.diagnostics import SignalCallback, SignalDiagnostics

    name, cfg, run_dir, env_cls, checkpoint, callbacks = (stage.name, stage.cfg, stage.run_dir, stage.env_cls,
                                                          stage.checkpoint, stage.callbacks)
    run_dir.mkdir(parents=True, exist_ok=True)
    suite = RewardSuite.from_config(cfg.rewards, env_cls, cfg.env)
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
    all_callbacks = [MetricsCallback(metrics_path, suite.error_counts, suite.env_failures),
                     RichProgressCallback(name.upper()), CurrentIntervalsCallback(), *(callbacks or []),
                     *([stage.stop_callback()] if stage.graceful is not None else [])]
    sampled = None
    if name == "rft":
        from agent_lightning.train.rft import prepare_samples

        cfg, sampled = prepare_samples(cfg, run_dir, model, tokenizer, env_cls, reuse=checkpoint is not None)
    if name in ("sft", "rft"):
        from agent_lightning.train.sft import build_sft_trainer

        trainer = build_sft_trainer(cfg, run_dir, model, tokenizer, env_cls, all_callbacks)
    else:
        from agent_lightning.train.grpo import build_grpo_trainer

        suite.diagnostics = SignalDiagnostics(window=cfg.grpo.signal_window, group_size=cfg.grpo.num_generations,
                                              weights=dict(zip(suite.names, suite.weights)), outcome=suite.names[0])
        trainer = build_grpo_trainer(cfg, run_dir, model, tokenizer, env_cls, suite,
                                     [SignalCallback(suite.diagnostics), *all_callbacks], checkpoint)
    if checkpoint is not None:
        log.info("%s: resuming from %s (step %d)", name, checkpoint, rundir.checkpoint_step(checkpoint))
    with disk_full_is_one_line(run_dir):
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    stage.stopped(trainer.state.global_step)  # a SIGTERM saved checkpoint-N and stops the run here
    trainer.save_model(str(run_dir / "adapter"))  # every process: ZeRO-3 gathers the shards; the main one writes
    errors = distributed.sum_counts(suite.error_counts)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(run_dir / "adapter"))
        plot = plot_rewards(run_dir) if name == "grpo" else None
        summary = write_summary(run_dir, cfg, name, started, result, suite, trainable, total, plot, errors,
                                extra={"rft": sampled} if sampled else None)
    distributed.barrier()  # the adapter and summary.json exist for every process from here on
    if trainer.is_world_process_zero():
        if cfg.eval.at_end and distributed.zero3(trainer):
            log.warning("eval.at_end skipped: DeepSpeed ZeRO-3 shards the weights across processes; run "
                        "`main_agent_lightning.py eval --adapter %s` afterwards.", run_dir / "adapter")
        elif cfg.eval.at_end:
            from agent_lightning.evaluate import evaluate, format_report
            from agent_lightning.serve import player_for

            report = evaluate(cfg, "test", limit=cfg.eval.limit or None, model=trainer.model, tokenizer=tokenizer,
                              adapter=str(run_dir / "adapter"), play=player_for(cfg))
            log.info("%s", format_report(report))
            rundir.write_json(run_dir / "summary.json", {**summary, "eval": report})
    return {}


@contextlib.contextmanager
def disk_full_is_one_line(run_dir: Path) -> Any:
    """A full disk while training (a checkpoint, the metrics) ends the run with one line: free space and resume; the
    checkpoint it cut off is skipped by --resume (rundir.checkpoint_problem), the previous one is whole.
    Not tested by the suite (it would need a file system that fills up); written from errno and the message."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - only a full disk is turned into a line; anything else re-raises
        if getattr(exc, "errno", None) != errno.ENOSPC and "No space left on device" not in str(exc):
            raise
        raise UserError(f"disk full while writing {run_dir} ({getattr(exc, 'filename', None) or type(exc).__name__}); "
                        "free space and run the same command with --resume (the last whole checkpoint is used).") \
            from None


def write_summary(run_dir: Path, cfg: Config, algo: str, started: float, result: Any, suite: Any,
                  trainable: int, total: int, plot: Path | None, errors: dict[str, int] | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    logged = rundir.read_jsonl(run_dir / "metrics.jsonl")
    rows = [r for r in logged if r.get("reward") is not None]
    head, tail = rows[: max(1, len(rows) // 5)], rows[-max(1, len(rows) // 5):]
    losses = [r for r in logged if r.get("loss") is not None]
    evals = [r["eval_loss"] for r in logged if r.get("eval_loss") is not None]

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
        "env_failures": dict(suite.env_failures),
        "signal_warnings": list(suite.diagnostics.ever) if suite.diagnostics is not None else [],
        "trainable_params": trainable,
        "total_params": total,
        "adapter": str(run_dir / "adapter"),
        "plot": str(plot) if plot else None,
        **(extra or {}),
    }
    rundir.write_json(run_dir / "summary.json", summary)
    return summary
