"""SFT data: verified demonstrations from the environments, local JSONL, the weighted mixture, the held-out split."""

import json
from collections import Counter

import pytest

from agent_lightning.errors import UserError
from agent_lightning.registry import ENVIRONMENTS, discover
from agent_lightning.train.sft_data import (demonstration, environment_demonstrations, load_jsonl, mix,
                                            split_held_out)


@pytest.fixture(scope="module")
def envs():
    discover()
    return {name: ENVIRONMENTS.get(name).obj for name in ("filesystem", "arithmetic", "tools", "code")}


def test_filesystem_demonstrations_are_verified_replays_with_real_tool_results(envs):
    demos = environment_demonstrations(envs["filesystem"], "train", 30, seed=0)
    assert len(demos) == 30
    demo = demos[0]
    roles = [m["role"] for m in demo["messages"]]
    assert roles[:2] == ["system", "user"] and roles[-1] == "assistant"
    assert "tool" in roles and {t["function"]["name"] for t in demo["tools"]} == set(envs["filesystem"].tool_names())
    # the tool results are what the sandbox really returned, e.g. a listing or a byte count
    results = [m["content"] for m in demo["messages"] if m["role"] == "tool"]
    assert all(r and not r.startswith("{'error'") for r in results)


def test_filesystem_demonstrations_group_independent_calls_and_only_use_what_an_agent_has_seen(envs):
    """Calls that do not need each other's results share a turn (at most MAX_CALLS_PER_TURN), so every template
    fits in env.max_turns; and no turn lists or reads a path the agent could not know yet: each path comes from
    the prompt or from a tool result of an earlier turn."""
    from agent_lightning.environments.filesystem import MAX_CALLS_PER_TURN, TEMPLATES

    tasks = envs["filesystem"].tasks("train", 3 * len(TEMPLATES), 0)
    assert {t["template"] for t in tasks} == set(TEMPLATES)
    grouped = 0
    for task in tasks:
        demo = demonstration(envs["filesystem"], task, None)
        assert demo is not None, task["task_id"]
        turns = [m for m in demo["messages"] if m["role"] == "assistant"]
        assert len(turns) - 1 <= 6 and all(len(t.get("tool_calls") or []) <= MAX_CALLS_PER_TURN for t in turns)
        grouped += any(len(t.get("tool_calls") or []) > 1 for t in turns)
        seen = task["prompt"]
        for message in demo["messages"][1:]:
            if message["role"] == "tool":
                seen += "\n" + message["content"]
            for call in message.get("tool_calls") or []:
                arguments = call["function"]["arguments"]
                if call["function"]["name"] in ("list_dir", "read_file"):
                    name = arguments["path"].rstrip("/").rsplit("/", 1)[-1]
                    assert arguments["path"] in seen or name in seen, (task["template"], arguments["path"])
    assert grouped >= 3 * 3  # merge_files, sort_by_extension and prefix_move always group calls


def test_a_trajectory_that_does_not_verify_is_dropped(envs):
    task = dict(envs["filesystem"].tasks("train", 1, 0)[0])
    solution = json.loads(task["solution"])
    for call in solution["calls"]:
        if "content" in call["arguments"]:
            call["arguments"]["content"] += " (typo)"
    task["solution"] = json.dumps(solution)
    assert demonstration(envs["filesystem"], task, None) is None


def test_single_turn_environments_give_prompt_answer_pairs(envs):
    demo = environment_demonstrations(envs["arithmetic"], "train", 5, seed=0)[0]
    assert [m["role"] for m in demo["messages"]][-2:] == ["user", "assistant"] and demo["tools"] is None


def test_jsonl_sources_and_their_errors(tmp_path):
    good = tmp_path / "chat.jsonl"
    good.write_text(json.dumps({"instruction": "Say hi", "response": "hi", "system": "Be brief."}) + "\n\n" +
                    json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}) + "\n")
    examples = load_jsonl(good)
    assert [e["source"] for e in examples] == ["chat", "chat"]
    assert examples[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    bad = tmp_path / "bad.jsonl"
    for text, message in ((json.dumps({"prompt": "x"}), r"bad.jsonl:1: expected"),
                          ("{not json", r"bad.jsonl:1: not JSON"),
                          (json.dumps({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}),
                           "the last message must be the assistant's")):
        bad.write_text(text + "\n")
        with pytest.raises(UserError, match=message):
            load_jsonl(bad)


def test_the_mixture_follows_the_weights_and_the_seed(envs):
    a = [{"task_id": f"a{i}", "source": "a"} for i in range(50)]
    b = [{"task_id": f"b{i}", "source": "b"} for i in range(10)]
    data = mix({"a": (a, 3.0), "b": (b, 1.0)}, size=4000, seed=1)
    share = Counter(e["source"] for e in data)["b"] / len(data)
    assert 0.22 < share < 0.28  # P(b) = 1 / (3 + 1)
    assert mix({"a": (a, 3.0), "b": (b, 1.0)}, size=100, seed=1) == data[:100]
    first_pass = [e["task_id"] for e in mix({"b": (b, 1.0)}, size=10, seed=2)]
    assert sorted(first_pass) == sorted(e["task_id"] for e in b)  # no reuse before a source is exhausted
    with pytest.raises(UserError, match="no source"):
        mix({"a": (a, 0.0)}, size=1, seed=0)


def test_held_out_split_is_by_task_and_seeded():
    data = [{"task_id": f"t{i % 20}"} for i in range(60)]
    train, held = split_held_out(data, 0.25, seed=0)
    assert not {e["task_id"] for e in train} & {e["task_id"] for e in held}
    assert len({e["task_id"] for e in held}) == 5
    assert split_held_out(data, 0.25, seed=0) == (train, held)


def test_train_tiers_keep_the_same_tasks_in_order_and_name_a_tier_that_does_not_exist(envs):
    from agent_lightning.envs import tasks_in_tiers

    fs = envs["filesystem"]
    every = fs.tasks("train", 60, 0)
    easy = [t["task_id"] for t in every if t["tier"] in (1, 2)][:30]
    demos = environment_demonstrations(fs, "train", 30, seed=0, tiers=[1, 2])
    assert [d["task_id"] for d in demos] == easy  # drawn further into the split until 30 match
    assert [t["task_id"] for t in tasks_in_tiers(fs, "train", 30, 0, [])] == [t["task_id"] for t in every[:30]]
    with pytest.raises(UserError, match=r"env.train_tiers=\[4\].*theirs: \[1, 2, 3\]"):
        tasks_in_tiers(fs, "train", 5, 0, [4])
    # a split smaller than asked, none of it in the tiers (HumanEval has no tiers): an error, not an empty list
    with pytest.raises(UserError, match=r"train_tiers=\[1, 2\]: none of the first 131 train tasks of 'code'.*no tier"):
        tasks_in_tiers(envs["code"], "train", 2000, 0, [1, 2])


def test_a_reference_turn_can_say_a_note_before_its_calls(envs):
    """append_line's write turn names the line to add before the write (the copy of the file it just read wins
    over the instruction otherwise); turns without a note say nothing; the replay still verifies."""
    fs = envs["filesystem"]
    tasks = [t for t in fs.tasks("train", 60, 0) if t["template"] == "append_line"]
    assert tasks
    for task in tasks:
        line = task["prompt"].split("`")[1]
        demo = demonstration(fs, task, fs.system_prompt)
        assert demo is not None
        turns = [m for m in demo["messages"] if m["role"] == "assistant" and m.get("tool_calls")]
        read, write = turns
        assert read["content"] == "" and read["tool_calls"][0]["function"]["name"] == "read_file"
        assert write["content"] == f"Adding `{line}` after its last line."
        assert write["tool_calls"][0]["function"]["arguments"]["content"].endswith(line + "\n")
    solution = json.loads(tasks[0]["solution"])
    assert solution["notes"] == ["", f"Adding `{tasks[0]['prompt'].split('`')[1]}` after its last line."]
    with pytest.raises(UserError, match="notes"):
        demonstration(fs, {**tasks[0], "solution": json.dumps({**solution, "notes": [""]})}, None)
