"""`grpo.beta` > 0 from a continued adapter: the KL anchor is the adapter GRPO starts from, not the base model.

TRL (1.16) copies a PEFT model's pretrained adapter into a frozen adapter named "ref" and computes the reference
log-probabilities under it; with a fresh adapter it disables adapters (the base model). Our SFT -> GRPO chain
relies on the first: the base model knows no tool calls, so a KL term towards it would pull the policy away from
everything SFT taught. These tests pin that seam on the tiny Mistral with TRL's real trainer.
"""

import pytest
import torch

pytestmark = pytest.mark.slow  # builds a real TRL trainer


@pytest.fixture(scope="module")
def start_adapter(tmp_path_factory):
    """A saved LoRA adapter on the tiny policy whose weights differ from zero (so it differs from the base)."""
    from agent_lightning.config import load_config
    from agent_lightning.policy import load_policy

    model, _ = load_policy(load_config("tiny").policy)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(0.5 * torch.randn(param.shape, generator=generator))
    folder = tmp_path_factory.mktemp("start")
    model.save_pretrained(folder)
    return folder


def _trainer(tmp_path, beta, init_adapter):
    from agent_lightning.config import load_config
    from agent_lightning.envs import environment_class
    from agent_lightning.policy import load_policy
    from agent_lightning.registry import discover
    from agent_lightning.rewarding import RewardSuite
    from agent_lightning.train.grpo import build_grpo_trainer

    discover()
    cfg = load_config("tiny", [f"grpo.beta={beta}", f"policy.init_adapter={init_adapter}"])
    env_cls = environment_class(cfg)
    model, tokenizer = load_policy(cfg.policy)
    suite = RewardSuite.from_config(cfg.rewards, env_cls, cfg.env)
    return build_grpo_trainer(cfg, tmp_path / "run", model, tokenizer, env_cls, suite, []), tokenizer


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_kl_reference_is_the_starting_adapter_not_the_base(tmp_path, start_adapter):
    from trl.trainer.utils import use_adapter

    from agent_lightning.rollout.episodes import generation_weights

    trainer, tokenizer = _trainer(tmp_path, 0.04, start_adapter)
    model = trainer.accelerator.unwrap_model(trainer.model)
    assert "ref" in model.peft_config, "TRL made no frozen copy of the starting adapter"
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".ref." in n)
    ids = tokenizer("What is 2 + 3?", return_tensors="pt").input_ids
    policy = _logits(model, ids)
    with use_adapter(model, adapter_name="ref"):  # what TRL's reference log-probabilities are computed under
        reference = _logits(model, ids)
    with model.disable_adapter():
        base = _logits(model, ids)
    assert torch.allclose(reference, policy, atol=1e-5)  # before any step: the reference is the starting policy
    assert not torch.allclose(reference, base, atol=1e-3)  # ... and not the base model
    with torch.no_grad():  # a training step moves "default"; the reference must stay where it started
        for name, param in model.named_parameters():
            if ".default." in name and "lora_B" in name:
                param.add_(0.1)
    with use_adapter(model, adapter_name="ref"):
        assert torch.allclose(_logits(model, ids), reference, atol=1e-5)
    moved = _logits(model, ids)
    assert not torch.allclose(moved, reference, atol=1e-3)
    with generation_weights(model):  # rollouts fold in the trained adapter only, never the reference
        assert torch.allclose(_logits(model, ids), moved, atol=1e-4)
    assert torch.allclose(_logits(model, ids), moved, atol=1e-5)


def test_beta_zero_keeps_no_reference(tmp_path, start_adapter):
    trainer, _ = _trainer(tmp_path, 0.0, start_adapter)
    assert trainer.ref_model is None
    assert "ref" not in trainer.accelerator.unwrap_model(trainer.model).peft_config
