"""Multi-turn tool rollouts through our GRPO pipeline, on the tiny Mistral (Mistral v0.3 format), with each
rollout loop: ours (`grpo.rollouts=cached`, TRL's `rollout_func`) and TRL's own (`grpo.rollouts=trl`).

A random tiny model never writes a tool call, so the first reply of every rollout is scripted (forced through the
generation loop, so later turns continue from it): one rollout calls `list_dir`, its sibling writes a malformed
call. Everything after that is real: the tool loop, our parser, the sandboxed workspace, verification, rewards,
TRL's loss on the rollouts' tokens, and the traces.
"""

import json

import pytest
from trl import GRPOTrainer

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains or loads real models: `pytest -m 'not slow'` skips it

SCRIPTED = ['[TOOL_CALLS] [{"name": "list_dir", "arguments": {"path": "."}}]',
            '[TOOL_CALLS] [{"name": "list_dir", "arguments": {"path" "."}}]']


def _scripted_ids(tokenizer, index):
    return tokenizer(SCRIPTED[index % 2], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


class ScriptedFirstTurn:
    """Patch CachedSession so that every row's first reply is the scripted one: its tokens are fed through the
    model into the cache as if generated, and the next turns decode for real."""

    def __enter__(self):
        import torch

        from agent_lightning.rollout.generation import CachedSession

        self.original = original = CachedSession._decode

        def decode(session, logits, limits):
            if getattr(session, "scripted", False):
                return original(session, logits, limits)
            session.scripted = True
            replies = [_scripted_ids(session.tokenizer, i) for i in session.rows]
            width = max(map(len, replies))
            block = torch.tensor([r + [session.tokenizer.pad_token_id] * (width - len(r)) for r in replies])
            block_mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in replies])
            session.mask = torch.cat([session.mask, block_mask], dim=1)
            session._forward(block, session.mask, session.cache)
            return replies, [True] * len(replies)

        CachedSession._decode = decode
        return self

    def __exit__(self, *exc):
        from agent_lightning.rollout.generation import CachedSession

        CachedSession._decode = self.original


@pytest.fixture(scope="module", params=["cached", "trl"])
def scripted_run(request, tmp_path_factory):
    from agent_lightning.config import load_config
    from agent_lightning.train.pipeline import run_training

    cfg = load_config("configs/tiny.yaml", ["env.name=filesystem", "env.train_size=32", "env.test_size=8",
                                             "grpo.max_steps=1", "grpo.max_completion_length=160",
                                             "env.max_turns=2", f"grpo.rollouts={request.param}"])
    if request.param == "cached":
        with ScriptedFirstTurn():
            return run_training(cfg, "grpo", str(tmp_path_factory.mktemp("runs") / "fs"))
    original = GRPOTrainer._generate_single_turn

    def first_turn_scripted(self, prompt_ids, images, multimodal_fields, num_generations, *args, **kwargs):
        ids, logprobs = original(self, prompt_ids, images, multimodal_fields, num_generations, *args, **kwargs)
        if num_generations > 1:  # the first turn; the tool loop generates one continuation per rollout
            ids = [_scripted_ids(self.processing_class, i) for i in range(len(ids))]
            logprobs = None if logprobs is None else [[0.0] * len(x) for x in ids]
        return ids, logprobs

    GRPOTrainer._generate_single_turn = first_turn_scripted
    try:
        run_dir = run_training(cfg, "grpo", str(tmp_path_factory.mktemp("runs") / "fs"))
    finally:
        GRPOTrainer._generate_single_turn = original
    return run_dir


def test_traces_hold_tool_calls_results_and_errors(scripted_run):
    records = [json.loads(line) for line in (scripted_run / "traces" / "step-00001.jsonl").read_text().splitlines()]
    assert len(records) == 4
    good, bad = records[0], records[1]
    call_message = good["completion"][0]
    assert call_message["tool_calls"][0]["function"] == {"name": "list_dir", "arguments": {"path": "."}}
    tool_message = good["completion"][1]
    assert tool_message["role"] == "tool" and tool_message["name"] == "list_dir"
    workspace_top = sorted({p.split("/")[0] + ("/" if "/" in p else "") for p in json.loads(
        _task(scripted_run, good["task_id"])["files"])})
    assert tool_message["content"].splitlines() == workspace_top  # the real listing of the real workspace
    assert good["calls"][0]["ok"] and good["outcome"]["tool_calls"] == 1 and good["outcome"]["tool_errors"] == 0
    assert bad["outcome"]["tool_errors"] == 1 and not bad["calls"][0]["ok"]
    assert "malformed tool call" in bad["completion"][1]["content"]  # the policy reads why
    for record in records:
        assert set(record["rewards"]) == {"exact_answer"} and record["outcome"]["verified"]


def test_tool_metrics_are_logged(scripted_run):
    rows = [json.loads(line) for line in (scripted_run / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["tools/call_frequency"] == 1.0 and rows[0]["tools/failure_frequency"] == 0.5


def test_trace_show_prints_the_transcript(scripted_run):
    result = run_cli("trace", "show", str(scripted_run), "--limit", "2")
    assert result.returncode == 0, result.stderr
    assert "[TOOL CALL] list_dir" in result.stdout and "[TOOL RESULT (list_dir)]" in result.stdout
    assert "malformed tool call" in result.stdout
    missing = run_cli("trace", "show", str(scripted_run), "--step", "9")
    assert missing.returncode == 2 and "has traces for steps 1..1" in missing.stderr


def _task(run_dir, task_id):
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    return next(r for r in ENVIRONMENTS.get("filesystem").obj.tasks("train", 32, 0) if r["task_id"] == task_id)


def test_one_sampling_round_feeds_several_optimizer_steps(tmp_path):
    """grpo.steps_per_generation: the cached loop plays a whole round (2 x 4 rollouts) at once, then TRL takes
    two optimizer steps from it, the second without sampling again."""
    from agent_lightning.config import load_config
    from agent_lightning.rollout.trl_rollout import CachedRollouts
    from agent_lightning.train.pipeline import run_training

    cfg = load_config("configs/tiny.yaml", ["env.name=filesystem", "env.train_size=32", "env.test_size=8",
                                             "grpo.max_steps=2", "grpo.max_completion_length=96",
                                             "grpo.max_turn_tokens=8", "env.max_turns=2",
                                             "grpo.steps_per_generation=2", "eval.at_end=false"])
    rounds = []
    original = CachedRollouts.__call__

    def counted(self, prompts, trainer):
        rounds.append((trainer.state.global_step, len(prompts)))
        return original(self, prompts, trainer)

    CachedRollouts.__call__ = counted
    try:
        run_dir = run_training(cfg, "grpo", str(tmp_path / "fs"))
    finally:
        CachedRollouts.__call__ = original
    assert rounds == [(0, 8)]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]
    assert "reward" in rows[0] and "reward" not in rows[1]  # step 2 trained on the round sampled before step 1
