"""SFT replay inside GRPO (train/sft_replay.py): the replayed demonstrations are tokenized and scored as the SFT
stage trains them, and a real GRPO run whose groups carry no signal still trains the adapter on them.

The tiny random Mistral never solves a file task, so every group of the GRPO runs below scores all alike: their
advantages are 0 and skipped micro-batches change nothing (tests/test_zero_advantage.py). Whatever moves the
adapter there is the replay term.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli


@pytest.fixture(scope="module")
def demonstrations():
    from agent_lightning.registry import ENVIRONMENTS, discover
    from agent_lightning.train.sft_data import environment_demonstrations

    discover()
    return environment_demonstrations(ENVIRONMENTS.get("filesystem").obj, "train", 3, seed=0)


def test_replay_tokenizes_and_scores_a_demonstration_as_sft_trains_it(tiny_policy, demonstrations):
    from agent_lightning.chat.tool_format import prepare_for_tools
    from agent_lightning.train.sft import _dataset
    from agent_lightning.train.sft_replay import SFTReplay, tokenize_demonstration

    model, tokenizer = tiny_policy
    prepare_for_tools(tokenizer, "compact")
    rows = _dataset(demonstrations, True, tokenizer, assistant_only_loss=True).to_list()
    for example, row in zip(demonstrations, rows):
        ids, mask = tokenize_demonstration(example, tokenizer, max_length=4096)
        assert (ids, mask) == (row["input_ids"], row["assistant_masks"])  # SFT's own tokens and loss mask
        assert 0 < sum(mask) < len(mask)  # the prompt and tool results carry no loss
    ids, mask = tokenize_demonstration(demonstrations[0], tokenizer, max_length=4096)
    labels = torch.tensor([[t if m else -100 for t, m in zip(ids, mask)]])
    with torch.no_grad():
        expected = model(input_ids=torch.tensor([ids]), labels=labels).loss  # the model's own masked LM loss
        assert SFTReplay.nll(model, (ids, mask)).item() == pytest.approx(expected.item(), rel=1e-5)
    short_ids, short_mask = tokenize_demonstration(demonstrations[0], tokenizer, max_length=len(ids) - 5)
    assert (short_ids, short_mask) == (ids[:-5], mask[:-5])  # truncated at sft.max_length, as SFT truncates


def test_replay_order_covers_every_demonstration_each_pass_and_skips_between():
    from agent_lightning.errors import UserError
    from agent_lightning.train.sft_replay import SFTReplay

    demos = [([i, i], [0, 1]) for i in range(5)]
    replay = SFTReplay(demos, coef=0.5, every=2, seed=3)
    drawn = [replay.demonstration(p) for p in range(20)]
    assert all(d is None for d in drawn[1::2])  # every 2nd micro-batch only
    first, second = drawn[0:10:2], drawn[10:20:2]
    assert sorted(first) == sorted(second) == sorted(demos)  # each pass replays all of them once
    assert drawn == [SFTReplay(demos, 0.5, 2, seed=3).demonstration(p) for p in range(20)]  # resumable: by position
    assert replay.weight(gradient_accumulation_steps=8) == pytest.approx(0.5 * 2 / 8)
    with pytest.raises(UserError, match="no demonstrations"):
        SFTReplay([], coef=1.0)


def grpo(run_dir, *extra):
    result = run_cli("--algo", "grpo", "--config", "configs/tiny.yaml", "--set", "env.name=filesystem",
                     "--set", "rewards=[{name: task_success}]", "--set", "env.train_size=8", "--set", "env.max_turns=2",
                     "--set", "grpo.per_device_batch_size=1", "--set", "grpo.gradient_accumulation_steps=4",
                     "--set", "grpo.num_generations=2", "--set", "grpo.max_completion_length=24",
                     "--set", "grpo.max_steps=3", "--set", "grpo.learning_rate=0.01",
                     "--set", "sft.demonstrations=1", "--set", "sft.held_out_fraction=0",
                     "--set", "eval.at_end=false", "--output-dir", str(run_dir), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return load_file(run_dir / "adapter" / "adapter_model.safetensors"), metrics, result


@pytest.mark.slow
def test_replay_trains_the_adapter_when_no_group_carries_signal(tmp_path):
    weights, metrics, _ = grpo(tmp_path / "off")
    assert [m["skipped_zero_advantage"] for m in metrics if "skipped_zero_advantage" in m] == [1.0] * 3
    assert all(w.abs().max() == 0 for n, w in weights.items() if "lora_B" in n)  # nothing to learn from
    assert not any("sft_replay_nll" in m for m in metrics)

    weights, metrics, result = grpo(tmp_path / "on", "--set", "grpo.sft_replay=1.0", "--set",
                                    "grpo.sft_replay_every=2")
    assert "grpo.sft_replay=1: 1 demonstrations" in result.stdout + result.stderr
    assert [m["skipped_zero_advantage"] for m in metrics if "skipped_zero_advantage" in m] == [1.0] * 3
    assert any(w.abs().max() > 0 for n, w in weights.items() if "lora_B" in n)  # the replay term trained it
    nll = [m["sft_replay_nll"] for m in metrics if "sft_replay_nll" in m]
    assert len(nll) == 3  # logged every step (the mean of its 2 replays)
    assert nll[-1] < nll[0]  # the one demonstration, replayed at lr 0.01, gets likelier
