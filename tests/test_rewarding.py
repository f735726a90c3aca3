import math

import pytest

from agent_lightning.config import RewardSpec
from agent_lightning.errors import UserError
from agent_lightning.registry import ENVIRONMENTS, discover
from agent_lightning.chat.messages import completion_text
from agent_lightning.rewarding import RewardSuite


@pytest.fixture(scope="module")
def arithmetic():
    discover()
    return ENVIRONMENTS.get("arithmetic").obj


def _batch(arithmetic, replies):
    tasks = arithmetic.tasks("test", len(replies), 0)
    completions = [[{"role": "assistant", "content": r}] for r in replies]
    columns = {k: [t[k] for t in tasks] for k in ("task_id", "answer", "tier")}
    return tasks, completions, columns


def test_only_declared_arguments_are_passed(arithmetic):
    seen = {}

    def needs_answer(completions, answer):
        seen["args"] = (len(completions), answer)
        return [0.5] * len(completions)

    suite = RewardSuite(arithmetic)
    suite.add("needs_answer", needs_answer)
    tasks, completions, columns = _batch(arithmetic, ["1", "2"])
    out = suite.functions[0](prompts=["p", "p"], completions=completions, completion_ids=[[1], [2]],
                             trainer_state=object(), **columns)
    assert out == [0.5, 0.5]
    assert seen["args"] == (2, columns["answer"])


def test_single_turn_environments_are_built_and_verified(arithmetic):
    suite = RewardSuite.from_config([RewardSpec(name="exact_answer")], arithmetic)
    tasks, completions, columns = _batch(arithmetic, ["", ""])
    completions[0] = [{"role": "assistant", "content": f"The answer is {tasks[0]['answer']}"}]
    out = suite.functions[0](prompts=["p"] * 2, completions=completions, completion_ids=[[1], [2]], **columns)
    assert out == [1.0, 0.0]


@pytest.mark.parametrize("bad, on_error, expected", [
    (lambda completions: 1 / 0, "zero", [0.0, 0.0]),
    (lambda completions: [math.nan, 1.0], "zero", [0.0, 0.0]),
    (lambda completions: [1.0], "skip", [None, None]),
    (lambda completions: ["high", "low"], "skip", [None, None]),
    (lambda completions: None, "zero", [0.0, 0.0]),
])
def test_failing_rewards_are_isolated_and_counted(arithmetic, bad, on_error, expected):
    suite = RewardSuite(arithmetic)
    suite.add("bad", bad, on_error=on_error)
    _, completions, columns = _batch(arithmetic, ["1", "2"])
    for _ in range(3):
        assert suite.functions[0](completions=completions, **columns) == expected
    assert suite.error_counts["bad"] == 3


def test_on_error_raise_propagates(arithmetic):
    suite = RewardSuite(arithmetic)
    suite.add("bad", lambda completions: 1 / 0, on_error="raise")
    with pytest.raises(ZeroDivisionError):
        suite.functions[0](completions=["x"])


def test_config_errors(arithmetic):
    with pytest.raises(UserError, match="on_error: 'ignore' is not one of zero, skip, raise"):
        RewardSuite.from_config([RewardSpec(name="exact_answer", on_error="ignore")], arithmetic)
    with pytest.raises(UserError, match="names no reward"):
        RewardSuite.from_config([], arithmetic)


def test_completion_text_handles_both_formats():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "a\nb"


def test_registry_rewards_work_in_a_bare_trl_grpo_trainer(arithmetic, tmp_path):
    """A TRL user can pass our reward functions straight to trl.GRPOTrainer."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from agent_lightning.config import PolicySection
    from agent_lightning.policy import load_policy

    # its own policy: TRL's trainer turns on gradient checkpointing and turns off the KV cache of the model it
    # trains, which would change the session's shared `tiny_policy` for the tests that run after this one
    model, tokenizer = load_policy(PolicySection(source="tiny-mistral"))
    suite = RewardSuite.from_config([RewardSpec(name="exact_answer")], arithmetic)
    calls = []

    def spy(completions, answer, **kwargs):
        calls.append(len(completions))
        return [0.0] * len(completions)

    suite.add("spy", spy)
    rows = arithmetic.tasks("train", 8, 0)
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}], "answer": r["answer"],
                               "task_id": r["task_id"], "tier": r["tier"]} for r in rows])
    args = GRPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=4, report_to="none", use_cpu=True, save_strategy="no",
                      reward_weights=suite.weights, disable_tqdm=True)
    trainer = GRPOTrainer(model=model, reward_funcs=suite.functions, args=args, train_dataset=data,
                          processing_class=tokenizer)
    trainer.train()
    assert calls == [4]
    logged = trainer.state.log_history[0]
    assert "rewards/exact_answer/mean" in logged and "rewards/spy/mean" in logged
