"""QLoRA on the Mistral path, end to end on CPU: SFT then GRPO steps with the tiny Mistral in 4-bit NF4.

    pytest tests/test_qlora.py        (~40 s on 2 cores)

configs/tiny.yaml with policy.quantization=nf4 and policy.dtype=bfloat16 (the settings of
configs/mistral_qlora.yaml) through the real CLI: SFT must train the LoRA weights on top of the 4-bit base, and
GRPO (which generates in eval mode before each update: the bitsandbytes CPU repacking trap, see policy.py) must
still move them. A reward that differs between samples gives GRPO a gradient. Not covered: GPU kernels, the 7B
model itself (its memory is estimated in docs/scaling.md, checked by tests/test_footprint.py).
"""

import json

import pytest
import yaml

from conftest import REPO, run_cli

pytestmark = pytest.mark.slow  # trains or loads real models: `pytest -m 'not slow'` skips it


@pytest.fixture(scope="module")
def qlora_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "qlora"
    result = run_cli("--algo", "sft+grpo", "--config", "configs/tiny.yaml", "--max-steps", "2",
                     "--plugin-dir", str(REPO / "tests" / "assets" / "plugins"),
                     "--set", "policy.quantization=nf4", "--set", "policy.dtype=bfloat16",
                     "--set", "rewards.0.name=vowel_share", "--set", "grpo.max_completion_length=12",
                     "--set", "eval.at_end=false", "--output-dir", str(run_dir))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return run_dir


def _adapter(path):
    from safetensors.torch import load_file

    return load_file(str(path / "adapter" / "adapter_model.safetensors"))


def test_sft_steps_train_lora_on_a_4bit_base(qlora_run):
    config = yaml.safe_load((qlora_run / "config.yaml").read_text())
    assert config["policy"]["quantization"] == "nf4" and config["policy"]["dtype"] == "bfloat16"
    summary = json.loads((qlora_run / "sft" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["loss_first"] is not None
    assert summary["trainable_params"] == 16384  # LoRA r=8 on all 7 linear layers of both 4-bit blocks
    sft = _adapter(qlora_run / "sft")
    assert any(w.abs().sum() > 0 for k, w in sft.items() if "lora_B" in k)  # B starts at zero: SFT moved it


def test_grpo_steps_move_lora_after_eval_mode_generation(qlora_run):
    rows = [json.loads(line) for line in (qlora_run / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert any(r["reward_std"] > 0 for r in rows)  # samples differed: there was a gradient to follow
    sft, grpo = _adapter(qlora_run / "sft"), _adapter(qlora_run / "grpo")
    assert set(sft) == set(grpo)
    moved = max((grpo[k].float() - sft[k].float()).abs().max().item() for k in sft)
    assert moved > 0, "GRPO left the LoRA weights unchanged (zero gradients through the 4-bit layers)"
