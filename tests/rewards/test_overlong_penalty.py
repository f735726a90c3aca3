"""overlong_penalty: DAPO's soft punishment, 0 up to max_length - cache tokens, linear to -1 at max_length."""

import pytest

from agent_lightning.config import RewardSpec
from agent_lightning.rewarding import RewardSuite


def test_default_zones(episodes):
    overlong = episodes.reward("overlong_penalty")  # max_length 256, cache 64: the soft zone is 193..256
    lengths = [0, 100, 192, 193, 224, 255, 256, 300]
    ids = [[7] * n for n in lengths]
    assert overlong(completions=["x"] * len(ids), completion_ids=ids) == [
        0.0, 0.0, 0.0, -1 / 64, -0.5, -63 / 64, -1.0, -1.0]


def test_kwargs_from_the_config_reach_it(episodes):
    suite = RewardSuite.from_config([RewardSpec(name="overlong_penalty", kwargs={"max_length": 10, "cache": 4})],
                                    episodes.env_cls("arithmetic"))
    tasks = episodes.env_cls("arithmetic").tasks("test", 4, 0)
    completions = [[{"role": "assistant", "content": t["answer"]}] for t in tasks]
    ids = [[1] * n for n in (6, 7, 9, 10)]
    out = suite.functions[0](prompts=["p"] * 4, completions=completions, completion_ids=ids,
                             answer=[t["answer"] for t in tasks], task_id=[t["task_id"] for t in tasks])
    assert out == [0.0, -0.25, -0.75, -1.0] and not suite.error_counts


def test_no_ids_is_not_applicable_and_bad_settings_are_refused(episodes):
    overlong = episodes.reward("overlong_penalty")
    assert overlong(completions=["a", "b"]) == [None, None]
    assert overlong(completions=["a", "b"], completion_ids=[[1]]) == [None, None]  # misaligned
    assert overlong(completions=["a"], completion_ids=[None]) == [None]
    for bad in ({"cache": 0}, {"cache": 300}, {"max_length": 10, "cache": -1}):
        with pytest.raises(ValueError, match="0 < cache <= max_length"):
            overlong(completions=["a"], completion_ids=[[1]], **bad)
