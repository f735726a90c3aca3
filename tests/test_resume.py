"""Stop a real training process (SIGKILL after a checkpoint, SIGTERM mid-run), resume it, and compare with a run
never stopped; and one writer per run directory.

    pytest tests/test_resume.py        (~40 s per test on 2 cores)

GRPO: the resumed run must log each step exactly once (metrics.jsonl and traces), and end with the adapter, the
learning-rate schedule and the sampled completions of an uninterrupted run with the same seed: that holds only
if the step counter, optimizer, scheduler, RNG and data order all came back from the checkpoint. sft+grpo: a kill
inside the SFT stage resumes that stage, then runs GRPO. Not covered: a kill in the middle of writing a
checkpoint (the Trainer writes trainer_state.json last, and --resume only takes checkpoints that have it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from agent_lightning.observe.traces import read_jsonl
from conftest import REPO, run_cli

pytestmark = pytest.mark.slow  # trains or loads real models: `pytest -m 'not slow'` skips it

PLUGINS = str(REPO / "tests" / "assets" / "plugins")


def _config(tmp_path: Path) -> str:
    """tiny.yaml with a reward that varies between samples (so the optimizer has real moments to restore) and a
    decaying learning rate (so the scheduler's state shows)."""
    config = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    config["rewards"] = [{"name": "vowel_share"}]
    config["grpo"].update(lr_scheduler_type="linear", max_completion_length=12)
    config["eval"] = {"at_end": False}
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _train_args(config: str, algo: str, steps: int, run_dir: Path, sft_steps: int | None = None) -> list[str]:
    return ["--algo", algo, "--config", config, "--plugin-dir", PLUGINS, "--set", f"grpo.max_steps={steps}",
            "--set", f"sft.max_steps={sft_steps or steps}", "--save-steps", "2", "--output-dir", str(run_dir)]


def kill_after_checkpoint(args: list[str], checkpoints: Path, before_step: int, timeout: float = 180) -> int:
    """Start training, SIGKILL it as soon as a checkpoint-N (N < before_step) is complete; return N."""
    proc = subprocess.Popen([sys.executable, str(REPO / "main_agent_lightning.py"), *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done = [int(p.parent.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*/trainer_state.json")]
            if done:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                assert max(done) < before_step, f"killed too late: checkpoint-{max(done)}"
                return max(done)
            time.sleep(0.02)
        pytest.fail(f"no checkpoint before the run ended (rc {proc.poll()}): {proc.stderr.read()[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def trace_steps(run_dir: Path) -> dict[int, list[dict]]:
    out = {}
    for path in sorted((run_dir / "traces").glob("step-*.jsonl")):
        out[int(path.name[5:10])] = [json.loads(line) for line in path.read_text().splitlines()]
    return out


def adapter(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


def test_grpo_killed_and_resumed_matches_an_uninterrupted_run(tmp_path):
    config, steps = _config(tmp_path), 4
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    # the uninterrupted run trains alongside the one to be killed (both seeded; neither sees the other)
    uninterrupted = subprocess.Popen([sys.executable, str(REPO / "main_agent_lightning.py"),
                                      *_train_args(config, "grpo", steps, reference)], cwd=REPO,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        killed_at = kill_after_checkpoint(_train_args(config, "grpo", steps, resumed), resumed, before_step=steps)
    finally:
        _, err = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, err[-2000:]
    assert not (resumed / "summary.json").exists()
    result = run_cli(*_train_args(config, "grpo", steps, resumed), "--resume")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming from {resumed / f'checkpoint-{killed_at}'}" in result.stdout + result.stderr

    assert_same_as_uninterrupted(resumed, reference, steps)


def assert_same_as_uninterrupted(resumed: Path, reference: Path, steps: int) -> None:
    rows, ref_rows = metrics(resumed), metrics(reference)
    assert [r["step"] for r in rows] == list(range(1, steps + 1))  # each step exactly once
    for row, ref in zip(rows, ref_rows):
        assert row["learning_rate"] == pytest.approx(ref["learning_rate"])  # scheduler state
        assert row["reward"] == pytest.approx(ref["reward"], abs=1e-6)  # RNG + data order -> same samples
        assert row["loss"] == pytest.approx(ref["loss"], abs=1e-5)
    traces, ref_traces = trace_steps(resumed), trace_steps(reference)
    assert sorted(traces) == list(range(1, steps + 1)) and all(len(t) == 4 for t in traces.values())
    assert [[r["completion"] for r in traces[s]] for s in traces] == [[r["completion"] for r in ref_traces[s]]
                                                                     for s in ref_traces]
    weights, ref_weights = adapter(resumed), adapter(reference)
    assert any(w.abs().sum() > 0 for k, w in ref_weights.items() if "lora_B" in k)  # it did learn something
    for key, value in ref_weights.items():  # optimizer moments restored: the same weights at the end
        assert (weights[key] - value).abs().max().item() < 1e-5, key
    assert json.loads((resumed / "summary.json").read_text())["steps"] == steps


def terminate_after_step(args: list[str], run_dir: Path, step: int, timeout: float = 180) -> subprocess.CompletedProcess:
    """Start training, send SIGTERM once `step` is logged in metrics.jsonl, and wait for the run to end."""
    proc = subprocess.Popen([sys.executable, str(REPO / "main_agent_lightning.py"), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r.get("step", 0) >= step for r in read_jsonl(run_dir / "metrics.jsonl")):  # skips a half-written line
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigterm_saves_at_the_next_step_and_resume_matches_an_uninterrupted_run(tmp_path):
    config, steps = _config(tmp_path), 4
    reference, stopped = tmp_path / "reference", tmp_path / "stopped"
    args = _train_args(config, "grpo", steps, stopped) + ["--save-steps", "100"]  # no periodic checkpoint to fall back on
    uninterrupted = subprocess.Popen([sys.executable, str(REPO / "main_agent_lightning.py"),
                                      *_train_args(config, "grpo", steps, reference)], cwd=REPO,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        result = terminate_after_step(args, stopped, step=1)
    finally:
        _, err = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, err[-2000:]
    assert result.returncode == 143, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    saved = sorted(int(p.name.split("-")[1]) for p in stopped.glob("checkpoint-*"))
    assert saved and saved[-1] < steps and "Traceback" not in result.stderr
    assert last == (f"stopped by SIGTERM after saving {stopped / f'checkpoint-{saved[-1]}'}; continue with the same "
                    "command and --resume.")
    assert not (stopped / "summary.json").exists() and not (stopped / ".lock").exists()
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_as_uninterrupted(stopped, reference, steps)


def test_sigterm_inside_sft_of_a_chain_resumes_sft_then_runs_grpo(tmp_path):
    config, run_dir = _config(tmp_path), tmp_path / "chain"
    args = _train_args(config, "sft+grpo", 4, run_dir, sft_steps=6) + ["--save-steps", "100"]
    result = terminate_after_step(args, run_dir / "sft", step=2)
    assert result.returncode == 143, result.stderr[-2000:]
    assert "stopped by SIGTERM after saving" in result.stderr.strip().splitlines()[-1]
    assert not (run_dir / "grpo").exists() and not (run_dir / "sft" / "summary.json").exists()
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [r["step"] for r in metrics(run_dir / "sft") if "loss" in r] == list(range(1, 7))
    assert [r["step"] for r in metrics(run_dir / "grpo")] == [1, 2, 3, 4]


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_whole_one(tmp_path):
    config, steps = _config(tmp_path), 4
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert run_cli(*_train_args(config, "grpo", steps, reference)).returncode == 0
    killed_at = kill_after_checkpoint(_train_args(config, "grpo", steps, resumed), resumed, before_step=steps)
    torn = resumed / f"checkpoint-{killed_at + 1}"  # a newer checkpoint whose weights were cut off mid-write
    shutil.copytree(resumed / f"checkpoint-{killed_at}", torn)
    state = json.loads((torn / "trainer_state.json").read_text())
    (torn / "trainer_state.json").write_text(json.dumps({**state, "global_step": killed_at + 1}))
    weights = torn / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:300])
    result = run_cli(*_train_args(config, "grpo", steps, resumed), "--resume")
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stdout + result.stderr
    assert f"skipping {torn}: adapter_model.safetensors is damaged" in log
    assert f"resuming from {resumed / f'checkpoint-{killed_at}'}" in log
    assert_same_as_uninterrupted(resumed, reference, steps)


def test_a_second_run_on_a_directory_in_use_exits_2_naming_the_holder(tmp_path):
    config, run_dir = _config(tmp_path), tmp_path / "busy"
    first = subprocess.Popen([sys.executable, str(REPO / "main_agent_lightning.py"),
                              *_train_args(config, "grpo", 40, run_dir)], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / ".lock").is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run_cli(*_train_args(config, "grpo", 40, run_dir))
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert f"is in use by pid {first.pid} on host" in second.stderr.strip().splitlines()[-1]
    finally:
        first.kill()
        first.wait()


def test_sft_grpo_killed_inside_sft_resumes_sft_then_runs_grpo(tmp_path):
    config, run_dir = _config(tmp_path), tmp_path / "chain"
    args = _train_args(config, "sft+grpo", 4, run_dir, sft_steps=6)
    killed_at = kill_after_checkpoint(args, run_dir / "sft", before_step=6)
    assert not (run_dir / "grpo").exists()
    result = run_cli(*args, "--resume")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming from {run_dir / 'sft' / f'checkpoint-{killed_at}'}" in result.stdout + result.stderr
    assert [r["step"] for r in metrics(run_dir / "sft") if "loss" in r] == list(range(1, 7))
    assert [r["step"] for r in metrics(run_dir / "grpo")] == [1, 2, 3, 4]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stages"]["sft"]["steps"] == 6 and summary["stages"]["grpo"]["steps"] == 4


def test_resume_takes_the_new_save_interval(tmp_path):
    """The Trainer restores its intervals from the checkpoint; a run resumed with --save-steps 1 must save each
    step (observe/callbacks.py CurrentIntervalsCallback), not every 2 as the interrupted run did."""
    config, run_dir = _config(tmp_path), tmp_path / "run"
    first = run_cli(*_train_args(config, "grpo", 2, run_dir))
    assert first.returncode == 0 and (run_dir / "checkpoint-2").is_dir(), first.stderr[-2000:]
    resumed = run_cli(*[a if a != "2" else "1" for a in _train_args(config, "grpo", 4, run_dir)], "--resume",
                      "--set", "grpo.save_total_limit=5")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert {p.name for p in run_dir.glob("checkpoint-*")} >= {"checkpoint-2", "checkpoint-3", "checkpoint-4"}
