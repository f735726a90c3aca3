"""The filesystem environment: the reference solver passes every task through the policy's tool-call path;
splits are disjoint and deterministic; the verifier fails what is wrong and says which check failed."""

import importlib
import json
import sys

import pytest

from agent_lightning.chat.segmenter import parse_response_text
from agent_lightning.envs import ToolError
from agent_lightning.errors import UserError
from agent_lightning.registry import ENVIRONMENTS, discover


@pytest.fixture(scope="module")
def env_cls():
    discover()
    return ENVIRONMENTS.get("filesystem").obj


@pytest.fixture(scope="module")
def fs(env_cls):
    """The plugin module (reference_solution, TEMPLATES, MAX_TASKS, ...)."""
    return importlib.import_module(env_cls.__module__)


@pytest.fixture(scope="module")
def test_tasks(env_cls, fs):
    return env_cls.tasks("test", fs.MAX_TASKS["test"], 0)


@pytest.fixture(scope="module")
def train_tasks(env_cls):
    return env_cls.tasks("train", 600, 0)


@pytest.fixture(scope="module")
def dev_tasks(env_cls):
    return env_cls.tasks("dev", 300, 0)


def chatml(call):
    return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"


def mistral(call):
    return f"[TOOL_CALLS]{json.dumps([call])}"


def run_episode(env, task, calls, final, render=chatml):
    """One rollout the way TRL runs it: each call rendered as the policy writes it, parsed, dispatched."""
    env.reset(**task)
    names = type(env).tool_names()
    messages = []
    for call in calls:
        parsed = parse_response_text(render(call), tool_names=names)
        assert parsed.content == "" and len(parsed.calls) == 1 and parsed.calls[0].error is None, parsed
        name, arguments = parsed.calls[0].name, parsed.calls[0].arguments
        messages.append({"role": "assistant", "content": "",
                         "tool_calls": [{"type": "function", "function": {"name": name, "arguments": arguments}}]})
        try:
            result = getattr(env, name)(**arguments)
        except ToolError as exc:
            result = {"error": str(exc)}
        messages.append({"role": "tool", "name": name, "content": str(result)})
    reply = parse_response_text(final, tool_names=names)
    assert not reply.calls
    messages.append({"role": "assistant", "content": reply.content})
    return env._finish_episode(messages)


def solved(env, task, render=chatml):
    solution = json.loads(task["solution"])
    return run_episode(env, task, solution["calls"], solution["final"], render)


# ------------------------------------------------------------------------------- the reference solver
@pytest.mark.parametrize("render", [chatml, mistral])
def test_reference_solver_solves_every_test_task_and_200_train_and_dev_tasks(env_cls, test_tasks, train_tasks,
                                                                            dev_tasks, render):
    env = env_cls()
    for task in test_tasks + train_tasks[:200] + dev_tasks[:200]:
        outcome = solved(env, task, render)
        failed = [name for name, ok in outcome.checks.items() if not ok]
        assert outcome.success and not failed, (task["task_id"], task["prompt"], failed)
        assert outcome.tool_errors == 0 and outcome.tool_calls == len(json.loads(task["solution"])["calls"]) > 0
        assert outcome.progress == 1.0 and outcome.verified
        if "answer" in json.loads(task["expected"]):
            assert outcome.answer == outcome.expected


def test_stored_solution_is_the_reference_solution(fs, test_tasks):
    for task in test_tasks[:50]:
        assert json.loads(task["solution"]) == fs.reference_solution(task)


# -------------------------------------------------------------------------------------------- splits
def _names_and_lines(tasks):
    names, lines = set(), set()
    for task in tasks:
        expected = json.loads(task["expected"])
        for tree in (json.loads(task["files"]), expected["tree"]):
            for path, text in tree.items():
                names.update(part for part in path.split("/") if part)
                lines.update(line for line in text.splitlines() if line.strip())
    return names, lines


def test_splits_share_no_name_and_no_line(test_tasks, train_tasks, dev_tasks):
    train_names, train_lines = _names_and_lines(train_tasks)
    test_names, test_lines = _names_and_lines(test_tasks[:100])
    dev_names, dev_lines = _names_and_lines(dev_tasks[:100])
    assert len(train_names) > 300 and len(test_names) > 100 and len(test_lines) > 300
    assert len(dev_names) > 100 and len(dev_lines) > 300
    assert not train_names & test_names and not dev_names & train_names and not dev_names & test_names
    assert not train_lines & test_lines and not dev_lines & train_lines and not dev_lines & test_lines


def test_split_rows_rebuild_a_split_and_swap_only_its_words(fs, test_tasks, dev_tasks):
    """split_rows with the split's own pool is the split; with another pool, the same templates in the same order,
    every name from that pool's words (benchmarks/template_rows.py relies on both)."""
    assert fs.split_rows("test", 60, 0, fs.POOLS["test"]) == test_tasks[:60]
    swapped = fs.split_rows("test", 60, 0, fs.POOLS["dev"])
    assert [r["template"] for r in swapped] == [r["template"] for r in test_tasks[:60]]
    swapped_names, _ = _names_and_lines(swapped)
    dev_names, _ = _names_and_lines(dev_tasks[:100])
    assert not swapped_names & _names_and_lines(test_tasks[:60])[0] and swapped_names & dev_names


def test_dev_pool_is_new_words_shaped_like_the_test_pool(fs):
    """Dev words are in no other pool, not inside or around one of its words (a dev 'lemonade' would carry the
    training 'lemon'), and the pool is as large as the test pool, with words as long (words.py: it was matched
    to the test pool's token counts under SmolLM2's tokenizer)."""
    dev, others = fs.POOLS["dev"], fs.POOLS["train"] + fs.POOLS["test"]
    assert len(dev) == len(set(dev)) == len(fs.POOLS["test"])
    assert not [(d, w) for d in dev for w in others if d in w or w in d]
    assert sum(map(len, dev)) / len(dev) == pytest.approx(sum(map(len, fs.POOLS["test"])) / len(dev), abs=0.5)


def test_splits_are_sized_seeded_and_cover_every_template(env_cls, fs, test_tasks, train_tasks, dev_tasks):
    test = test_tasks[:100]
    assert len(train_tasks) == 600 and len({t["task_id"] for t in train_tasks}) == 600
    assert len({t["task_id"] for t in test_tasks}) == len(test_tasks) >= 100
    assert test[0]["task_id"] == "fs-test-00000"
    assert len({(t["prompt"], t["files"]) for t in train_tasks}) == 600
    assert env_cls.tasks("test", 100, 0) == test
    assert env_cls.tasks("test", 100, 1) != test
    assert len(fs.TEMPLATES) >= 12
    for split in (train_tasks, test, dev_tasks[:100]):
        assert {t["template"] for t in split} == set(fs.TEMPLATES)
        per_tier = [sum(t["tier"] == tier for t in split) for tier in (1, 2, 3)]
        assert max(per_tier) - min(per_tier) <= 1
        assert all(len(json.loads(t["files"])) <= 20 for t in split)
        assert all(fs.TEMPLATES[t["template"]].tier == t["tier"] for t in split)


def test_sizes_beyond_the_split_and_unknown_splits_are_user_errors(env_cls, fs):
    with pytest.raises(UserError, match="at most"):
        env_cls.tasks("test", fs.MAX_TASKS["test"] + 1, 0)
    with pytest.raises(UserError, match="at most"):
        env_cls.tasks("dev", fs.MAX_TASKS["dev"] + 1, 0)
    with pytest.raises(UserError, match="split 'valid' is not one of train, dev, test"):
        env_cls.tasks("valid", 1, 0)


# -------------------------------------------------------------------------------------- verification
def test_doing_nothing_fails_every_task(env_cls, test_tasks):
    env = env_cls()
    for task in test_tasks[:100]:
        outcome = run_episode(env, task, [], "")
        assert not outcome.success and outcome.progress == 0.0, task["prompt"]  # no credit for what it left alone
        assert outcome.graded_progress == 0.0, task["prompt"]  # nor partial credit for a file left as it was


def _break_one_character(text):
    i = len(text) // 2 if len(text) > 1 else 0
    return text[:i] + ("x" if text[i] != "x" else "y") + text[i + 1:]


def test_one_wrong_character_fails_exactly_that_file(env_cls, test_tasks):
    env = env_cls()
    tried, earned = set(), set()
    for task in test_tasks[:100]:
        solution = json.loads(task["solution"])
        writes = [c for c in solution["calls"] if c["name"] == "write_file"]
        if not writes:
            continue
        bad = writes[-1]["arguments"]
        bad["content"] = _break_one_character(bad["content"])
        outcome = run_episode(env, task, solution["calls"], solution["final"])
        failed = [name for name, ok in outcome.checks.items() if not ok]
        assert not outcome.success and failed == [f"file {bad['path']} == expected"], (task["prompt"], failed)
        assert outcome.progress < 1
        assert outcome.progress <= outcome.graded_progress < 1, task["prompt"]
        tried.add(task["template"])
        if outcome.graded_progress > outcome.progress:  # a near miss earns part of the file (not a one-word file,
            earned.add(task["template"])  # nor an edit whose broken word undoes as much as it did)
    assert len(tried) >= 8 and len(earned) >= 6, earned


def test_a_stray_file_or_folder_fails_no_extra_files(env_cls, test_tasks):
    env = env_cls()
    for task, stray in ((test_tasks[0], {"name": "write_file", "arguments": {"path": "stray.txt", "content": "x"}}),
                        (test_tasks[1], {"name": "make_dir", "arguments": {"path": "stray"}})):
        solution = json.loads(task["solution"])
        outcome = run_episode(env, task, solution["calls"] + [stray], solution["final"])
        assert not outcome.success and [n for n, ok in outcome.checks.items() if not ok] == ["no extra files"]


def test_a_wrong_answer_fails_answer_tasks(env_cls, test_tasks):
    env = env_cls()
    questions = [t for t in test_tasks[:100] if "answer" in json.loads(t["expected"])]
    assert {t["template"] for t in questions} == {"find_word", "count_files"}
    for task in questions:
        solution = json.loads(task["solution"])
        outcome = run_episode(env, task, solution["calls"], "I think it is:\nnothing here")
        assert not outcome.success and outcome.answer == "nothing here"
        assert outcome.expected == json.loads(task["expected"])["answer"]
        assert [n for n, ok in outcome.checks.items() if not ok] == ["answer"]


@pytest.mark.parametrize("reply, answer", [
    ("a/b.txt", "a/b.txt"),
    ("It is in:\n`a/b.txt`.", "a/b.txt"),
    ("Answer: a/b.txt", "a/b.txt"),
    ("The answer is **7**.", "7"),
    ("final answer = './a/b.txt'\n\n", "a/b.txt"),
    ("7 files", "7 files"),
    ("", ""),
])
def test_final_answer(fs, reply, answer):
    assert fs.final_answer(reply) == answer


@pytest.mark.parametrize("have, want, ok", [
    ("a\nb\n", "a\nb\n", True), ("a\nb", "a\nb\n", True), ("a\nb\n", "a\nb", True),
    ("a\nb\n\n", "a\nb", False), ("a\nB\n", "a\nb\n", False), (" a\nb\n", "a\nb\n", False),
])
def test_content_comparison_tolerates_one_trailing_newline(fs, have, want, ok):
    assert fs.same_text(have, want) is ok


HELD_AT_EXIT = """
from agent_lightning.registry import ENVIRONMENTS, discover
from agent_lightning.rollout.episodes import Episode
discover()
fs = ENVIRONMENTS.get("filesystem").obj
task = fs.tasks("test", 1, 0)[0]
episodes = [Episode(fs()) for _ in range(3)]  # as play_episodes returns them, alive while the modules are torn down
for episode in episodes:
    episode.env.reset(**task)
print("\\n".join(str(episode.env.workspace.root) for episode in episodes))
from agent_lightning.sandbox.owners import UID_LOCKS  # as root each workspace holds a uid lock file until released
print("\\n".join(f"{UID_LOCKS}/{episode.env.workspace.owner[0]}" for episode in episodes
                 if episode.env.workspace.owner))
"""


def test_environments_alive_at_interpreter_exit_leave_no_error_no_workspace_and_no_uid_lock():
    import subprocess
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", HELD_AT_EXIT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Exception ignored" not in out.stderr, out.stderr
    left = [Path(line) for line in out.stdout.split()]  # 3 workspace folders, then (as root) 3 uid lock files
    assert len(left) in (3, 6) and not [path for path in left if path.exists()]


def test_text_credit_counts_the_words_in_order_and_only_the_way_from_the_start(fs):
    want = "a b\nc d\n"
    assert fs.word_share(want, want) == 1.0 and fs.word_share("a b\nc d", want) == 1.0  # trailing newline
    assert fs.word_share("a b\nc X\n", want) == 0.75  # one garbled word of four
    assert fs.word_share("c d\na b\n", want) == 0.25  # lines swapped: one word in order (the others' breaks moved)
    for near in ("a b\r\nc d\n", "a  b\nc d\n", "a b c d\n"):  # nothing the split drops: these differ
        assert fs.word_share(near, want) < 1, near
    assert fs.text_credit("a b\n", "a b\nc d\n", None) == 1 / 3  # a new file: its share ("b" ended no line)
    assert fs.text_credit("a b\n", "a b\nc d\n", "a b\n") == 0.0  # left as it was: nothing
    assert fs.text_credit("a\n", "a b\nc d\n", "a b\n") == 0.0  # worse than the start: nothing
    appended = fs.text_credit("a b\nc X\n", "a b\nc d\n", "a b\n")  # the appended line, one word garbled
    assert appended == (0.75 - 1 / 3) / (1 - 1 / 3)
