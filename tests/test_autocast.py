"""bf16 autocast for training (policy.autocast): when `auto` picks it, that the Trainer gets it, and that a real
SFT and GRPO stage train under it (train/trainer_args.py)."""

import json

import pytest
import torch

from agent_lightning.config import load_config
from agent_lightning.errors import UserError
from agent_lightning.train import trainer_args
from agent_lightning.train.grpo import grpo_args
from agent_lightning.train.trainer_args import cpu_has_native_bf16, train_autocast_bf16
from conftest import run_cli

FLAGS = "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep avx2 avx512f avx512bw avx512vl"


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    without, avx512, amx = tmp_path / "without", tmp_path / "avx512", tmp_path / "amx"
    without.write_text(f"processor\t: 0\n{FLAGS}\n")
    avx512.write_text(f"processor\t: 0\n{FLAGS} avx512_bf16 avx512_vnni\n")
    amx.write_text(f"processor\t: 0\n{FLAGS} amx_bf16 amx_tile amx_int8\n")
    assert not cpu_has_native_bf16(str(without))
    assert cpu_has_native_bf16(str(avx512)) and cpu_has_native_bf16(str(amx))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))   # no /proc (macOS): no autocast unless asked


@pytest.mark.parametrize("overrides, native, expected", [
    (["policy.autocast=none"], True, False),
    (["policy.autocast=bf16"], False, True),                      # asked for: even where bf16 is emulated
    (["policy.autocast=auto"], True, not torch.cuda.is_available()),
    (["policy.autocast=auto"], False, False),
    (["policy.autocast=auto", "policy.dtype=bfloat16"], True, False),   # the weights are bf16 already
    (["policy.autocast=auto", "policy.quantization=nf4"], True, False),
])
def test_auto_picks_bf16_only_on_a_cpu_that_has_it(monkeypatch, overrides, native, expected):
    monkeypatch.setattr(trainer_args, "cpu_has_native_bf16", lambda: native)
    assert train_autocast_bf16(load_config(None, overrides).policy) is expected


def test_the_trainer_gets_bf16_with_float32_weights(tmp_path):
    on = grpo_args(load_config(None, ["policy.autocast=bf16"]), tmp_path)
    off = grpo_args(load_config(None, ["policy.autocast=none"]), tmp_path)
    assert on.bf16 and not off.bf16 and not on.fp16


def test_an_unknown_autocast_is_a_clear_error():
    with pytest.raises(UserError, match=r"policy.autocast"):
        load_config(None, ["policy.autocast=fp8"])


@pytest.mark.slow
def test_sft_then_grpo_train_under_bf16_autocast(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("--algo", "sft+grpo", "--config", "configs/tiny.yaml", "--max-steps", "2",
                     "--set", "policy.autocast=bf16", "--set", "eval.at_end=false", "--output-dir", str(run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    for stage in ("sft", "grpo"):
        assert summary["stages"][stage]["steps"] == 2
        losses = [json.loads(line).get("loss") for line in (run_dir / stage / "metrics.jsonl").read_text().splitlines()]
        assert [x for x in losses if x is not None], stage
        assert all(x == x and abs(x) < 1e4 for x in losses if x is not None), losses   # finite
    from safetensors.torch import load_file

    weights = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    assert all(w.dtype == torch.float32 for w in weights.values())   # autocast: the adapter stays float32
    assert any(bool(w.abs().sum() > 0) for k, w in weights.items() if "lora_B" in k)   # LoRA B starts at zero
