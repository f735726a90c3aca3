"""Learning-signal diagnostics (observe/diagnostics.py): flags, their warnings and logs, and one real GRPO run."""

from __future__ import annotations

import json
import logging

import pytest
from transformers import TrainerControl, TrainerState

from agent_lightning.rewarding import RewardSuite
from agent_lightning.observe.diagnostics import SignalCallback, SignalDiagnostics

from conftest import run_cli

LOGGER = "agent_lightning.observe.diagnostics"


def feed(diag: SignalDiagnostics, name: str, *batches: list) -> list[str]:
    """Observe each batch and update after it, as the trainer does once per step; returns the new flags."""
    new = []
    for step, batch in enumerate(batches, 1):
        diag.observe(step, {name: batch})
        new += diag.update()
    return new


def test_a_constant_reward_is_flagged_after_a_full_window_and_cleared_when_it_varies():
    diag = SignalDiagnostics(window=3)
    assert feed(diag, "exact", [0.0, 0.0], [0.0, 0.0]) == []  # window not full yet
    assert feed(diag, "exact", [0.0, 0.0]) == ["constant:exact"]
    assert diag.flags == ["constant:exact"]
    assert feed(diag, "exact", [0.0, 0.0]) == []  # still flagged, not new
    assert diag.flags == ["constant:exact"]
    assert feed(diag, "exact", [1.0, 0.0]) == []
    assert diag.flags == [] and diag.ever == ["constant:exact"]
    assert feed(diag, "exact", [1.0, 1.0], [1.0, 1.0]) == []  # [1, 0] is still in the window
    assert feed(diag, "exact", [1.0, 1.0]) == ["constant:exact"]  # back: new again
    assert diag.ever == ["constant:exact"]


def test_constant_means_one_value_across_the_whole_window():
    diag = SignalDiagnostics(window=2)
    assert feed(diag, "r", [1.0, 1.0], [0.0, 0.0]) == []  # each batch is flat, but the window is not
    assert feed(diag, "r", [0.5, None]) == []  # [0, 0] still in the window
    assert feed(diag, "r", [None, 0.5]) == ["constant:r"]  # None is "not applicable", not a value


def test_an_always_none_reward_is_flagged_none():
    diag = SignalDiagnostics(window=2)
    assert feed(diag, "format", [None, None], [None, None]) == ["none:format"]
    assert feed(diag, "format", [None, 0.0]) == []
    assert diag.flags == [] and diag.ever == ["none:format"]


def test_rewards_are_judged_independently():
    diag = SignalDiagnostics(window=2)
    for step in (1, 2):
        diag.observe(step, {"flat": [1.0, 1.0], "useful": [0.0, float(step)], "absent": [None, None]})
    assert diag.update() == ["constant:flat", "none:absent"]


def test_no_signal_needs_a_full_window_above_the_threshold():
    diag = SignalDiagnostics(window=3, zero_signal_threshold=0.9)
    for fraction in (1.0, 0.95):
        diag.observe_zero_signal(fraction)
    assert diag.update() == []
    diag.observe_zero_signal(None)  # a log without the metric, or NaN, does not count as a step
    diag.observe_zero_signal(float("nan"))
    assert diag.update() == []
    diag.observe_zero_signal(1.0)
    assert diag.update() == ["no-signal"]
    diag.observe_zero_signal(0.9)  # "more than" the threshold: exactly 0.9 clears it
    assert diag.update() == [] and diag.flags == []
    assert diag.ever == ["no-signal"]


def test_groups_trained_only_by_shaping_rewards_are_flagged_against_the_outcome():
    """The failure this catches: every rollout of a group fails, and a penalty per failed call is the only
    difference between them, so GRPO teaches the policy to call less."""
    diag = SignalDiagnostics(window=2, group_size=4, weights={"task_success": 1.0, "tool_error_penalty": 0.2},
                             outcome="task_success")
    all_fail = {"task_success": [0.0] * 4, "tool_error_penalty": [0.0, -0.25, -0.5, 0.0]}
    learns = {"task_success": [1.0, 0.0, 1.0, 0.0], "tool_error_penalty": [0.0, -0.25, 0.0, 0.0]}
    flat = {"task_success": [1.0] * 4, "tool_error_penalty": [0.0] * 4}  # no signal at all: not counted
    both = {name: all_fail[name] + flat[name] for name in all_fail}
    diag.observe(1, both)
    assert diag.update() == []  # window not full
    diag.observe(2, {name: all_fail[name] + learns[name] for name in all_fail})
    assert diag.update() == ["shaping-only:task_success"]  # 2 of the 3 groups with signal: over half
    diag.observe(3, {name: learns[name] + learns[name] for name in all_fail})
    assert diag.update() == [] and diag.flags == []  # 1 of 4 in the window
    message = diag.message("shaping-only:task_success", 2)
    assert message.startswith("learning signal: reward 'task_success' over the last 2 steps: most groups that train")


def on_log(callback: SignalCallback, logs: dict) -> dict:
    callback.on_log(None, TrainerState(), TrainerControl(), logs=logs)
    return logs


def test_callback_warns_once_per_new_flag_and_logs_the_current_flags(caplog):
    diag = SignalDiagnostics(window=2)
    callback = SignalCallback(diag)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows = []
        for step in range(1, 5):
            diag.observe(step, {"exact": [0.0, 0.0, 0.0, 0.0]})
            rows.append(on_log(callback, {"reward": 0.0, "frac_reward_zero_std": 1.0}))
    assert [r["signal/flags"] for r in rows] == ["", "constant:exact,no-signal", "constant:exact,no-signal",
                                                 "constant:exact,no-signal"]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2, messages
    assert messages[0] == ("learning signal: reward 'exact' over the last 2 steps: it gives every completion the same "
                           "score, so it cannot tell better from worse; check its inputs, or give partial credit "
                           "(e.g. partial_progress).")
    assert messages[1].startswith("learning signal: the batch over the last 2 steps: most groups score all their "
                                  "completions alike;")


def test_callback_warns_again_when_a_flag_comes_back_and_ignores_logs_without_reward(caplog):
    diag = SignalDiagnostics(window=1)
    callback = SignalCallback(diag)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for batch in ([None, None], [1.0, 0.0], [None, None]):
            diag.observe(0, {"r": batch})
            on_log(callback, {"reward": 0.5})
        eval_logs = on_log(callback, {"eval_loss": 1.0})
    assert "signal/flags" not in eval_logs
    assert [r.getMessage().split(":")[1] for r in caplog.records] == [" reward 'r' over the last 1 steps"] * 2


def test_callback_warns_only_on_the_main_process(caplog):
    diag = SignalDiagnostics(window=1)
    callback = SignalCallback(diag)
    state = TrainerState(is_world_process_zero=False)
    diag.observe(1, {"r": [1.0, 1.0]})
    logs = {"reward": 1.0}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        callback.on_log(None, state, TrainerControl(), logs=logs)
    assert logs["signal/flags"] == "constant:r" and not caplog.records


def test_the_suite_feeds_one_observation_per_batch_once_every_reward_scored():
    suite = RewardSuite()
    suite.add("flat", lambda completions: [1.0] * len(completions))
    suite.add("broken", lambda completions: 1 / 0)  # isolated and scored 0.0: a constant the diagnostics see
    suite.add("length", lambda completions: [float(len(c)) for c in completions])
    suite.diagnostics = diag = SignalDiagnostics(window=2)
    for batch in (["a", "bb"], ["ccc", "d"]):
        for i, fn in enumerate(suite.functions):
            fn(completions=batch)
            assert len(diag.scores.get("length", ())) == (batch == ["ccc", "d"]) + (i == 2)
    assert {name: list(batches) for name, batches in diag.scores.items()} == {
        "flat": [[1.0, 1.0], [1.0, 1.0]], "broken": [[0.0, 0.0], [0.0, 0.0]], "length": [[1.0, 2.0], [3.0, 1.0]]}
    assert diag.update() == ["constant:flat", "constant:broken"]


def test_a_zero_signal_window_is_refused_in_one_line():
    from agent_lightning.config import load_config
    from agent_lightning.errors import UserError

    with pytest.raises(UserError, match=r"grpo.signal_window: expected a number >= 1, got 0"):
        load_config(None, ["grpo.signal_window=0"])


@pytest.mark.slow
def test_a_tiny_grpo_run_reports_the_missing_signal(tmp_path):
    """The tiny random model never answers right: exact_answer is constant 0 and every group has zero std."""
    run_dir = tmp_path / "run"
    result = run_cli("--algo", "grpo", "--config", "configs/tiny.yaml", "--max-steps", "3",
                     "--set", "grpo.signal_window=2", "--output-dir", str(run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"constant:exact_answer", "no-signal"} <= set(summary["signal_warnings"])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all("signal/flags" in r for r in rows)
    assert rows[0]["signal/flags"] == ""  # one step is not a full window
    assert set(rows[-1]["signal/flags"].split(",")) >= {"constant:exact_answer", "no-signal"}
    output = result.stdout + result.stderr
    assert output.count("learning signal: reward 'exact_answer'") == 1
    assert output.count("learning signal: the batch") == 1
