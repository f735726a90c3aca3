"""The distributed recipes in configs/accelerate and configs/deepspeed load the way `accelerate launch` loads them.

    pytest tests/test_accelerate_configs.py        (~5 s)

For each recipe: accelerate's own launch-argument validation reads the YAML (distributed type, process count),
the DeepSpeed ones go through accelerate's environment hand-off to the training process and come back as a
`DeepSpeedPlugin` with the intended ZeRO stage and offload, and the JSON builds a plugin directly
(`DeepSpeedPlugin(hf_ds_config=...)`, as the Trainer does). Each file starts with the command that runs it.
Not covered: running a DeepSpeed engine (needs GPUs; test_distributed.py runs DDP for real on CPU).
"""

import json
import os

import pytest

from conftest import REPO

RECIPES = {  # file: (distributed type, ZeRO stage, offload device)
    "single_gpu": ("NO", None, None),
    "ddp": ("MULTI_GPU", None, None),
    "zero2": ("DEEPSPEED", 2, "none"),
    "zero3": ("DEEPSPEED", 3, "none"),
    "zero3_offload": ("DEEPSPEED", 3, "cpu"),
}


def launch_args(name: str):
    """accelerate launch's parsed and validated arguments for `--config_file configs/accelerate/NAME.yaml`."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args = launch_command_parser().parse_args(
        ["--config_file", f"configs/accelerate/{name}.yaml", "main_agent_lightning.py", "--algo", "grpo"])
    return _validate_launch_command(args)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_loads_as_accelerate_launch_reads_it(name, monkeypatch):
    monkeypatch.chdir(REPO)
    kind, stage, offload = RECIPES[name]
    args, defaults, _ = launch_args(name)
    assert defaults.distributed_type.value == kind
    assert args.use_deepspeed == (kind == "DEEPSPEED") and args.multi_gpu == (kind == "MULTI_GPU")
    first = (REPO / "configs" / "accelerate" / f"{name}.yaml").read_text().splitlines()[0]
    assert first.startswith(f"# accelerate launch --config_file configs/accelerate/{name}.yaml ")
    assert "main_agent_lightning.py --algo" in first


@pytest.mark.parametrize("name", [n for n, (kind, _, _) in RECIPES.items() if kind == "DEEPSPEED"])
def test_deepspeed_plugin_builds_from_each_recipe(name, monkeypatch):
    from accelerate.utils import DeepSpeedPlugin
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    monkeypatch.chdir(REPO)
    _, stage, offload = RECIPES[name]
    args, defaults, from_config = launch_args(name)
    # what launch_command does before handing over to the DeepSpeed launcher
    args.deepspeed_fields_from_accelerate_config = ",".join(
        list(defaults.deepspeed_config) + (["mixed_precision"] if from_config else []))
    _, env = prepare_deepspeed_cmd_env(args)
    for key, value in env.items():
        if key.startswith("ACCELERATE_"):
            monkeypatch.setenv(key, value)
    plugin = DeepSpeedPlugin()  # in the training process, from the environment the launcher set
    assert os.environ["ACCELERATE_DEEPSPEED_CONFIG_FILE"] == f"configs/deepspeed/{name}.json"
    assert plugin.zero_stage == stage
    assert plugin.offload_optimizer_device == offload and plugin.offload_param_device == offload
    assert plugin.zero3_init_flag == (stage == 3)
    # the Trainer fills the "auto" values from the run config
    assert plugin.is_auto("train_micro_batch_size_per_gpu") and plugin.is_auto("gradient_accumulation_steps")

    direct = DeepSpeedPlugin(hf_ds_config=str(REPO / "configs" / "deepspeed" / f"{name}.json"))
    assert direct.zero_stage == stage and direct.hf_ds_config.is_zero3() == (stage == 3)
    raw = json.loads((REPO / "configs" / "deepspeed" / f"{name}.json").read_text())
    assert raw["_comment"].startswith(f"accelerate launch --config_file configs/accelerate/{name}.yaml ")
    if stage == 3:
        assert raw["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True  # adapter saves whole
