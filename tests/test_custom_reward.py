"""A new user's path: the README's reward example in a folder of their own, through the CLI only.

Copied out of README.md (so the README cannot drift), registered with --plugin-dir, listed, tried on one
completion, and trained with by name. Plus a training run where one reward raises on every call and another
returns NaN: training finishes, both are counted, and the working reward still drives the update.
"""

import json
import re

import pytest

from conftest import REPO, run_cli


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"```python\n(# rewards/concise\.py\n.*?)```", text, re.S)
    assert match, "the README's reward example moved"
    return match.group(1)


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("my_rewards")
    (folder / "concise.py").write_text(readme_example())
    (folder / "broken.py").write_text(
        "from agent_lightning import reward\n\n\n"
        "@reward('always_raises')\ndef always_raises(completions, **kwargs):\n"
        "    \"\"\"Raises on every call.\"\"\"\n    raise RuntimeError('boom')\n\n\n"
        "@reward('always_nan')\ndef always_nan(completions, **kwargs):\n"
        "    \"\"\"NaN for everyone.\"\"\"\n    return [float('nan')] * len(completions)\n\n\n"
        "@reward('text_length')\ndef text_length(completions, **kwargs):\n"
        "    \"\"\"Characters in the reply: a signal even a random model varies.\"\"\"\n"
        "    return [len(c[-1]['content']) / 100 for c in completions]\n")
    return folder


def test_the_readme_example_is_listed_with_its_docstring(plugin_dir):
    result = run_cli("rewards", "list", "--json", "--plugin-dir", str(plugin_dir))
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["concise"]["summary"] == "Rewards successful episodes whose final message stays under max_words words."
    assert rows["concise"]["weight"] == 0.2 and rows["concise"]["source"].endswith("concise.py")
    assert "task_success" in rows  # the built-in library is there too


def test_rewards_try_scores_one_completion_and_shows_its_arguments(plugin_dir, tmp_path):
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    task = ENVIRONMENTS.get("filesystem").obj.tasks("test", 1, 0)[0]
    call = json.loads(task["solution"])["calls"][0]
    reply = tmp_path / "reply.txt"
    reply.write_text(f"<tool_call>\n{json.dumps(call)}\n</tool_call>\nDone.")
    result = run_cli("rewards", "try", "concise", "--env", "filesystem", "--task-id", task["task_id"],
                     "--completion", str(reply), "--plugin-dir", str(plugin_dir))
    assert result.returncode == 0, result.stderr
    assert "score: 1.0" in result.stdout
    for argument in ("completions", "environments", "task_id", "prompts"):
        assert re.search(rf"^  {argument}\s", result.stdout, re.M), argument
    assert '"success": true' in result.stdout
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("I did nothing.")
    result = run_cli("rewards", "try", "concise", "--env", "filesystem", "--task-id", task["task_id"],
                     "--completion", str(wrong), "--plugin-dir", str(plugin_dir))
    assert "score: 0.0" in result.stdout


def test_a_misspelt_reward_argument_is_one_line(plugin_dir):
    result = run_cli("--algo", "grpo", "--config", "configs/tiny.yaml", "--plugin-dir", str(plugin_dir),
                     "--set", "rewards.0.name=concise", "--set", "rewards.0.max_wrods=3", "--max-steps", "1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: rewards.concise.max_wrods: the reward has no parameter 'max_wrods'. Did you mean 'max_words'? "
        "Its parameters: max_words."]


@pytest.mark.slow
def test_training_with_a_custom_reward_and_two_broken_ones(plugin_dir, tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text((REPO / "configs" / "tiny.yaml").read_text().replace(
        "rewards:\n  - {name: exact_answer, weight: 1.0}",
        "rewards:\n  - {name: concise, max_words: 3}\n  - {name: always_raises}\n  - {name: always_nan, on_error: skip}\n"
        "  - {name: text_length, weight: 1.0}"))
    run_dir = tmp_path / "run"
    result = run_cli("--algo", "grpo", "--config", str(config), "--plugin-dir", str(plugin_dir), "--max-steps", "2",
                     "--output-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2
    assert summary["rewards"] == {"concise": 0.2, "always_raises": 1.0, "always_nan": 1.0, "text_length": 1.0}
    assert summary["reward_errors"] == {"always_raises": 2, "always_nan": 2}
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["reward_errors/always_raises"] == 2
    assert all(r["rewards/always_raises/mean"] == 0.0 for r in rows)  # on_error zero
    assert all(r["rewards/always_nan/mean"] is None for r in rows)  # on_error skip: not applicable
    assert any(r["rewards/text_length/std"] > 0 for r in rows)  # the working reward separates completions
    assert any(r["frac_reward_zero_std"] < 1 for r in rows)  # ... so some groups carry a learning signal
    assert all(r["loss"] is not None for r in rows)
    assert "reward 'always_raises' failed (RuntimeError: boom)" in result.stderr
