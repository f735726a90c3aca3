"""GRPO skips the forward/backward pass of zero-advantage micro-batches (train/zero_advantage.py) and its weights
come out the same as with the full pass.

The tiny random Mistral plays a plugin environment with both kinds of groups: tier-1 prompts always succeed (their
groups score alike: zero advantage), tier-2 prompts succeed on a reply of even length (sampled replies pass and
fail). One rollout per micro-batch, so the flat groups' rollouts are skipped one by one, through TRL's real
GRPOTrainer.
"""

import json
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains or loads real models: `pytest -m 'not slow'` skips it

ENVIRONMENT = textwrap.dedent('''
    from agent_lightning import environment
    from agent_lightning.envs import Environment, Outcome


    @environment("half_flat")
    class HalfFlat(Environment):
        """Single turn: tier 1 always succeeds; tier 2 succeeds on a reply of an even number of characters."""

        @classmethod
        def tasks(cls, split, size, seed):
            return [{"task_id": f"{split}-{i}", "prompt": f"Name thing number {i}.", "tier": 1 + i % 2}
                    for i in range(size)]

        def _finish(self, final_text):
            return Outcome(success=self.task["tier"] == 1 or len(final_text) % 2 == 0, answer=final_text)
''')


def grpo(plugins, run_dir, skip: bool):
    result = run_cli("--algo", "grpo", "--config", "configs/tiny.yaml", "--plugin-dir", str(plugins),
                     "--set", "env.name=half_flat", "--set", "rewards=[{name: task_success}]",
                     "--set", "grpo.per_device_batch_size=1", "--set", "grpo.gradient_accumulation_steps=8",
                     "--set", "grpo.num_generations=4", "--set", "grpo.max_completion_length=6",
                     "--set", "grpo.max_steps=3", "--set", "grpo.learning_rate=0.01",
                     "--set", f"grpo.skip_zero_advantage={str(skip).lower()}", "--set", "eval.at_end=false",
                     "--output-dir", str(run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    return load_file(run_dir / "adapter" / "adapter_model.safetensors"), metrics, summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    plugins = tmp_path_factory.mktemp("plugins")
    (plugins / "half_flat.py").write_text(ENVIRONMENT)
    root = tmp_path_factory.mktemp("runs")
    return grpo(plugins, root / "skip", True), grpo(plugins, root / "full", False)


def test_flat_groups_are_skipped_and_the_weights_come_out_the_same(runs):
    (skipped_weights, skipped_metrics, skipped_summary), (full_weights, full_metrics, full_summary) = runs
    shares = [m["skipped_zero_advantage"] for m in skipped_metrics if "skipped_zero_advantage" in m]
    assert len(shares) == 3 and 0 < sum(shares) / 3 < 1  # flat groups skipped, the mixed ones trained on
    assert skipped_summary["skipped_zero_advantage_mean"] == pytest.approx(sum(shares) / 3)
    assert not any("skipped_zero_advantage" in m for m in full_metrics)
    assert full_summary["skipped_zero_advantage_mean"] is None
    rewards = [m["reward"] for m in full_metrics if "reward" in m]
    assert rewards == [m["reward"] for m in skipped_metrics if "reward" in m]  # the same rollouts were played
    assert skipped_weights.keys() == full_weights.keys()
    for name, weight in full_weights.items():
        assert torch.equal(skipped_weights[name], weight), name  # to the last bit: no dropout in tiny.yaml
    moved = [name for name, weight in full_weights.items() if "lora_B" in name and weight.abs().max() > 0]
    assert moved  # the mixed groups did train the adapter (LoRA B starts at zero)
