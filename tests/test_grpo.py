"""The GRPO spine end to end through the CLI, on the tiny Mistral (seconds)."""

import json

import pytest
import yaml

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains or loads real models: `pytest -m 'not slow'` skips it

REQUIRED_METRICS = {"step", "reward", "reward_std", "rewards/exact_answer/mean", "frac_reward_zero_std",
                    "step_seconds", "loss"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    result = run_cli("--algo", "grpo", "--config", "configs/tiny.yaml", "--max-steps", "2",
                     "--output-dir", str(run_dir), "--set", "grpo.report_to=tensorboard")
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir, result


def test_run_directory_is_complete(tiny_run):
    run_dir, result = tiny_run
    assert f"run directory: {run_dir}" in result.stdout
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "reward.png", "adapter/adapter_config.json",
                 "adapter/adapter_model.safetensors", "checkpoint-2/trainer_state.json"):
        assert (run_dir / name).exists(), name
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["algo"] == "grpo" and config["grpo"]["max_steps"] == 2
    assert config["policy"]["source"] == "tiny-mistral"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert REQUIRED_METRICS <= set(row), REQUIRED_METRICS - set(row)
    assert "tokens_per_second" in rows[1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["rewards"] == {"exact_answer": 1.0}
    assert summary["reward_errors"] == {}
    assert list(run_dir.rglob("events.out.tfevents.*")), "tensorboard events missing"
    assert (run_dir / "reward.png").read_bytes()[:4] == b"\x89PNG"


def test_adapter_loads_with_peft_and_generates(tiny_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agent_lightning.config import PolicySection
    from agent_lightning.policy import resolve_source

    run_dir, _ = tiny_run
    base = AutoModelForCausalLM.from_pretrained(resolve_source(PolicySection(source="tiny-mistral")))
    model = PeftModel.from_pretrained(base, str(run_dir / "adapter"))
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "adapter")
    batch = tokenizer.apply_chat_template([{"role": "user", "content": "What is 1 + 1?"}],
                                          add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == batch["input_ids"].shape[1] + 4


def test_resume_continues_the_step_counter_without_duplicates(tiny_run):
    run_dir, _ = tiny_run
    # a line written after the checkpoint (the crash lost its step): resume must drop it, not duplicate it
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 3, "reward": 123.0}) + "\n")
    result = run_cli("--algo", "grpo", "--config", "configs/tiny.yaml", "--max-steps", "3",
                     "--output-dir", str(run_dir), "--resume")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[-1]["reward"] != 123.0
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 3


def test_existing_checkpoints_are_not_overwritten_without_resume(tiny_run):
    run_dir, _ = tiny_run
    result = run_cli("--algo", "grpo", "--config", "configs/tiny.yaml", "--output-dir", str(run_dir))
    assert result.returncode == 2 and "add --resume" in result.stderr


def test_list_commands():
    result = run_cli("env", "list", "--json")
    assert result.returncode == 0
    envs = json.loads(result.stdout)
    assert {"name": "arithmetic", "tools": []}.items() <= next(e for e in envs if e["name"] == "arithmetic").items()
    result = run_cli("rewards", "list")
    assert result.returncode == 0 and "exact_answer" in result.stdout

