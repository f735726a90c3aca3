"""Damaged artifacts give one line naming the file, never a library traceback; --resume skips a damaged checkpoint
(train/rundir.py checkpoint_problem) and continues from the previous whole one."""

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from agent_lightning.train.rundir import checkpoint_problem, latest_checkpoint
from conftest import run_cli


def _checkpoint(folder, step):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    save_file({"w": torch.ones(4, 4)}, str(path / "adapter_model.safetensors"))
    torch.save({"state": {0: torch.zeros(3)}}, path / "optimizer.pt")
    return path


def test_a_whole_checkpoint_has_no_problem_and_each_kind_of_damage_is_named(tmp_path, caplog):
    good = _checkpoint(tmp_path, 2)
    assert checkpoint_problem(good) is None
    cut = _checkpoint(tmp_path, 4)
    (cut / "trainer_state.json").unlink()
    assert "no trainer_state.json" in checkpoint_problem(cut)
    torn = _checkpoint(tmp_path, 6)
    data = (torn / "adapter_model.safetensors").read_bytes()
    (torn / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    assert checkpoint_problem(torn).startswith("adapter_model.safetensors is damaged")
    bad_optimizer = _checkpoint(tmp_path, 8)
    (bad_optimizer / "optimizer.pt").write_bytes(b"\0" * 100)
    assert checkpoint_problem(bad_optimizer).startswith("optimizer.pt is damaged")
    with caplog.at_level("WARNING"):
        assert latest_checkpoint(tmp_path, set_aside=True) == good
    assert "skipping" in caplog.text and "optimizer.pt is damaged" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-2", "checkpoint-4.damaged", "checkpoint-6.damaged", "checkpoint-8.damaged"]


@pytest.mark.slow
def test_a_damaged_adapter_is_one_line_in_eval(tmp_path):
    result = run_cli("--algo", "sft", "--config", "tiny", "--max-steps", "1", "--set", "eval.at_end=false",
                     "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-2000:]
    adapter = tmp_path / "adapter"
    shutil.copytree(tmp_path / "run" / "adapter", adapter)
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    result = run_cli("eval", "--config", "tiny", "--adapter", str(adapter), "--limit", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --adapter {adapter}: cannot be loaded") and "damaged" in last


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_a_policy_folder_with_a_damaged_tokenizer_is_one_line(tmp_path):
    from agent_lightning.config import PolicySection
    from agent_lightning.policy import resolve_source

    folder = tmp_path / "policy"
    shutil.copytree(resolve_source(PolicySection(source="tiny-mistral")), folder)
    (folder / "tokenizer.json").write_text('{"version": "1.0", "truncat')
    result = run_cli("eval", "--config", "tiny", "--set", f"policy.source={folder}", "--limit", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: policy.source: could not load {folder} (") and "damaged" in last
