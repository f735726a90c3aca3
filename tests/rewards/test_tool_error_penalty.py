"""tool_error_penalty: -penalty per failed tool call, clipped at -max_penalty; None for single-turn environments."""

import pytest

from agent_lightning.config import RewardSpec
from agent_lightning.rewarding import RewardSuite


def _episode(episodes, bad_calls: int):
    task = episodes.task("filesystem", "fs-test-00001")
    bad = episodes.chatml({"name": "read_file", "arguments": {"path": "../outside.txt"}})  # refused by the sandbox
    return episodes.run("filesystem", task, [bad] * bad_calls + ["Done."])


def test_penalty_per_error_and_clip(episodes):
    penalty = episodes.reward("tool_error_penalty")
    task = episodes.task("filesystem", "fs-test-00001")
    runs = [episodes.solved("filesystem", task), _episode(episodes, 1), _episode(episodes, 3), _episode(episodes, 5)]
    assert [env.outcome.tool_errors for _, env in runs] == [0, 1, 3, 5]
    completions, envs = [m for m, _ in runs], [e for _, e in runs]
    assert penalty(completions=completions, environments=envs) == [0.0, -0.25, -0.75, -1.0]
    assert penalty(completions=completions, environments=envs, penalty=0.5, max_penalty=2.0) == [0.0, -0.5, -1.5, -2.0]


def test_malformed_calls_are_errors_too(episodes):
    task = episodes.task("filesystem", "fs-test-00001")
    messages, env = episodes.run("filesystem", task, ['<tool_call>{"name": "read_file"}</tool_call>', "Done."])
    assert episodes.reward("tool_error_penalty")(completions=[messages], environments=[env]) == [-0.25]


def test_single_turn_environment_is_not_applicable(episodes):
    task = episodes.env_cls("arithmetic").tasks("test", 1, 0)[0]
    completion, env = episodes.single_turn("arithmetic", task, "7")
    assert episodes.reward("tool_error_penalty")(completions=[completion], environments=[env]) == [None]


def test_a_negative_penalty_is_refused_and_the_suite_counts_it(episodes):
    messages, env = _episode(episodes, 1)
    with pytest.raises(ValueError, match="must be >= 0"):
        episodes.reward("tool_error_penalty")(completions=[messages], environments=[env], penalty=-1)
    suite = RewardSuite.from_config([RewardSpec(name="tool_error_penalty", kwargs={"penalty": -1})],
                                    episodes.env_cls("filesystem"))
    assert suite.functions[0](prompts=["p"], completions=[messages], environments=[env]) == [0.0]
    assert suite.error_counts["tool_error_penalty"] == 1
