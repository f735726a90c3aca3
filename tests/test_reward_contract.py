"""The reward-function contract (DESIGN.md, "Reward function") as users meet it through `RewardSuite`.

Async rewards, `timeout_s`, isolation of bad values with the configured policy and a warning that names the
reward and the completion, `@reward(weight=..., on_error=...)` defaults under YAML overrides, YAML keys as
keyword arguments checked against the function, and argument filtering. Real rewards, real config loading, a
real (tiny) environment; nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import logging
import math
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from agent_lightning import registry
from agent_lightning.config import load_config
from agent_lightning.envs import Environment, Outcome
from agent_lightning.errors import UserError
from agent_lightning.registry import REWARDS, discover
from agent_lightning.chat.messages import completion_text
from agent_lightning.rewarding import RewardSuite, RewardTimeout

from conftest import REPO

COMPLETIONS = [[{"role": "assistant", "content": "abc"}], [{"role": "assistant", "content": "hello world"}]]
LENGTHS = [3.0, 11.0]


def lengths(completions) -> list[float]:
    return [float(len(completion_text(c))) for c in completions]


def call(suite: RewardSuite, index: int = 0, completions=None, **kwargs):
    """Call one suite function the way TRL does (a fresh batch list each time)."""
    completions = list(completions if completions is not None else COMPLETIONS)
    return suite.functions[index](prompts=["p"] * len(completions), completions=completions,
                                  completion_ids=[[1]] * len(completions), **kwargs)


def suite_of(fn, name: str = "r", **options) -> RewardSuite:
    suite = RewardSuite()
    suite.add(name, fn, **options)
    return suite


@pytest.fixture
def isolated_registry(monkeypatch):
    """Rewards registered during the test (plugin dirs, file specs) are forgotten afterwards."""
    discover()
    monkeypatch.setattr(REWARDS, "_plugins", dict(REWARDS._plugins))
    monkeypatch.setattr(registry, "_extra_plugin_dirs", [])
    monkeypatch.setattr(registry, "_discovered", True)
    monkeypatch.delenv(registry.ENV_PLUGIN_DIRS, raising=False)
    return REWARDS


def rewards_config(tmp_path, rewards_yaml: str):
    path = tmp_path / "run.yaml"
    path.write_text("rewards:\n" + textwrap.indent(textwrap.dedent(rewards_yaml).strip(), "  ") + "\n")
    return load_config(path)


# ------------------------------------------------------------------------------------------------ async


def test_async_reward_is_awaited():
    async def judge(completions):
        await asyncio.sleep(0.01)
        return lengths(completions)

    suite = suite_of(judge)
    assert call(suite) == LENGTHS
    assert not suite.error_counts


def test_async_reward_scores_inside_a_running_event_loop():
    async def judge(completions):
        await asyncio.sleep(0.01)
        return lengths(completions)

    suite = suite_of(judge)

    async def training_loop_in_a_notebook():
        asyncio.get_running_loop()  # the suite function is called synchronously while this loop runs
        return call(suite)

    assert asyncio.run(training_loop_in_a_notebook()) == LENGTHS
    assert not suite.error_counts


# ----------------------------------------------------------------------------------------------- timeout


@pytest.mark.parametrize("on_error, expected", [("zero", [0.0, 0.0]), ("skip", [None, None])])
def test_sync_timeout_is_scored_by_policy_and_returns_early(on_error, expected):
    release = threading.Event()
    slow = [True]

    def stuck(completions):
        if slow[0]:
            release.wait(2.0)  # "sleeps 2 s" unless the test releases it at the end
        return lengths(completions)

    suite = suite_of(stuck, on_error=on_error, timeout_s=0.2)
    try:
        start = time.perf_counter()
        assert call(suite) == expected
        assert time.perf_counter() - start < 1.5  # returned at the timeout, not after the 2 s the reward sleeps
        assert suite.error_counts["r"] == 1
        slow[0] = False  # the stuck call still occupies its thread: the next call must get a fresh one
        assert call(suite) == LENGTHS
        assert suite.error_counts["r"] == 1
    finally:
        release.set()


@pytest.mark.parametrize("on_error, expected", [("zero", [0.0, 0.0]), ("skip", [None, None])])
def test_async_timeout_is_scored_by_policy_and_returns_early(on_error, expected):
    async def stuck(completions):
        await asyncio.sleep(2.0)
        return lengths(completions)

    suite = suite_of(stuck, on_error=on_error, timeout_s=0.2)
    start = time.perf_counter()
    assert call(suite) == expected
    assert time.perf_counter() - start < 1.5  # returned at the timeout, not after the 2 s the reward sleeps
    assert suite.error_counts["r"] == 1

    async def inside_a_loop():
        return call(suite)

    start = time.perf_counter()
    assert asyncio.run(inside_a_loop()) == expected
    assert time.perf_counter() - start < 1.5  # returned at the timeout, not after the 2 s the reward sleeps
    assert suite.error_counts["r"] == 2


@pytest.mark.parametrize("is_async", [False, True])
def test_timeout_with_on_error_raise_raises(is_async):
    release = threading.Event()

    def stuck(completions):
        release.wait(2.0)
        return lengths(completions)

    async def astuck(completions):
        await asyncio.sleep(2.0)
        return lengths(completions)

    suite = suite_of(astuck if is_async else stuck, on_error="raise", timeout_s=0.2)
    try:
        with pytest.raises(RewardTimeout, match="timeout_s=0.2"):
            call(suite)
        assert not suite.error_counts
    finally:
        release.set()


def test_async_timeout_also_bounds_work_offloaded_to_a_thread():
    async def judge(completions):
        await asyncio.to_thread(time.sleep, 2.0)  # the usual way to call a blocking client from async code
        return lengths(completions)

    suite = suite_of(judge, timeout_s=0.2)
    start = time.perf_counter()
    assert call(suite) == [0.0, 0.0]
    assert time.perf_counter() - start < 1.5  # returned at the timeout, not after the 2 s the reward sleeps


def test_a_hung_sync_reward_does_not_keep_the_process_alive():
    script = textwrap.dedent("""
        import time
        from agent_lightning.rewarding import RewardSuite
        suite = RewardSuite()
        suite.add("hung", lambda completions: time.sleep(4) or [1.0], timeout_s=0.2)
        assert suite.functions[0](completions=["a"]) == [0.0]
        print("done", flush=True)
    """)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    took = time.perf_counter() - start
    assert "done" in result.stdout, result.stderr
    assert took < 3.5, f"the process took {took:.1f} s to exit after the timed-out call"


# --------------------------------------------------------------------------------------------- isolation


@pytest.mark.parametrize("values, index, error", [
    ([1.0, math.nan], 1, "ValueError"),
    ([math.inf, 1.0], 0, "ValueError"),
    ([1.0, -math.inf], 1, "ValueError"),
    ([1.0, "0.5"], 1, "TypeError"),
    ([1.0], 0, "ValueError: returned 1 values for 2 completions"),
    ("0.5", 0, "TypeError: returned str"),
])
@pytest.mark.parametrize("on_error, expected", [("zero", [0.0, 0.0]), ("skip", [None, None])])
def test_bad_values_are_isolated_and_the_warning_names_reward_and_completion(
        caplog, values, index, error, on_error, expected):
    suite = suite_of(lambda completions: values, name="shaky", on_error=on_error)
    with caplog.at_level(logging.WARNING, logger="agent_lightning.rewarding"):
        assert call(suite) == expected
        assert call(suite) == expected
    assert suite.error_counts == {"shaky": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # once per reward, not once per batch
    message = warnings[0]
    assert "reward 'shaky' failed" in message and error in message and f"scoring it '{on_error}'" in message
    assert f"Sample completion #{index}: {completion_text(COMPLETIONS[index])!r}" in message


def test_a_raising_reward_is_isolated_and_logged_with_its_exception(caplog):
    def broken(completions, environments):
        raise KeyError("missing column")

    suite = suite_of(broken, name="broken", on_error="skip")
    with caplog.at_level(logging.WARNING, logger="agent_lightning.rewarding"):
        assert call(suite) == [None, None]
    assert suite.error_counts == {"broken": 1}
    (message,) = [r.getMessage() for r in caplog.records]
    assert "reward 'broken' failed (KeyError: 'missing column')" in message and "Sample completion #0" in message


@pytest.mark.parametrize("values, exception", [([1.0, math.nan], ValueError), ([1.0, "high"], TypeError),
                                               ([1.0], ValueError)])
def test_on_error_raise_reraises_bad_values(values, exception):
    suite = suite_of(lambda completions: values, on_error="raise")
    with pytest.raises(exception):
        call(suite)
    assert not suite.error_counts


def test_none_passes_through_as_not_applicable(caplog):
    suite = suite_of(lambda completions: [None, 1])
    with caplog.at_level(logging.WARNING, logger="agent_lightning.rewarding"):
        assert call(suite) == [None, 1.0]
    assert not suite.error_counts and not caplog.records


def test_one_failing_reward_does_not_disturb_the_others():
    suite = RewardSuite()
    suite.add("broken", lambda completions: 1 / 0, on_error="skip")
    suite.add("length", lambda completions: lengths(completions))
    completions = list(COMPLETIONS)
    assert [f(completions=completions) for f in suite.functions] == [[None, None], LENGTHS]
    assert suite.error_counts == {"broken": 1}


def test_numpy_scalars_are_numbers():
    np = pytest.importorskip("numpy")
    suite = suite_of(lambda completions: [np.float32(0.5), np.int64(1)])
    assert call(suite) == [0.5, 1.0]
    assert not suite.error_counts


def test_an_async_rewards_own_timeout_error_is_reported_as_itself(caplog):
    async def judge(completions):
        raise TimeoutError("the judge service timed out")

    suite = suite_of(judge, name="judge")
    with caplog.at_level(logging.WARNING, logger="agent_lightning.rewarding"):
        assert call(suite) == [0.0, 0.0]
    assert "the judge service timed out" in caplog.records[0].getMessage()


# ------------------------------------------------------------------------------ declaration vs YAML spec

PLUGIN = '''
from agent_lightning import reward


@reward("{prefix}_scaled", weight=0.25, on_error="skip")
def scaled(completions, scale: float = 1.0, **kwargs):
    """Length of the completion times `scale` (test)."""
    return [scale * len(str(c)) for c in completions]


@reward("{prefix}_fragile", weight=0.5, on_error="skip")
def fragile(completions):
    """Always fails (test)."""
    raise RuntimeError("fragile")
'''


@pytest.fixture
def plugin_dir(tmp_path, isolated_registry):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "contract_rewards.py").write_text(PLUGIN.format(prefix="contract_dir"))
    registry.add_plugin_dirs([folder])
    return folder


def test_weight_and_on_error_default_to_the_declaration(tmp_path, plugin_dir):
    cfg = rewards_config(tmp_path, """
        - {name: contract_dir_scaled}
        - {name: contract_dir_fragile}
    """)
    assert cfg.rewards[0].weight is None and cfg.rewards[0].on_error is None
    suite = RewardSuite.from_config(cfg.rewards)
    assert suite.names == ["contract_dir_scaled", "contract_dir_fragile"]
    assert suite.weights == [0.25, 0.5]
    completions = ["ab", "abcd"]
    assert [f(completions=completions) for f in suite.functions] == [[2.0, 4.0], [None, None]]  # 'skip' declared
    assert suite.error_counts == {"contract_dir_fragile": 1}


def test_yaml_weight_and_on_error_override_the_declaration(tmp_path, plugin_dir):
    cfg = rewards_config(tmp_path, """
        - {name: contract_dir_scaled, weight: 2.0}
        - {name: contract_dir_fragile, on_error: zero}
    """)
    suite = RewardSuite.from_config(cfg.rewards)
    assert suite.weights == [2.0, 0.5]
    assert suite.functions[1](completions=["ab", "abcd"]) == [0.0, 0.0]
    cfg = rewards_config(tmp_path, "- {name: contract_dir_fragile, on_error: raise, weight: 0}")
    suite = RewardSuite.from_config(cfg.rewards)
    assert suite.weights == [0.0]  # an explicit 0 is a value, not "unset"
    with pytest.raises(RuntimeError, match="fragile"):
        suite.functions[0](completions=["ab"])


def test_a_file_spec_keeps_the_declared_defaults(tmp_path, isolated_registry):
    plugin = tmp_path / "by_path.py"
    plugin.write_text(PLUGIN.format(prefix="contract_file"))
    cfg = rewards_config(tmp_path, f"""
        - {{name: "{plugin}:scaled", scale: 3}}
        - {{name: "{plugin}:fragile"}}
    """)
    suite = RewardSuite.from_config(cfg.rewards)
    assert suite.weights == [0.25, 0.5]
    assert [f(completions=["ab"]) for f in suite.functions] == [[6.0], [None]]


# ------------------------------------------------------------------------------------ configured kwargs


def test_extra_yaml_keys_become_keyword_arguments(tmp_path, plugin_dir):
    cfg = rewards_config(tmp_path, "- {name: contract_dir_scaled, scale: 2}")
    assert cfg.rewards[0].kwargs == {"scale": 2}
    suite = RewardSuite.from_config(cfg.rewards)
    assert suite.functions[0](completions=["ab", "abcd"]) == [4.0, 8.0]


def test_builtin_reward_kwargs_change_its_score(tmp_path):
    discover()
    completions = [[{"role": "assistant", "content": "yes yes yes yes"}]]
    scores = {}
    for n in (1, 3):
        cfg = rewards_config(tmp_path, f"- {{name: repetition_penalty, n: {n}}}")
        scores[n] = RewardSuite.from_config(cfg.rewards).functions[0](completions=list(completions))
    assert scores == {1: [-0.75], 3: [-0.5]}


def test_an_undeclared_kwarg_is_a_config_error_with_a_suggestion(tmp_path, plugin_dir):
    cfg = rewards_config(tmp_path, "- {name: contract_dir_scaled, scales: 2}")
    with pytest.raises(UserError) as info:
        RewardSuite.from_config(cfg.rewards)
    message = str(info.value)
    assert message.startswith("rewards.contract_dir_scaled.scales: the reward has no parameter 'scales'.")
    assert "Did you mean 'scale'?" in message and message.endswith("Its parameters: scale.")
    assert "\n" not in message

    discover()
    cfg = rewards_config(tmp_path, "- {name: tool_error_penalty, penalti: 0.5}")
    with pytest.raises(UserError, match=r"rewards\.tool_error_penalty\.penalti: .*Did you mean 'penalty'.*"
                                        r"Its parameters: penalty, max_penalty\."):
        RewardSuite.from_config(cfg.rewards)


def test_a_kwarg_for_a_reward_without_parameters_lists_none(tmp_path, plugin_dir):
    cfg = rewards_config(tmp_path, "- {name: contract_dir_fragile, scale: 2}")
    with pytest.raises(UserError, match=r"rewards\.contract_dir_fragile\.scale: .* Its parameters: none\."):
        RewardSuite.from_config(cfg.rewards)


@pytest.mark.parametrize("key", ["completions", "prompts", "environments", "trainer_state"])
def test_a_kwarg_named_like_a_trainer_argument_is_a_config_error(tmp_path, plugin_dir, key):
    cfg = rewards_config(tmp_path, f"- {{name: contract_dir_scaled, {key}: 1}}")
    with pytest.raises(UserError, match=rf"rewards\.contract_dir_scaled\.{key}: '{key}' is passed by the trainer"):
        RewardSuite.from_config(cfg.rewards)


# ----------------------------------------------------------------------------------- argument filtering


class Verdicts(Environment):
    """Single-turn test environment: the answer 'ok' succeeds. Counts the instances the suite builds."""

    built = 0

    def reset(self, **task):
        type(self).built += 1
        return super().reset(**task)

    def _finish(self, final_text: str) -> Outcome:
        return Outcome(success=final_text == "ok")


def test_a_reward_declaring_only_completions_gets_only_completions():
    seen = []

    def only(completions):
        seen.append(completions)
        return [1.0] * len(completions)

    Verdicts.built = 0
    suite = RewardSuite(Verdicts)
    suite.add("only", only)
    completions = [[{"role": "assistant", "content": "ok"}], [{"role": "assistant", "content": "no"}]]
    out = suite.functions[0](prompts=["p", "p"], completions=completions, completion_ids=[[1], [2]],
                             trainer_state=object(), log_metric=print, log_extra=print, task_id=["a", "b"])
    assert out == [1.0, 1.0] and seen == [completions]
    assert Verdicts.built == 0  # no environment was built or verified for a reward that does not read one


def test_a_reward_with_kwargs_gets_everything_including_verified_environments():
    seen = {}

    def everything(**kwargs):
        seen.update(kwargs)
        return [float(env.outcome.success) for env in kwargs["environments"]]

    Verdicts.built = 0
    suite = RewardSuite(Verdicts)
    suite.add("everything", everything)
    completions = [[{"role": "assistant", "content": "ok"}], [{"role": "assistant", "content": "no"}]]
    state = object()
    assert suite.functions[0](prompts=["p", "p"], completions=completions, completion_ids=[[1], [2]],
                              trainer_state=state, task_id=["a", "b"]) == [1.0, 0.0]
    assert {"prompts", "completions", "completion_ids", "trainer_state", "task_id", "environments"} <= set(seen)
    assert seen["trainer_state"] is state and seen["task_id"] == ["a", "b"]
    assert Verdicts.built == 2 and all(env.outcome.verified for env in seen["environments"])


def test_the_same_reward_twice_is_rejected_or_traced_once_per_rollout(tmp_path):
    discover()
    cfg = rewards_config(tmp_path, """
        - {name: repetition_penalty, n: 1}
        - {name: repetition_penalty, n: 3}
    """)
    try:
        suite = RewardSuite.from_config(cfg.rewards)
    except UserError as exc:
        assert "repetition_penalty" in str(exc)
        return
    suite.trace_dir = tmp_path / "traces"
    completions = [[{"role": "assistant", "content": "yes yes yes yes"}], [{"role": "assistant", "content": "a b"}]]
    for f in suite.functions:
        f(prompts=["p", "p"], completions=completions)
    lines = [line for path in suite.trace_dir.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert len(lines) == len(completions)
