"""A new user's path for a training algorithm: the README's example in a plugin folder, through the CLI only.

Copied out of README.md (so the README cannot drift), registered with --plugin-dir, listed by `algos list`, and
chained before GRPO: the example trains and saves an adapter, GRPO starts from it, both are evaluated on the same
test tasks and compared. Plus the one-line errors: an unknown algorithm in a chain, a plugin that fails to import.
"""

import json
import re

import pytest

from conftest import REPO, run_cli


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"```python\n(# algorithms/imitate\.py\n.*?)```", text, re.S)
    assert match, "the README's algorithm example moved"
    return match.group(1)


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("my_plugins")
    (folder / "imitate.py").write_text(readme_example())
    return folder


def test_the_builtins_and_the_example_are_listed(plugin_dir):
    result = run_cli("algos", "list", "--json", "--plugin-dir", str(plugin_dir))
    assert result.returncode == 0, result.stderr
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"sft", "grpo", "rft", "apo", "imitate"} <= set(listed)
    assert listed["apo"]["section"] == "apo"
    assert listed["grpo"]["section"] == "grpo" and listed["imitate"]["section"] == "algorithms.imitate"
    assert listed["imitate"]["summary"].startswith("Plain PyTorch")
    assert listed["imitate"]["source"] == str(plugin_dir / "imitate.py")


@pytest.mark.slow
def test_the_example_chains_before_grpo(plugin_dir, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("--algo", "imitate+grpo", "--config", "tiny", "--plugin-dir", str(plugin_dir),
                     "--set", "algorithms.imitate.steps=3", "--set", "grpo.max_steps=1", "--set", "eval.limit=4",
                     "--output-dir", str(run_dir))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary["stages"]) == ["imitate", "grpo"] and summary["final_stage"] == "grpo"
    imitate = summary["stages"]["imitate"]
    assert imitate["steps"] == 3 and imitate["eval"]["tasks"] == 4  # returned values merged, evaluated
    losses = [json.loads(line) for line in (run_dir / "imitate" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in losses] == [1, 2, 3] and all(m["loss"] > 0 for m in losses)
    assert (run_dir / "imitate" / "adapter" / "adapter_config.json").is_file()
    assert [r["policy"] for r in summary["comparison"]] == ["base", "after IMITATE", "after IMITATE+GRPO"]
    assert summary["comparison"][1]["vs_previous"]["n"] == 4
    assert (run_dir / "adapter" / "adapter_config.json").is_file()


def test_an_unknown_algorithm_in_a_chain_is_one_line(tmp_path):
    result = run_cli("--algo", "sft+grpx", "--config", "tiny", "--output-dir", str(tmp_path / "r"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown algorithm 'grpx'. Did you mean 'grpo'?" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "r").exists()


def test_a_plugin_that_fails_to_import_names_its_file(tmp_path):
    (tmp_path / "broken_algo.py").write_text("from agent_lightning import algorithm\n\nimport no_such_module\n")
    result = run_cli("algos", "list", "--plugin-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "broken_algo.py:3" in last and "No module named 'no_such_module'" in last
