"""unit_tests_passed: the fraction of a HumanEval problem's tests passed in the code env; None elsewhere."""

import json


def _answer(body: str) -> str:
    return f"```python\ndef has_close_elements(numbers, threshold):\n{body}\n```"


def test_canonical_partial_wrong_and_missing_solutions(episodes):
    unit_tests = episodes.reward("unit_tests_passed")
    task = episodes.task("code", "HumanEval/0", split="train", size=200)  # 7 asserts: 4 expect True, 3 False
    runs = [
        episodes.solved("code", task),
        episodes.run("code", task, [_answer("    return True")]),
        episodes.run("code", task, [_answer("    return None")]),
        episodes.run("code", task, ["I give up."]),
    ]
    envs = [e for _, e in runs]
    assert [len(e.outcome.checks) for e in envs] == [7] * 4
    assert unit_tests(completions=[m for m, _ in runs], environments=envs) == [1.0, 4 / 7, 0.0, 0.0]
    assert [e.outcome.progress for e in envs] == [1.0, 4 / 7, 0.0, 0.0]


def test_other_environments_are_not_applicable(episodes):
    unit_tests = episodes.reward("unit_tests_passed")
    fs = episodes.solved("filesystem", episodes.task("filesystem", "fs-test-00001"))
    arithmetic = episodes.env_cls("arithmetic").tasks("test", 1, 0)[0]
    single = episodes.single_turn("arithmetic", arithmetic, arithmetic["answer"])
    assert unit_tests(completions=[fs[0], single[0], "x"], environments=[fs[1], single[1], None]) == [None, None, None]


def test_reference_solution_runs_through_the_tool(episodes):
    task = episodes.task("code", "HumanEval/0", split="train", size=200)
    messages, env = episodes.solved("code", task)
    assert env.outcome.tool_calls == len(json.loads(task["solution"])["calls"]) == 1 and env.outcome.tool_errors == 0
    assert "[exit code" not in messages[1]["content"]
