"""pass@k and the paired difference every comparison table prints (stats.py), against hand-computed values."""

import math

import pytest

from agent_lightning.stats import format_difference, mcnemar_exact, pass_at_k, paired_difference


def test_pass_at_k_is_the_unbiased_estimator():
    assert pass_at_k(8, 0, 8) == 0.0 and pass_at_k(8, 8, 1) == 1.0
    assert pass_at_k(8, 2, 1) == pytest.approx(2 / 8)
    assert pass_at_k(8, 2, 4) == pytest.approx(1 - math.comb(6, 4) / math.comb(8, 4))
    assert pass_at_k(4, 1, 4) == 1.0  # n - c < k: some draw must hold the success
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_paired_difference_counts_only_shared_tasks_and_brackets_the_mean():
    before = {f"t{i}": 0 for i in range(100)}
    after = {f"t{i}": int(i < 10) for i in range(100)} | {"only-after": 1}
    result = paired_difference(before, after)
    assert result["n"] == 100 and result["difference"] == pytest.approx(0.10)
    assert result["better"] == 10 and result["worse"] == 0
    assert 0.03 < result["low"] < 0.10 < result["high"] < 0.17
    assert result["p_value"] == pytest.approx(2 / 2 ** 10)
    assert paired_difference(before, after) == result  # seeded: the same interval every time


def test_no_difference_straddles_zero_and_reads_as_such():
    before = {f"t{i}": int(i % 2 == 0) for i in range(50)}
    after = {f"t{i}": int(i % 2 == 1) for i in range(50)}
    result = paired_difference(before, after)
    assert result["difference"] == 0 and result["low"] < 0 < result["high"] and result["p_value"] == 1.0
    assert format_difference(result).startswith("+0.0 points [") and "(n=50, 25 better, 25 worse)" in \
        format_difference(result)
    assert format_difference(paired_difference({}, {"x": 1})) == "n/a"


def test_scores_that_are_not_zero_or_one_have_no_mcnemar_p_value():
    result = paired_difference({"a": 0.25, "b": 0.5}, {"a": 0.75, "b": 0.5})
    assert result["difference"] == pytest.approx(0.25) and result["p_value"] is None
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 0) == pytest.approx(2 / 32)
