"""partial_progress: the share of the task's own checks passed; `only_on_failure` leaves successes to task_success."""

import json


def test_only_the_asked_for_change_earns_credit(episodes):
    partial_progress = episodes.reward("partial_progress")
    task = episodes.task("filesystem", "fs-test-00001")  # copy_file: 5 expected files + "no extra files"
    assert len(json.loads(task["expected"])["tree"]) == 5
    call = json.loads(task["solution"])["calls"][-1]
    target = call["arguments"]["path"]
    good, good_env = episodes.solved("filesystem", task)
    noop, noop_env = episodes.run("filesystem", task, ["Done."])  # 5 of 6 checks pass, none of them the copy
    wrong = episodes.chatml({"name": "write_file", "arguments": {"path": target, "content": "wrong"}})
    bad, bad_env = episodes.run("filesystem", task, [wrong, "Done."])
    stray = episodes.chatml({"name": "write_file", "arguments": {"path": "stray.txt", "content": "x"}})
    messy, messy_env = episodes.run("filesystem", task, [episodes.chatml(call), stray, "Done."])  # right + a stray
    completions, envs = [good, noop, bad, messy], [good_env, noop_env, bad_env, messy_env]
    assert [e.outcome.success for e in envs] == [True, False, False, False]
    assert partial_progress(completions=completions, environments=envs) == [1.0, 0.0, 0.0, 1 / 2]
    assert partial_progress(completions=completions, environments=envs, only_on_failure=True) == [
        None, 0.0, 0.0, 1 / 2]


def test_graded_credit_ranks_a_near_miss_above_a_miss(episodes):
    partial_progress = episodes.reward("partial_progress")
    task = episodes.task("filesystem", "fs-test-00001")  # copy_file
    call = json.loads(task["solution"])["calls"][-1]
    lines = call["arguments"]["content"].split("\n")
    garbled = {**call, "arguments": {**call["arguments"], "content": "\n".join(["garbled", *lines[1:]])}}
    near, near_env = episodes.run("filesystem", task, [episodes.chatml(garbled), "Done."])
    wrong = episodes.chatml({"name": "write_file", "arguments": {"path": call["arguments"]["path"], "content": "x"}})
    miss, miss_env = episodes.run("filesystem", task, [wrong, "Done."])
    good, good_env = episodes.solved("filesystem", task)
    completions, envs = [good, near, miss], [good_env, near_env, miss_env]
    assert len([line for line in lines if line]) >= 2 and not near_env.outcome.success
    assert partial_progress(completions=completions, environments=envs) == [1.0, 0.0, 0.0]  # binary by default
    graded = partial_progress(completions=completions, environments=envs, graded=True)
    assert graded[0] == 1.0 and 0 < graded[1] < 1 and graded[2] == 0.0, graded


def test_a_task_with_several_changes_earns_credit_per_change(episodes):
    task = next(t for t in episodes.env_cls("filesystem").tasks("test", 100, 0) if t["template"] == "prefix_move")
    calls = json.loads(task["solution"])["calls"]
    first_move = next(i for i, c in enumerate(calls) if c["name"] == "move")
    first, env = episodes.run("filesystem", task, [episodes.chatml(c) for c in calls[:first_move + 1]] + ["Done."])
    targets = env.outcome.targets
    assert len(targets) >= 3 and 0 < env.outcome.progress < 1
    assert episodes.reward("partial_progress")(completions=[first], environments=[env]) == [
        sum(env.outcome.checks[t] for t in targets) / len(targets)]


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
