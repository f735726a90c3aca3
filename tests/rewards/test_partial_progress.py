"""partial_progress: the fraction of verifier checks passed; `only_on_failure` leaves successes to task_success."""

import json


def test_success_partial_and_failure(episodes):
    partial_progress = episodes.reward("partial_progress")
    task = episodes.task("filesystem", "fs-test-00001")  # copy_file: 5 expected files + "no extra files"
    assert len(json.loads(task["expected"])["tree"]) == 5
    target = json.loads(task["solution"])["calls"][-1]["arguments"]["path"]
    good, good_env = episodes.solved("filesystem", task)
    noop, noop_env = episodes.run("filesystem", task, ["Done."])  # the copy is missing: 5 of 6 checks
    wrong = episodes.chatml({"name": "write_file", "arguments": {"path": target, "content": "wrong"}})
    bad, bad_env = episodes.run("filesystem", task, [wrong, "Done."])  # the copy is wrong: 5 of 6
    stray = episodes.chatml({"name": "write_file", "arguments": {"path": "stray.txt", "content": "x"}})
    worse, worse_env = episodes.run("filesystem", task, [wrong, stray, "Done."])  # also a stray file: 4 of 6
    completions, envs = [good, noop, bad, worse], [good_env, noop_env, bad_env, worse_env]
    assert partial_progress(completions=completions, environments=envs) == [1.0, 5 / 6, 5 / 6, 4 / 6]
    assert partial_progress(completions=completions, environments=envs, only_on_failure=True) == [
        None, 5 / 6, 5 / 6, 4 / 6]


def test_single_turn_progress_is_success(episodes):
    task = episodes.env_cls("arithmetic").tasks("test", 1, 0)[0]
    right = episodes.single_turn("arithmetic", task, task["answer"])
    wrong = episodes.single_turn("arithmetic", task, "no idea")
    assert episodes.reward("partial_progress")(completions=[right[0], wrong[0]],
                                               environments=[right[1], wrong[1]]) == [1.0, 0.0]


def test_code_progress_is_the_fraction_of_tests(episodes):
    task = episodes.task("code", "HumanEval/0", split="train", size=200)
    always_true = "```python\ndef has_close_elements(numbers, threshold):\n    return True\n```"
    messages, env = episodes.run("code", task, [always_true])  # 4 of the 7 asserts expect True
    assert episodes.reward("partial_progress")(completions=[messages], environments=[env]) == [4 / 7]


def test_no_environment_is_not_applicable(episodes):
    assert episodes.reward("partial_progress")(completions=[""], environments=None) == [None]
