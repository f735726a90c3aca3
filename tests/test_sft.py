"""SFT stage and the sft+grpo chain, on the tiny Mistral (Mistral v0.3 format), end to end through the CLI."""

import json

import pytest

from agent_lightning.config import load_config
from conftest import run_cli

pytestmark = pytest.mark.slow  # trains or loads real models: `pytest -m 'not slow'` skips it


@pytest.fixture(scope="module")
def chained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "chain"
    result = run_cli("--algo", "sft+grpo", "--config", "configs/tiny.yaml", "--max-steps", "2",
                     "--output-dir", str(run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir


def test_sft_then_grpo_in_one_run_directory(chained):
    summary = json.loads((chained / "summary.json").read_text())
    assert summary["algo"] == "sft+grpo" and set(summary["stages"]) == {"sft", "grpo"}
    assert summary["stages"]["sft"]["steps"] == 2 and summary["stages"]["sft"]["loss_last"] is not None
    assert summary["stages"]["grpo"]["steps"] == 2 and summary["stages"]["grpo"]["reward_last_fifth"] is not None
    for stage in ("sft", "grpo"):
        assert (chained / stage / "adapter" / "adapter_config.json").exists()
        assert (chained / stage / "metrics.jsonl").read_text().strip()
    assert summary["adapter"] == str(chained / "adapter") and summary["final_stage"] == "grpo"
    final, grpo = chained / "adapter", chained / "grpo" / "adapter"  # the final stage's adapter, where users look
    assert sorted(p.name for p in final.iterdir()) == sorted(p.name for p in grpo.iterdir())
    for f in grpo.iterdir():
        assert (final / f.name).read_bytes() == f.read_bytes(), f.name


def test_sft_grpo_reports_base_sft_and_grpo_success_with_a_chart(chained):
    summary = json.loads((chained / "summary.json").read_text())
    rows = summary["comparison"]
    assert [r["policy"] for r in rows] == ["base", "after SFT", "after SFT+GRPO"]
    assert summary["base_eval"]["adapter"] is None and summary["base_eval"]["tasks"] == rows[0]["tasks"] > 0
    assert rows[1]["success_rate"] == summary["stages"]["sft"]["eval"]["success_rate"]
    assert rows[2]["seconds"] == summary["stages"]["grpo"]["wall_seconds"]
    assert (chained / "success.png").stat().st_size > 1000
    assert json.loads((chained / "base_eval.json").read_text()) == summary["base_eval"]


def test_grpo_starts_from_the_sft_adapter(chained):
    """The GRPO stage's first forward uses the SFT weights: its adapter differs from SFT's only by 2 GRPO steps,
    and it is far from a fresh LoRA (whose B matrices are zero)."""
    from safetensors.torch import load_file

    sft = load_file(str(chained / "sft" / "adapter" / "adapter_model.safetensors"))
    grpo = load_file(str(chained / "grpo" / "adapter" / "adapter_model.safetensors"))
    b_keys = [k for k in sft if "lora_B" in k]
    assert b_keys and any(sft[k].abs().sum() > 0 for k in b_keys)  # SFT trained B
    assert set(sft) == set(grpo)
    assert all((grpo[k] - sft[k]).abs().max() < 0.1 for k in sft)


def test_resume_skips_a_finished_stage(chained):
    before = (chained / "sft" / "summary.json").stat().st_mtime
    result = run_cli("--algo", "sft+grpo", "--config", "configs/tiny.yaml", "--set", "sft.max_steps=2",
                     "--set", "grpo.max_steps=3", "--output-dir", str(chained), "--resume")
    assert result.returncode == 0, result.stderr
    assert (chained / "sft" / "summary.json").stat().st_mtime == before
    assert json.loads((chained / "summary.json").read_text())["stages"]["grpo"]["steps"] == 3


def test_tool_demonstrations_train_only_on_assistant_tokens(tiny_policy, tmp_path):
    """Prompt and tool-result tokens are masked out of the loss; the assistant's calls and answer are kept."""
    from agent_lightning.registry import ENVIRONMENTS, discover
    from agent_lightning.train.sft import build_sft_trainer

    discover()
    model, tokenizer = tiny_policy
    cfg = load_config("configs/tiny.yaml", ["env.name=filesystem", "sft.demonstrations=6", "sft.held_out_fraction=0"])
    trainer = build_sft_trainer(cfg, tmp_path, model, tokenizer, ENVIRONMENTS.get("filesystem").obj, [])
    batch = trainer.data_collator([trainer.train_dataset[0]])  # what the loss sees: labels -100 are masked
    ids, mask = batch["input_ids"][0].tolist(), (batch["labels"][0] != -100).tolist()
    kept = tokenizer.decode([t for t, m in zip(ids, mask) if m])
    dropped = tokenizer.decode([t for t, m in zip(ids, mask) if not m])
    assert "[TOOL_CALLS]" in kept and '"name":' in kept  # the calls the policy must learn to write
    assert "[TOOL_RESULTS]" in dropped and "[INST]" in dropped and "[AVAILABLE_TOOLS]" in dropped
    assert "[TOOL_RESULTS]" not in kept and "[INST]" not in kept
    assert 0 < sum(mask) < len(mask) / 2


def test_tool_demonstrations_are_trained_exactly_as_the_policy_sees_them(tiny_policy, tmp_path):
    """What SFT trains on is the chat template's rendering of the demonstration itself: no tool argument or tool
    schema padded with nulls from other calls (a `datasets` table merges them into one struct type)."""
    from agent_lightning.registry import ENVIRONMENTS, discover
    from agent_lightning.train.sft import build_sft_trainer, sft_examples

    discover()
    model, tokenizer = tiny_policy
    env_cls = ENVIRONMENTS.get("filesystem").obj
    cfg = load_config("configs/tiny.yaml", ["env.name=filesystem", "sft.demonstrations=12", "sft.held_out_fraction=0"])
    trainer = build_sft_trainer(cfg, tmp_path, model, tokenizer, env_cls, [])
    examples, _ = sft_examples(cfg, env_cls)
    for example, row in zip(examples, trainer.train_dataset):
        rendered = tokenizer.apply_chat_template(example["messages"], tools=example["tools"], tokenize=False)
        assert tokenizer.decode(row["input_ids"]) == tokenizer.decode(tokenizer(rendered, add_special_tokens=False)[
            "input_ids"][:len(row["input_ids"])])
        assert "null" not in tokenizer.decode(row["input_ids"])


def test_grpo_warm_start_runs_sft_first(tmp_path):
    run_dir = tmp_path / "warm"
    result = run_cli("--algo", "grpo", "--config", "configs/tiny.yaml", "--max-steps", "1", "--set",
                     "grpo.warm_start_sft=true", "--set", "eval.at_end=false", "--output-dir", str(run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warm-starts the policy" in result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["stages"]) == {"sft", "grpo"} and summary["stages"]["sft"]["steps"] == 1
    assert (run_dir / "grpo" / "adapter" / "adapter_config.json").exists()
