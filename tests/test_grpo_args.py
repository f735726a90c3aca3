"""The mapping from our config to TRL's GRPOConfig (no training)."""

import importlib.util

import pytest

from agent_lightning.config import load_config
from agent_lightning.errors import UserError
from agent_lightning.train.grpo import grpo_args


def test_config_maps_onto_grpo_config(tmp_path):
    cfg = load_config(None, ["grpo.learning_rate=3e-5", "grpo.loss_type=grpo", "grpo.beta=0.04",
                             "grpo.scale_rewards=batch", "grpo.num_generations=4", "grpo.per_device_batch_size=8",
                             "grpo.report_to=[none]", "grpo.warmup_steps=0.1"])
    args = grpo_args(cfg, tmp_path)
    assert (args.learning_rate, args.loss_type, args.beta, args.scale_rewards) == (3e-5, "grpo", 0.04, "batch")
    assert (args.num_generations, args.per_device_train_batch_size) == (4, 8)
    assert args.max_steps == cfg.grpo.max_steps and args.save_steps == cfg.grpo.save_steps
    assert args.report_to == [] or args.report_to == "none" or args.report_to == ["none"]
    assert args.output_dir == str(tmp_path)


def test_batch_must_hold_whole_groups():
    with pytest.raises(UserError, match=r"gradient_accumulation_steps \(8\) must be a multiple of grpo.num_generations \(3\)"):
        load_config("tiny", ["grpo.num_generations=3", "grpo.per_device_batch_size=8",
                             "grpo.gradient_accumulation_steps=1"])


def test_one_sampling_round_can_feed_several_optimizer_steps(tmp_path):
    cfg = load_config(None, ["grpo.per_device_batch_size=1", "grpo.gradient_accumulation_steps=8",
                             "grpo.num_generations=8", "grpo.steps_per_generation=32", "grpo.num_iterations=2"])
    args = grpo_args(cfg, tmp_path)
    assert (args.steps_per_generation, args.generation_batch_size, args.num_iterations) == (32, 32, 2)


def test_a_sampling_round_must_hold_whole_groups():
    with pytest.raises(UserError, match=r"steps_per_generation \(12\) must be a multiple of grpo.num_generations \(8\)"):
        load_config(None, ["grpo.per_device_batch_size=1", "grpo.gradient_accumulation_steps=8",
                           "grpo.num_generations=8", "grpo.steps_per_generation=12"])


def test_a_zero_round_size_is_a_clear_error():
    with pytest.raises(UserError, match=r"grpo.steps_per_generation: expected >= 1 \(or leave it unset\), got 0"):
        load_config(None, ["grpo.steps_per_generation=0"])
    with pytest.raises(UserError, match=r"grpo.num_iterations: expected a number >= 1, got 0"):
        load_config(None, ["grpo.num_iterations=0"])


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_without_vllm_is_a_clear_error(tmp_path):
    cfg = load_config(None, ["grpo.use_vllm=true"])
    with pytest.raises(UserError, match="pip install vllm"):
        grpo_args(cfg, tmp_path)


def test_an_unknown_rollout_loop_is_a_clear_error():
    with pytest.raises(UserError, match="grpo.rollouts: 'fast' is not one of cached, trl"):
        load_config(None, ["grpo.rollouts=fast"])


def test_grpo_prompts_come_from_the_train_tiers_and_the_test_split_keeps_every_tier():
    from agent_lightning.registry import discover
    from agent_lightning.envs import environment_class
    from agent_lightning.train.grpo import task_dataset

    discover()
    cfg = load_config(None, ["env.name=filesystem", "env.train_size=40", "env.test_size=30", "env.train_tiers=[1]"])
    env_cls = environment_class(cfg)
    train = task_dataset(env_cls, cfg, "train")
    assert len(train) == 40 and set(train["tier"]) == {1}
    assert set(task_dataset(env_cls, cfg, "test")["tier"]) == {1, 2, 3}
