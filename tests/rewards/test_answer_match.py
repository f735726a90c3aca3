"""answer_match: outcome.answer vs outcome.expected, as text or as a number within rel_tol; None without one."""

import json
import sys


def _arithmetic_task(episodes, numeric: bool):
    tasks = episodes.env_cls("arithmetic").tasks("test", 40, 0)
    return next(t for t in tasks if t["answer"].lstrip("-").isdigit() == numeric)


def test_single_turn_numbers_and_words(episodes):
    answer_match = episodes.reward("answer_match")
    number = _arithmetic_task(episodes, numeric=True)
    word = _arithmetic_task(episodes, numeric=False)
    runs = [
        episodes.single_turn("arithmetic", number, f"It is {number['answer']}."),
        episodes.single_turn("arithmetic", number, f"{number['answer']}.0"),  # the env's exact check fails this
        episodes.single_turn("arithmetic", number, str(int(number["answer"]) + 1)),
        episodes.single_turn("arithmetic", word, word["answer"].swapcase()),
        episodes.single_turn("arithmetic", word, "banana"),
    ]
    completions, envs = [c for c, _ in runs], [e for _, e in runs]
    assert answer_match(completions=completions, environments=envs) == [1.0, 1.0, 0.0, 1.0, 0.0]
    assert episodes.reward("task_success")(completions=completions, environments=envs) == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert answer_match(completions=completions, environments=envs, case_sensitive=True)[3] == 0.0


def test_numeric_tolerance_on_a_tools_question(episodes):
    answer_match = episodes.reward("answer_match")
    task = episodes.task("tools", "tools-test-00003", size=6)  # order_total: answer with the total cost
    total = json.loads(task["expected"])["answer"]
    assert total == "953"
    calls = [episodes.chatml(c) for c in json.loads(task["solution"])["calls"]]
    runs = [episodes.run("tools", task, calls + [f"The total is:\n{reply}"])
            for reply in ("953", "953.0", "953.5", "954")]
    completions, envs = [m for m, _ in runs], [e for _, e in runs]
    assert answer_match(completions=completions, environments=envs) == [1.0, 1.0, 0.0, 0.0]
    # |953.5 - 953| / 953.5 = 5.2e-4 <= 1e-3; |954 - 953| / 954 = 1.05e-3 > 1e-3
    assert answer_match(completions=completions, environments=envs, rel_tol=1e-3) == [1.0, 1.0, 1.0, 0.0]


def test_matching_rules(episodes):
    matches = sys.modules[episodes.reward("answer_match").__module__].matches
    assert matches("1,234", "1234") and matches(" 12 ", "12.000") and matches("-3e2", "-300")
    assert matches("Paris", "paris") and not matches("Paris", "paris", case_sensitive=True)
    assert matches("0.0000000001", "0") and not matches("0.001", "0")  # abs_tol for answers near zero
    assert not matches(None, "1") and not matches("twelve", "12")
    assert matches("nan", "nan ") and not matches("inf", "1e400")  # equal text matches; no number is infinite


def test_filesystem_question_and_tasks_without_an_answer(episodes):
    answer_match = episodes.reward("answer_match")
    question = episodes.task("filesystem", "fs-test-00011")  # find_word
    right = episodes.solved("filesystem", question)
    wrong = episodes.run("filesystem", question, ["muffin/nowhere.md"])
    no_question = episodes.solved("filesystem", episodes.task("filesystem", "fs-test-00001"))
    code = episodes.run("code", episodes.task("code", "HumanEval/0", split="train", size=200), ["pass"])
    runs = [right, wrong, no_question, code]
    assert answer_match(completions=[m for m, _ in runs], environments=[e for _, e in runs]) == [1.0, 0.0, None, None]
