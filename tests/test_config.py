from pathlib import Path

import pytest

from agent_lightning.config import Config, iter_help, load_config
from agent_lightning.errors import UserError
from conftest import REPO, run_cli

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads_and_starts_with_its_command(path: Path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    first = path.read_text().splitlines()[0]
    assert first.startswith("# python main_agent_lightning.py --algo"), first
    if path.name != "default.yaml":
        assert f"--config configs/{path.name}" in first


def test_default_config_is_used_without_a_path():
    assert load_config(None).policy.source == "smollm2"


def test_overrides_are_typed():
    cfg = load_config(None, [
        "grpo.learning_rate=1e-5", "grpo.max_steps=7", "grpo.use_vllm=true",
        "policy.lora.targets=q_proj,v_proj", "grpo.report_to=[none]", "rewards.task_success.weight=2.5",
        "rewards.0.on_error=skip",
    ])
    assert cfg.grpo.learning_rate == pytest.approx(1e-5) and isinstance(cfg.grpo.learning_rate, float)
    assert cfg.grpo.max_steps == 7
    assert cfg.grpo.use_vllm is True
    assert cfg.policy.lora.targets == "q_proj,v_proj"
    assert cfg.grpo.report_to == ["none"]
    assert cfg.rewards[0].weight == 2.5 and cfg.rewards[0].on_error == "skip"


@pytest.mark.parametrize("override, message", [
    ("grpo.learnin_rate=1", "unknown config key 'grpo.learnin_rate'. Did you mean 'learning_rate'?"),
    ("grpo.max_steps=abc", "grpo.max_steps: expected an integer, got 'abc'"),
    ("grpo.use_vllm=maybe", "grpo.use_vllm: expected true or false"),
    ("polcy.source=x", "Did you mean 'policy'?"),
    ("rewards.nope.weight=1", "no reward named 'nope'"),
    ("grpo", "expected section.key=value"),
])
def test_bad_overrides_name_the_culprit(override, message):
    with pytest.raises(UserError, match=None) as info:
        load_config(None, [override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grpo: [1, 2\n")
    with pytest.raises(UserError, match="bad.yaml.*not valid YAML"):
        load_config(bad)


def test_every_field_has_help():
    rows = list(iter_help())
    assert len(rows) > 30
    assert all(help_text for _, _, help_text in rows), [k for k, _, h in rows if not h]


@pytest.mark.parametrize("args, needle", [
    (["--algo", "grpo", "--set", "grpo.max_step=3"], "unknown config key 'grpo.max_step'"),
    (["--algo", "grpo", "--config", "missing.yaml"], "config file not found: missing.yaml"),
    (["--algo", "grpo", "--set", "rewards.0.name=exact_anwser", "--max-steps", "1"], "unknown reward 'exact_anwser'"),
    (["--algo", "grpo", "--set", "env.name=arithmatic"], "Did you mean 'arithmetic'?"),
])
def test_cli_user_errors_exit_2_with_one_line(args, needle, tmp_path):
    result = run_cli(*args, "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and needle in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def test_a_shipped_recipe_loads_by_name():
    assert load_config("tiny") == load_config(REPO / "configs" / "tiny.yaml")
    assert load_config("tiny.yaml").policy.source == "tiny-mistral"
    with pytest.raises(UserError, match="Did you mean 'tiny'"):
        load_config("tine")


@pytest.mark.slow
@pytest.mark.parametrize("override, needle", [
    ("grpo.num_generations=3", "must be a multiple of grpo.num_generations (3)"),
    ("grpo.vllm_mode=remote", "grpo.vllm_mode: 'remote' is not one of colocate, server"),
    ("grpo.save_steps=0", "grpo.save_steps: expected a number >= 1, got 0."),
    ("rft.tasks=0", "rft.tasks: expected a number >= 1, got 0."),
    ("sft.held_out_fraction=1.5", "sft.held_out_fraction: expected a fraction in [0, 1), got 1.5."),
    ("policy.quantization=int3", "policy.quantization: 'int3' is not one of none, nf4."),
])
def test_config_show_and_training_refuse_the_same_configs_with_the_same_line(override, needle, tmp_path):
    shown = run_cli("config", "show", "--config", "tiny", "--set", override)
    trained = run_cli("--algo", "grpo", "--config", "tiny", "--set", override, "--output-dir", str(tmp_path / "r"))
    for result in (shown, trained):
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
    last = [[line for line in r.stderr.splitlines() if line.strip()][-1] for r in (shown, trained)]
    assert last[0] == last[1] and needle in last[0], last
    assert not (tmp_path / "r").exists()  # refused before a run directory was made
