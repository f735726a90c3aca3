"""structure: 1/3 each for reasoning before the first call, a call, and a final answer after the last result."""

import json

READ = {"name": "read_file", "arguments": {"path": "a.txt"}}


def _call(content: str = "") -> dict:
    return {"role": "assistant", "content": content, "tool_calls": [{"type": "function", "function": READ}]}


RESULT = {"role": "tool", "name": "read_file", "content": "hello"}


def test_rubric_on_trl_messages(episodes):
    structure = episodes.reward("structure")
    env = episodes.env_cls("filesystem")()
    answer = {"role": "assistant", "content": "The file says hello."}
    completions = [
        [_call("First I read the file."), RESULT, answer],             # reason, act, answer
        [_call(), RESULT, answer],                                     # act, answer
        [_call("Reading it."), RESULT],                                # reason, act; no answer after the result
        [{"role": "assistant", "content": "It says hello."}],          # answer only
        [_call(), RESULT, _call("Once more."), RESULT, answer],       # reasoning only after the first call
        [{"role": "assistant", "content": ""}],                        # nothing
    ]
    assert structure(completions=completions, environments=[env] * 6) == [1.0, 2 / 3, 2 / 3, 1 / 3, 2 / 3, 0.0]


def test_rubric_on_raw_text_segments(episodes):
    structure = episodes.reward("structure")
    call = f"<tool_call>{json.dumps(READ)}</tool_call>"
    completions = [
        f"<think>I need the file.</think>{call}",                # thought, call; no answer
        f"<think>I need the file.</think>{call}Here it is.",     # + text after the call
        f"{call}<tool_response>hello</tool_response>It says hello.",  # a written result counts as one
        f"[TOOL_CALLS][{json.dumps(READ)}]",                       # Mistral call alone
    ]
    assert structure(completions=completions) == [2 / 3, 1.0, 2 / 3, 1 / 3]


def test_min_reasoning_words(episodes):
    structure = episodes.reward("structure")
    short = [[_call("Ok."), RESULT, {"role": "assistant", "content": "Done."}]]
    assert structure(completions=short) == [1.0]
    assert structure(completions=short, min_reasoning_words=3) == [2 / 3]


def test_a_real_episode_and_single_turn_environments(episodes):
    structure = episodes.reward("structure")
    task = episodes.task("filesystem", "fs-test-00001")
    solution = json.loads(task["solution"])
    turns = ["I will read the source, then write the copy.\n" + episodes.chatml(solution["calls"][0]),
             episodes.chatml(solution["calls"][1]), solution["final"]]
    messages, env = episodes.run("filesystem", task, turns)
    assert env.outcome.success
    plain, plain_env = episodes.solved("filesystem", task)
    arithmetic = episodes.env_cls("arithmetic").tasks("test", 1, 0)[0]
    single, single_env = episodes.single_turn("arithmetic", arithmetic, "Let me think. 12")
    assert structure(completions=[messages, plain, single],
                     environments=[env, plain_env, single_env]) == [1.0, 2 / 3, None]


def test_odd_completions_never_raise(episodes):
    odd = [None, "", [], [None, 1], [{"role": "assistant", "content": None, "tool_calls": None}],
           [{"role": "tool", "content": None}], "<tool_call>" * 20 + "</think>" * 5]
    assert episodes.reward("structure")(completions=odd) == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1 / 3]
