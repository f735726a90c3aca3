"""Rejection-sampling fine-tuning (`--algo sft+rft`) on the tiny Mistral, end to end through the CLI.

The tiny random model cannot solve a real task, so the run uses a plugin environment whose verifier is a coin the
model tosses itself: a reply of an even number of characters succeeds. Sampled replies pass or fail, so the test
can check that exactly the verified successes became SFT data, in the trajectory format SFT reads.
"""

import json
import textwrap

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains or loads real models: `pytest -m 'not slow'` skips it

ENVIRONMENT = textwrap.dedent('''
    from agent_lightning import environment
    from agent_lightning.envs import Environment, Outcome


    @environment("even_reply")
    class EvenReply(Environment):
        """Single turn: a reply of an even number of characters succeeds (the SFT demonstration says "even")."""

        system_prompt = "Answer in one word."

        @classmethod
        def tasks(cls, split, size, seed):
            return [{"task_id": f"{split}-{i}", "prompt": f"Name thing number {i}.", "tier": 1 + i % 2, "answer": "even"}
                    for i in range(size)]

        def _finish(self, final_text):
            return Outcome(success=len(final_text) % 2 == 0, answer=final_text)
''')


@pytest.fixture(scope="module")
def rft_run(tmp_path_factory):
    plugins = tmp_path_factory.mktemp("plugins")
    (plugins / "even_reply.py").write_text(ENVIRONMENT)
    run_dir = tmp_path_factory.mktemp("runs") / "rft"
    result = run_cli("--algo", "sft+rft", "--config", "configs/tiny.yaml", "--plugin-dir", str(plugins),
                     "--set", "env.name=even_reply", "--set", "rewards=[{name: task_success}]",
                     "--set", "env.train_tiers=[2]", "--set", "rft.tasks=6", "--set", "rft.samples_per_task=3",
                     "--set", "rft.batch_size=8", "--set", "rft.max_turn_tokens=6", "--set", "rft.max_steps=2",
                     "--set", "sft.max_steps=1", "--output-dir", str(run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir


def test_exactly_the_verified_successes_become_sft_examples(rft_run):
    summary = json.loads((rft_run / "rft" / "summary.json").read_text())
    stats = summary["rft"]
    examples = [json.loads(line) for line in (rft_run / "rft" / "samples.jsonl").read_text().splitlines()]
    assert stats["episodes"] == 18 and 0 < stats["successes"] < 18  # the coin fell both ways
    assert stats["examples"] == len(examples) == stats["successes"] - stats["duplicates"]
    for example in examples:
        roles = [m["role"] for m in example["messages"]]
        assert roles == ["system", "user", "assistant"] and example["source"] == "rft"
        assert len(example["messages"][-1]["content"]) % 2 == 0  # what the verifier accepted
        assert int(example["task_id"].split("-")[1]) % 2 == 1  # tier 2 only: env.train_tiers
    assert len({json.dumps([e["task_id"], e["messages"]]) for e in examples}) == len(examples)
    assert summary["steps"] == 2 and summary["loss_last"] is not None


def test_sft_then_rft_in_one_run_directory_with_the_comparison(rft_run):
    summary = json.loads((rft_run / "summary.json").read_text())
    assert summary["algo"] == "sft+rft" and list(summary["stages"]) == ["sft", "rft"]
    assert summary["adapter"] == str(rft_run / "adapter") and summary["final_stage"] == "rft"
    assert (rft_run / "adapter" / "adapter_config.json").read_bytes() == \
        (rft_run / "rft" / "adapter" / "adapter_config.json").read_bytes()
    assert (rft_run / "rft" / "adapter" / "adapter_config.json").exists()
    assert [r["policy"] for r in summary["comparison"]] == ["base", "after SFT", "after SFT+RFT"]


def test_rft_from_a_policy_that_never_succeeds_is_a_clear_error(tmp_path):
    """The file tools, played by the tiny random Mistral: its replies go through the Mistral tool-call parser and
    the sandbox, and none solves a file task."""
    result = run_cli("--algo", "rft", "--config", "configs/tiny.yaml", "--set", "env.name=filesystem",
                     "--set", "rewards=[{name: task_success}]", "--set", "rft.tasks=2",
                     "--set", "rft.samples_per_task=1", "--set", "rft.max_turn_tokens=16",
                     "--output-dir", str(tmp_path / "never"))
    assert result.returncode == 2
    assert "rft: none of the 2 sampled episodes succeeded" in result.stderr


def test_the_sft_pass_mixes_reference_demonstrations_back_in(tmp_path):
    """rft.demonstrations reference demonstrations join the samples, drawn in proportion to the two counts."""
    from agent_lightning.config import load_config
    from agent_lightning.registry import ENVIRONMENTS, discover
    from agent_lightning.train.rft import sft_on_samples, write_samples
    from agent_lightning.train.sft import sft_examples
    from agent_lightning.train.sft_data import environment_demonstrations

    discover()
    fs = ENVIRONMENTS.get("filesystem").obj
    samples = environment_demonstrations(fs, "train", 5, 0)[2:]  # stand-ins for 3 verified samples
    path = tmp_path / "samples.jsonl"
    write_samples(path, [{**e, "source": "rft"} for e in samples])
    cfg = sft_on_samples(load_config("configs/tiny.yaml", ["env.name=filesystem", "rft.demonstrations=2",
                                                            "sft.held_out_fraction=0.3"]), path, 3)
    assert cfg.sft.max_steps == 2  # one pass over 5 examples at the tiny config's batch of 4
    assert (cfg.sft.demonstrations, cfg.sft.env_weight, [x.weight for x in cfg.sft.sources]) == (2, 2.0, [3.0])
    train, held_out = sft_examples(cfg, fs)
    assert held_out == [] and len(train) == 5
    sources = {e["source"] for e in train}
    assert sources == {"filesystem", "samples"}  # the reference demonstrations and the samples file
    assert {e["task_id"] for e in train} <= {"fs-train-00000", "fs-train-00001", *(e["task_id"] for e in samples)}
