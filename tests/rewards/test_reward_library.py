"""The built-in reward library: one documented reward per file, all loadable by name and scoring real batches."""

import importlib
import inspect
import json
import math
import pkgutil
import sys

import pytest

from agent_lightning.config import RewardSpec
from agent_lightning.registry import REWARDS, discover
from agent_lightning.rewarding import RewardSuite

ODD = ["", None, [], [None, 3], [{"role": "assistant", "content": None}],
       [{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}],
       [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "x", "arguments": "{bad"}}]}],
       [{"role": "tool", "content": "orphan result"}]]


@pytest.fixture(scope="module")
def library():
    discover()
    return [p for p in REWARDS.all() if p.obj.__module__.startswith(REWARDS.package + ".")]


def test_one_documented_reward_per_file(library):
    files = sorted(m.name for m in pkgutil.iter_modules(importlib.import_module(REWARDS.package).__path__)
                   if not m.name.startswith("_"))
    assert sorted(p.name for p in library) == files  # a file per reward, named after it
    assert {"task_success", "partial_progress", "tool_call_format", "tool_error_penalty", "efficiency",
            "answer_match", "unit_tests_passed", "overlong_penalty", "repetition_penalty", "structure",
            "exact_answer"} <= set(files)
    for plugin in library:
        assert plugin.summary and len(plugin.summary) <= 120, plugin.name
        doc = sys.modules[plugin.obj.__module__].__doc__ or ""
        assert doc.startswith(f"`{plugin.name}`"), plugin.name
        if plugin.name != "exact_answer":  # the historical one is kept as it is
            assert "Range" in doc and "None" in doc, plugin.name
            assert "completions" in inspect.signature(plugin.obj).parameters, plugin.name
        assert any(p.kind is p.VAR_KEYWORD for p in inspect.signature(plugin.obj).parameters.values())
        assert plugin.meta["weight"] > 0


def _check(suite, values_per_reward, n):
    assert not suite.error_counts, dict(suite.error_counts)
    for name, values in zip(suite.names, values_per_reward):
        assert len(values) == n, name
        assert all(v is None or (isinstance(v, float) and math.isfinite(v) and -1 <= v <= 1) for v in values), name


def test_every_reward_scores_a_real_tool_batch(episodes, library):
    env_cls = episodes.env_cls("filesystem")
    suite = RewardSuite.from_config([RewardSpec(name=p.name) for p in library], env_cls)
    tasks = [episodes.task("filesystem", f"fs-test-{i:05d}") for i in (1, 11)]
    runs = [episodes.solved("filesystem", tasks[0]), episodes.run("filesystem", tasks[0], ["Done."]),
            episodes.solved("filesystem", tasks[1], finish=False),  # the suite verifies it
            episodes.run("filesystem", tasks[1], ['<tool_call>{"name": "list_dir", "arguments": [}</tool_call>', "?"])]
    tasks = [tasks[0], tasks[0], tasks[1], tasks[1]]
    completions, envs = [m for m, _ in runs], [e for _, e in runs]
    columns = {k: [t[k] for t in tasks] for k in tasks[0] if k != "prompt"}
    values = [fn(prompts=[t["prompt"] for t in tasks], completions=completions, completion_ids=[[1] * 50] * 4,
                 environments=envs, **columns) for fn in suite.functions]
    _check(suite, values, 4)
    scores = dict(zip(suite.names, values))
    assert scores["task_success"] == scores["exact_answer"] == [1.0, 0.0, 1.0, 0.0]
    assert scores["efficiency"] == [1.0, 0.0, 1.0, 0.0]
    assert scores["unit_tests_passed"] == [None] * 4
    assert scores["answer_match"] == [None, None, 1.0, 0.0]
    assert scores["tool_call_format"] == [1.0, 0.0, 1.0, 0.0]
    assert scores["tool_error_penalty"] == [0.0, 0.0, 0.0, -0.25]
    assert len(json.loads(tasks[2]["solution"])["calls"]) == envs[2].outcome.tool_calls


def test_every_reward_scores_a_single_turn_batch_and_odd_completions(episodes, library):
    env_cls = episodes.env_cls("arithmetic")
    suite = RewardSuite.from_config([RewardSpec(name=p.name) for p in library], env_cls)
    tasks = env_cls.tasks("test", len(ODD) + 2, 0)
    completions = [[{"role": "assistant", "content": tasks[0]["answer"]}], "no idea", *ODD]
    columns = {k: [t[k] for t in tasks] for k in tasks[0] if k != "prompt"}
    values = [fn(prompts=[t["prompt"] for t in tasks], completions=completions,
                 completion_ids=[[1] * 5] * len(tasks), **columns) for fn in suite.functions]
    _check(suite, values, len(tasks))
    scores = dict(zip(suite.names, values))
    assert scores["task_success"][:2] == scores["answer_match"][:2] == [1.0, 0.0]
    for name in ("tool_call_format", "tool_error_penalty", "efficiency", "unit_tests_passed", "structure"):
        assert scores[name] == [None] * len(tasks), name


def test_odd_completions_in_a_tool_environment(episodes, library):
    env_cls = episodes.env_cls("filesystem")
    suite = RewardSuite.from_config([RewardSpec(name=p.name) for p in library], env_cls)
    task = episodes.task("filesystem", "fs-test-00001")
    envs = []
    for _ in ODD:
        env = env_cls()
        env.reset(**task)
        envs.append(env)
    values = [fn(prompts=["p"] * len(ODD), completions=ODD, environments=envs, solution=[task["solution"]] * len(ODD))
              for fn in suite.functions]
    _check(suite, values, len(ODD))
