"""vLLM generation settings (grpo.use_vllm, vllm_mode colocate/server) are validated before anything loads:
their values when the config is loaded (GRPOSection.validate), what the machine lacks when the trainer is built.

    pytest tests/test_vllm_config.py        (~3 s)

vLLM is the GPU speed path (docs/scaling.md); here, without a GPU or vLLM, only the checks and the mapping onto
TRL's GRPOConfig are exercised. Not covered: generating with vLLM.
"""

import pytest

from agent_lightning.config import load_config
from agent_lightning.errors import UserError
from agent_lightning.train.grpo import grpo_args


@pytest.mark.parametrize("override, message", [
    ("grpo.vllm_mode=remote", "grpo.vllm_mode: 'remote' is not one of colocate, server"),
    ("grpo.vllm_gpu_memory_utilization=1.5", "grpo.vllm_gpu_memory_utilization: expected a share between 0 and 1"),
    ("grpo.vllm_tensor_parallel_size=0", "grpo.vllm_tensor_parallel_size: expected a number >= 1"),
    ("grpo.vllm_server_base_url=http://h:8000", "only used with grpo.vllm_mode=server"),
])
def test_bad_vllm_settings_are_one_line_errors(override, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        load_config("configs/tiny.yaml", [override])
    assert "\n" not in str(err.value)


def test_server_url_must_be_http():
    with pytest.raises(UserError, match="is not an http"):
        load_config("configs/tiny.yaml", ["grpo.vllm_mode=server", "grpo.vllm_server_base_url=h:8000"])


def test_vllm_settings_reach_grpo_config(tmp_path):
    cfg = load_config("configs/tiny.yaml", ["grpo.vllm_mode=server", "grpo.vllm_server_base_url=http://10.0.0.5:8000",
                                            "grpo.vllm_gpu_memory_utilization=0.5", "grpo.vllm_tensor_parallel_size=2"])
    args = grpo_args(cfg, tmp_path)
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_base_url) == (False, "server", "http://10.0.0.5:8000")
    assert (args.vllm_gpu_memory_utilization, args.vllm_tensor_parallel_size) == (0.5, 2)


def test_use_vllm_on_this_machine_says_what_is_missing(tmp_path):
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is not None and torch.cuda.is_available():
        pytest.skip("vLLM and a GPU are here")
    cfg = load_config("configs/tiny.yaml", ["grpo.use_vllm=true"])
    with pytest.raises(UserError, match="pip install vllm|needs a CUDA GPU"):
        grpo_args(cfg, tmp_path)
