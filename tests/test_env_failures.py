"""An environment that fails (its reset or verifier raises) fails its episode, not the run (envs/base.py,
rewarding.py): counted per environment, traced once, scored by `env.on_failure`, and a run stops with one line
only when more than `env.max_failure_share` of a batch failed."""

import json
import textwrap

import pytest

from agent_lightning import Environment, Outcome
from agent_lightning.config import RewardSpec
from agent_lightning.rewarding import EnvironmentFailures, RewardSuite
from conftest import run_cli

FLAKY = textwrap.dedent('''
    from agent_lightning import environment
    from agent_lightning.envs import Environment, Outcome


    @environment("flaky")
    class Flaky(Environment):
        """Single turn; reset raises for every third task (or for all with FLAKY_ALWAYS in the prompt)."""

        @classmethod
        def tasks(cls, split, size, seed):
            return [{"task_id": f"{split}-{i}", "prompt": f"Say {i}.", "answer": str(i)} for i in range(size)]

        def reset(self, **task):
            super().reset(**task)
            number = int(task["task_id"].split("-")[1])
            if number % 3 == 0 or "{always}" == "yes":
                raise ConnectionError(f"service unavailable for task {number}")
            return None

        def _finish(self, final_text):
            return Outcome(success=len(final_text) % 2 == 0)
''')


class Broken(Environment):
    """Reset works; the verifier raises on an empty answer."""

    @classmethod
    def tasks(cls, split, size, seed):
        return [{"task_id": f"t{i}", "prompt": "x"} for i in range(size)]

    def _finish(self, final_text):
        if not final_text:
            raise KeyError("no answer")
        return Outcome(success=True)


def test_a_raising_verifier_fails_the_episode_and_is_counted(caplog):
    suite = RewardSuite.from_config([RewardSpec(name="task_success")], Broken)
    completions = [[{"role": "assistant", "content": "ok"}], [{"role": "assistant", "content": ""}]]
    envs = [Broken(), Broken()]
    for env, task in zip(envs, Broken.tasks("train", 2, 0)):
        env.reset(**task)
    with caplog.at_level("WARNING"):
        scores = suite.functions[0](prompts=None, completions=completions, environments=envs)
    assert scores == [1.0, 0.0]
    assert envs[1].failure == "verifier raised KeyError: 'no answer'" and envs[0].failure is None
    assert envs[1].outcome.detail.startswith("environment failure: verifier raised KeyError")
    assert suite.env_failures == {"Broken": 1} and "this traceback is shown once" in caplog.text


def test_skip_leaves_failed_episodes_unscored_and_a_mostly_failed_batch_stops():
    suite = RewardSuite(Broken, on_failure="skip", max_failure_share=0.6)
    suite.add("task_success", __import__("agent_lightning.rewards.task_success", fromlist=["x"]).task_success)
    envs = [Broken() for _ in range(3)]
    for env, task in zip(envs, Broken.tasks("train", 3, 0)):
        env.reset(**task)
    completions = [[{"role": "assistant", "content": c}] for c in ("a", "", "b")]
    assert suite.functions[0](prompts=None, completions=completions, environments=envs) == [1.0, None, 1.0]
    envs = [Broken() for _ in range(3)]
    for env, task in zip(envs, Broken.tasks("train", 3, 0)):
        env.reset(**task)
    with pytest.raises(EnvironmentFailures, match=r"2 of 3 episodes of this batch failed in the environment itself "
                                                  r"\(first: verifier raised KeyError"):
        suite.functions[0](prompts=None, completions=[[{"role": "assistant", "content": c}] for c in ("", "", "b")],
                           environments=envs)


def _train(plugins, run_dir, always: bool):
    (plugins / "flaky.py").write_text(FLAKY.replace("{always}", "yes" if always else "no"))
    return run_cli("--algo", "grpo", "--config", "tiny", "--plugin-dir", str(plugins),
                   "--set", "env.name=flaky", "--set", "rewards=[{name: task_success}]", "--set", "grpo.max_steps=2",
                   "--set", "grpo.per_device_batch_size=12", "--set", "grpo.num_generations=2",
                   "--set", "env.max_failure_share=0.8", "--set", "eval.at_end=false", "--output-dir", str(run_dir))


@pytest.mark.slow
def test_a_run_with_a_flaky_environment_trains_to_the_end_with_failures_counted(tmp_path):
    result = _train(tmp_path, tmp_path / "run", always=False)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["env_failures"]["flaky"] > 0
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["env_failures/flaky"] == summary["env_failures"]["flaky"]
    assert result.stderr.count("this traceback is shown once") == 1  # one raising line: one traceback


@pytest.mark.slow
def test_an_environment_that_always_fails_stops_the_run_in_one_line(tmp_path):
    result = _train(tmp_path, tmp_path / "run", always=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr.split("error: ")[-1]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: environment 'flaky': 12 of 12 episodes of this batch failed in the environment")
    assert "raise env.max_failure_share (0.8)" in last
