"""Two real training processes under `accelerate launch` (DDP over gloo on CPU), on the tiny Mistral.

    pytest tests/test_distributed.py        (~50 s + ~30 s for ZeRO-3 on 2 cores)

What it checks: one run directory written by the main process only (config, metrics once per step, adapter,
plot, summary), metrics gathered over both processes, each process tracing its own share of each batch in a
tool environment, and no sandbox workspaces or uid locks left behind. `accelerate launch --cpu` starts a single
process, so the shipped DDP recipe (configs/accelerate/ddp.yaml) is what launches the two: without GPUs its
processes train on the CPU over gloo. The ZeRO-3 recipe runs for real too (DeepSpeed's CPU backend).
Not covered: NCCL and GPU kernels, ZeRO offload (no GPU here; its config is checked in
test_accelerate_configs.py).
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.slow  # trains or loads real models: `pytest -m 'not slow'` skips it


def accelerate_launch(*args: str, tmp_dir, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmp_dir), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "accelerate.commands.launch", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("tmp")
    plugins = REPO / "tests" / "assets" / "plugins"
    config = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    config["rewards"] = [{"name": "task_hash"}, {"name": "always_raises"}]
    config_path = tmp_dir / "ddp.yaml"
    config_path.write_text(yaml.safe_dump(config))
    run_dir = tmp_path_factory.mktemp("runs") / "ddp"
    result = accelerate_launch(
        "--config_file", "configs/accelerate/ddp.yaml", "--num_processes", "2",
        "main_agent_lightning.py", "--algo", "grpo", "--config", str(config_path), "--plugin-dir", str(plugins),
        "--max-steps", "2", "--output-dir", str(run_dir), "--set", "env.name=filesystem",
        "--set", "grpo.max_completion_length=16", "--set", "eval.limit=4", tmp_dir=tmp_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir, tmp_dir, result


def test_two_processes_write_one_run_directory(two_process_run):
    run_dir, _, result = two_process_run
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "reward.png", "adapter/adapter_model.safetensors",
                 "checkpoint-2/trainer_state.json"):
        assert (run_dir / name).exists(), name
    assert (result.stdout + result.stderr).count("writing the run to") == 1
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # once per step, not once per process
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2 and "eval" in summary


def test_metrics_are_gathered_from_both_processes(two_process_run):
    from agent_lightning.observe.traces import load_step

    run_dir, _, _ = two_process_run
    traces = sorted(p.name for p in (run_dir / "traces").iterdir())
    assert traces == ["step-00001.jsonl", "step-00001.rank1.jsonl", "step-00002.jsonl", "step-00002.rank1.jsonl"]
    rows = {r["step"]: r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())}
    for step in (1, 2):
        _, records = load_step(run_dir, step)
        assert len(records) == 8 and len({r["task_id"] for r in records}) == 4  # 2 prompts x 2 samples each
        main_only = [r["reward"] for r in records[:4]]
        both = [r["reward"] for r in records]
        assert rows[step]["reward"] == pytest.approx(sum(both) / 8)  # TRL's gathered mean over both processes
        assert sum(main_only) / 4 != pytest.approx(sum(both) / 8)  # (and not the main process's share alone)
        # isolated failures are counted per reward call: one per process per step, summed over both processes
        assert rows[step]["reward_errors/always_raises"] == 2 * step
    assert json.loads((run_dir / "summary.json").read_text())["reward_errors"] == {"always_raises": 4}


def test_no_sandbox_left_behind(two_process_run):
    _, tmp_dir, _ = two_process_run
    leftovers = [p.name for p in tmp_dir.iterdir() if p.name.startswith("agent-lightning-ws")]
    assert leftovers == []
    locks = tmp_dir / "agent-lightning-uids"
    assert not locks.exists() or list(locks.iterdir()) == []


def test_each_process_has_its_own_sandbox_root(tmp_path):
    code = "from agent_lightning.sandbox import workspace; print(workspace._base_dir())"
    roots = []
    for rank in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "RANK": rank, "TMPDIR": str(tmp_path)},
                             capture_output=True, text=True, check=True).stdout.strip()
        roots.append(os.path.basename(out))
    assert roots[0].startswith("agent-lightning-ws-rank0-") and roots[1].startswith("agent-lightning-ws-rank1-")
    assert list(tmp_path.iterdir()) == []  # removed when each process exited


def test_deepspeed_zero3_shards_and_saves_the_whole_adapter(tmp_path):
    """The ZeRO-3 recipe for real (DeepSpeed on CPU, 2 processes): every process joins the adapter save (ZeRO-3
    gathers the shards), the main one writes it whole, and the end-of-stage evaluation is skipped with a hint."""
    from safetensors.torch import load_file

    run_dir = tmp_path / "zero3"
    result = accelerate_launch(
        "--config_file", "configs/accelerate/zero3.yaml", "--num_processes", "2",
        "main_agent_lightning.py", "--algo", "grpo", "--config", "configs/tiny.yaml", "--max-steps", "2",
        "--output-dir", str(run_dir), tmp_dir=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "eval.at_end skipped: DeepSpeed ZeRO-3" in result.stdout + result.stderr
    weights = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    assert sum(w.numel() for w in weights.values()) == 16384  # all of LoRA r=8 on 7 x 2 layers, not shards
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert (run_dir / "checkpoint-2" / "global_step2").is_dir()  # a DeepSpeed checkpoint, resumable
