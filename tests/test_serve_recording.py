"""serve/recording.py without HTTP: calls that continue an earlier sample merge into one trajectory whose mask marks
only generated tokens; other calls stay samples of their own; rewards and the store's errors.

Run: pytest -q tests/test_serve_recording.py   (pure Python, well under a second)
"""

from __future__ import annotations

import pytest

from agent_lightning.serve.recording import BadRollout, Call, RolloutClosed, RolloutStore, UnknownRollout, merge_calls


def call(prompt, completion, reward=None):
    return Call(list(prompt), list(completion), [-0.5] * len(completion), reward=reward)


def test_a_call_that_continues_the_last_one_merges_with_its_gap_masked():
    first = call([1, 2, 3], [10, 11])
    second = call([1, 2, 3, 10, 11, 50, 51], [12, 13, 14])  # 50, 51: a tool result the policy read
    [sample] = merge_calls([first, second], reward=1.0)
    assert sample.prompt_ids == [1, 2, 3]
    assert sample.completion_ids == [10, 11, 50, 51, 12, 13, 14]
    assert sample.generated_mask == [1, 1, 0, 0, 1, 1, 1]
    assert sample.logprobs == [-0.5, -0.5, 0.0, 0.0, -0.5, -0.5, -0.5]
    assert sample.calls == [0, 1] and sample.reward == 1.0


def test_a_rewritten_history_starts_a_sample_and_each_carries_the_rollout_reward():
    first = call([1, 2, 3], [10, 11])
    rewritten = call([1, 2, 3, 10, 99, 50], [12])  # the agent changed the reply before sending it back
    samples = merge_calls([first, rewritten], reward=0.25)
    assert [s.calls for s in samples] == [[0], [1]]
    assert [s.generated_mask for s in samples] == [[1, 1], [1]]
    assert all(s.reward == 0.25 for s in samples)


def test_an_interleaved_side_call_does_not_break_the_main_trajectory():
    main1 = call([1, 2], [10])
    side = call([7, 8], [70])  # e.g. a summarizer the agent calls in between
    main2 = call([1, 2, 10, 5], [11])
    side2 = call([7, 8, 70, 6], [71])
    samples = merge_calls([main1, side, main2, side2])
    assert [s.calls for s in samples] == [[0, 2], [1, 3]]
    assert samples[0].completion_ids == [10, 5, 11] and samples[0].generated_mask == [1, 0, 1]


def test_a_second_branch_from_the_same_turn_is_its_own_sample():
    first = call([1, 2], [10])
    retry_a = call([1, 2, 10, 5], [11])
    retry_b = call([1, 2, 10, 6], [12])  # continues call 0, which call 1 already extended
    assert [s.calls for s in merge_calls([first, retry_a, retry_b])] == [[0, 1], [2]]


def test_without_a_rollout_reward_a_sample_sums_its_calls_rewards():
    samples = merge_calls([call([1], [2], reward=0.5), call([1, 2, 3], [4], reward=0.25), call([9], [8])])
    assert [s.reward for s in samples] == [0.75, None]


def test_the_store_opens_rewards_finishes_and_refuses_what_it_cannot_take():
    store = RolloutStore()
    opened = store.open()
    assert opened.rollout_id.startswith("ro-") and store.open(opened.rollout_id) is opened
    assert store.add_call("agent-7", call([1], [2])) == 0  # the first call opens its rollout
    assert store.add_call("agent-7", call([1, 2, 3], [4])) == 1
    store.set_reward("agent-7", rewards=[1.0, None])
    store.set_reward("agent-7", reward=2.0)
    record = store.get("agent-7").to_dict()
    assert [c["reward"] for c in record["calls"]] == [1.0, None] and record["reward"] == 2.0
    assert record["samples"][0]["generated_mask"] == [1, 0, 1] and record["samples"][0]["reward"] == 2.0
    store.finish("agent-7")
    with pytest.raises(RolloutClosed):
        store.check_open("agent-7")
    with pytest.raises(RolloutClosed):
        store.add_call("agent-7", call([5], [6]))
    store.set_reward("agent-7", reward=3.0)  # rewards may come after the rollout finished
    with pytest.raises(UnknownRollout):
        store.get("nope")
    with pytest.raises(UnknownRollout):
        store.set_reward("nope", reward=1.0)
    for bad in ({"reward": "high"}, {"reward": float("nan")}, {"reward": True}, {"rewards": [1.0]}, {}):
        with pytest.raises(BadRollout):
            store.set_reward("agent-7", **bad)
    with pytest.raises(BadRollout):
        store.open("has spaces/and slashes")
    store.delete("agent-7")
    assert "agent-7" not in store.ids()
