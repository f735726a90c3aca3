"""repetition_penalty: -(1 - distinct/total) word n-grams of the assistant's own text, tools left out."""

import json

import pytest


@pytest.mark.parametrize("text, expected", [
    ("a b c a b c", -0.25),                    # 4 trigrams, 3 distinct
    ("The cat sat on the mat.", 0.0),
    ("too short", 0.0),
    ("", 0.0),
    ("go go go go go go", -0.75),              # 4 trigrams, 1 distinct
    ("A B C. a b c!", -0.25),                  # case and punctuation do not matter
])
def test_fraction_of_repeated_trigrams(episodes, text, expected):
    assert episodes.reward("repetition_penalty")(completions=[text]) == [expected]


def test_n_is_configurable(episodes):
    penalty = episodes.reward("repetition_penalty")
    assert penalty(completions=["x x x x x"], n=1) == [-0.8]
    assert penalty(completions=["a b c a b c"], n=2) == [-0.4]  # ab bc ca ab bc: 3 of 5 distinct
    with pytest.raises(ValueError, match="n must be >= 1"):
        penalty(completions=["a"], n=0)


def test_tool_calls_and_results_are_not_counted_but_turns_are_pooled(episodes):
    penalty = episodes.reward("repetition_penalty")
    same = {"name": "write_file", "arguments": {"path": "a.txt", "content": "one two three " * 20}}
    messages = [
        {"role": "assistant", "content": "I will write the file",
         "tool_calls": [{"type": "function", "function": same}]},
        {"role": "tool", "name": "write_file", "content": "one two three " * 20},
        {"role": "assistant", "content": "I will write the file"},  # said again: 3 of 6 trigrams repeat
    ]
    assert penalty(completions=[messages]) == [-0.5]
    raw = "<think>plan the work now</think>" + f"<tool_call>{json.dumps(same)}</tool_call>" + "All done here."
    assert penalty(completions=[raw]) == [0.0]  # the thought and the text, not the call's content


def test_odd_completions_never_raise(episodes):
    odd = [None, 5, [], [None], [{"role": "assistant", "content": None}], [{"content": [{"text": "a b c a b c"}]}]]
    assert episodes.reward("repetition_penalty")(completions=odd) == [0.0, 0.0, 0.0, 0.0, 0.0, -0.25]
