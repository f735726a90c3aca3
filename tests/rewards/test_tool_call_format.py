"""tool_call_format: well-formed calling turns / calling turns, through the policy's real parsing path."""

import json

READ = {"name": "read_file", "arguments": {"path": "notes.txt"}}


def test_reference_episode_is_fully_well_formed(episodes):
    fmt = episodes.reward("tool_call_format")
    task = episodes.task("filesystem", "fs-test-00002")  # sort_by_extension: 11 calls
    messages, env = episodes.solved("filesystem", task)
    assert sum(bool(m.get("tool_calls")) for m in messages) == 11
    assert fmt(completions=[messages], environments=[env]) == [1.0]


def test_malformed_and_unknown_tool_calls_count_against_their_turn(episodes):
    fmt = episodes.reward("tool_call_format")
    task = episodes.task("filesystem", "fs-test-00001")
    turns = [
        episodes.chatml(READ),                                           # well-formed
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"\n',  # cut-off JSON: repaired, fine
        '<tool_call>\n{"name": "read_file", "arguments": "a.txt"}\n</tool_call>',  # arguments not an object
        episodes.chatml({"name": "cat", "arguments": {"path": "a.txt"}}),  # unknown tool
        episodes.chatml(READ) + episodes.chatml({"name": "rm", "arguments": {}}),  # one of two calls bad
        "Done.",
    ]
    messages, env = episodes.run("filesystem", task, turns)
    malformed = [c["function"]["arguments"] for m in messages for c in m.get("tool_calls", [])
                 if "__malformed__" in c["function"]["arguments"]]
    assert len(malformed) == 3  # the parser marked them; the environment counted them as errors
    assert env.outcome.tool_errors >= 3
    assert fmt(completions=[messages], environments=[env]) == [2 / 5]


def test_no_call_in_a_tool_environment(episodes):
    fmt = episodes.reward("tool_call_format")
    task = episodes.task("filesystem", "fs-test-00001")
    messages, env = episodes.run("filesystem", task, ["I would copy the file, but I will not."])
    assert fmt(completions=[messages], environments=[env]) == [0.0]
    assert fmt(completions=[messages], environments=[env], require_call=False) == [None]


def test_single_turn_environment_is_not_applicable(episodes):
    fmt = episodes.reward("tool_call_format")
    task = episodes.env_cls("arithmetic").tasks("test", 1, 0)[0]
    completion, env = episodes.single_turn("arithmetic", task, episodes.chatml(READ))
    assert fmt(completions=[completion], environments=[env]) == [None]
    assert fmt(completions=[completion], environments=None) == [None]


def test_calls_left_in_the_text_are_read_by_the_segmenter(episodes):
    """Plain-string completions, or a turn a strict parser left as text: the raw content is segmented."""
    fmt = episodes.reward("tool_call_format")
    env = episodes.env_cls("filesystem")()
    completions = [
        "Let me look.\n" + episodes.chatml(READ),                          # ChatML, well-formed
        '[TOOL_CALLS][{"name": "read_file", "arguments": {"path": "a"}}]',  # Mistral v0.3, well-formed
        '<tool_call>{"name": "read_file", "arguments": {"path": "a.txt" "x"}}</tool_call>',  # broken JSON
        [{"role": "assistant", "content": episodes.chatml({"name": "nope", "arguments": {}})}],  # unknown tool
        [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
            "name": "read_file", "arguments": json.dumps({"path": "a"})}}]}],  # arguments as a JSON string
    ]
    assert fmt(completions=completions, environments=[env] * 5) == [1.0, 1.0, 0.0, 0.0, 1.0]


def test_odd_completions_never_raise(episodes):
    fmt = episodes.reward("tool_call_format")
    env = episodes.env_cls("filesystem")()
    odd = ["", [], [{"role": "assistant", "content": None}], [{"role": "assistant"}], [None, 3, "text"],
           [{"role": "assistant", "content": [{"type": "text", "text": episodes.chatml(READ)}]}],
           [{"role": "assistant", "content": None, "tool_calls": [None, {"function": None}, {"type": "function"}]}],
           [{"role": "tool", "content": "x"}], "<tool_call>" * 50]
    assert fmt(completions=odd, environments=[env] * len(odd)) == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
