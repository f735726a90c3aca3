"""benchmarks/grpo_curve.py on a real `--algo sft+grpo` chain of the tiny config: the chain's grpo stage folder
(no config.yaml of its own), starting from the chain's SFT adapter, only the steps asked for; and its table of
successes by task template."""

import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import REPO, run_cli


def _grpo_curve():
    """benchmarks/grpo_curve.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("grpo_curve", REPO / "benchmarks" / "grpo_curve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # trains a tiny chain and evaluates three adapters
def test_curve_of_a_chains_grpo_stage_starts_from_its_sft_adapter(tmp_path):
    chain = tmp_path / "chain"
    trained = run_cli("--algo", "sft+grpo", "--config", "configs/tiny.yaml", "--output-dir", str(chain),
                      "--set", "grpo.save_steps=1", "--set", "grpo.max_steps=2", "--set", "eval.at_end=false")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert not (chain / "grpo" / "config.yaml").exists() and (chain / "config.yaml").is_file()
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "grpo_curve.py"), str(chain / "grpo"),
                           "--split", "test", "--limit", "4", "--steps", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"--adapter {chain / 'sft' / 'adapter'}" in done.stdout  # the start is the chain's SFT adapter
    assert "checkpoint-1" in done.stdout and "checkpoint-2" not in done.stdout and "grpo/adapter" not in done.stdout
    curve = json.loads((chain / "grpo" / "curve" / "test-limit4-curve.json").read_text())  # named by the selection
    assert [p["step"] for p in curve["points"]] == [0, 1]
    assert curve["points"][0]["vs_start"]["n"] == 4
    assert "--steps 1" in done.stdout  # the reproduce line carries the selection

    # a wider dev split, compared against a run's own reports: the cached files are named by the selection, the
    # default selection's are left alone, and the paired difference of a run against itself is exactly zero
    again = subprocess.run([sys.executable, str(REPO / "benchmarks" / "grpo_curve.py"), str(chain / "grpo"),
                            "--split", "dev", "--dev-size", "6", "--limit", "3", "--steps", "1",
                            "--against", str(chain / "grpo")],
                           cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "--set env.dev_size=6" in again.stdout
    curve_dir = chain / "grpo" / "curve"
    assert (curve_dir / "dev6-limit3-step1.json").is_file() and (curve_dir / "dev6-limit3-curve.png").is_file()
    wide = json.loads((curve_dir / "dev6-limit3-curve.json").read_text())
    assert wide["points"][1]["vs_against"]["n"] == 3 and wide["points"][1]["vs_against"]["difference"] == 0
    assert "minus" in again.stdout
    assert json.loads((curve_dir / "test-limit4-curve.json").read_text()) == curve  # the first curve untouched


def test_the_template_table_gives_each_templates_successes_at_each_point():
    grpo_curve = _grpo_curve()
    start = {"by_template": {"copy": {"success_rate": 0.5, "n": 4}, "merge": {"success_rate": 0.0, "n": 3}}}
    later = {"by_template": {"copy": {"success_rate": 0.75, "n": 4}}}
    lines = grpo_curve.template_table([("start", start), ("step 4", later)])
    assert lines[0].split() == ["template", "start", "step", "4"]
    assert lines[1].split() == ["copy", "2/4", "3/4"] and lines[2].split() == ["merge", "0/3"]
    assert grpo_curve.template_table([("start", {"by_template": {}})]) == []  # tasks without templates: no table


def test_the_dev_split_of_its_own_words_is_cached_under_its_own_name():
    """Reports of the filesystem environment's own dev split never mix with reports of the earlier dev split
    (unused training tasks) cached in the same curve folder; an environment without one keeps the old names."""
    import argparse

    grpo_curve = _grpo_curve()
    default, tiny = REPO / "configs" / "default.yaml", REPO / "configs" / "tiny.yaml"
    assert grpo_curve.own_dev_split(default, "held_out") and not grpo_curve.own_dev_split(default, "train")
    assert not grpo_curve.own_dev_split(tiny, "held_out")  # arithmetic has no dev split of its own
    args = argparse.Namespace(split="dev", dev_source="held_out", dev_size=300, tiers="1,2", limit=1000)
    assert grpo_curve.selection(args, own_dev=True) == (
        "dev-own300-tiers12-limit1000", ["--set", "env.dev_source=held_out", "--set", "env.dev_size=300",
                                         "--tiers", "1,2"])
    args.dev_source = "train"
    assert grpo_curve.selection(args, own_dev=False)[0] == "dev300-tiers12-limit1000"
    args.split, args.dev_size, args.tiers = "test", None, None
    assert grpo_curve.selection(args, own_dev=False) == ("test-limit1000", [])
