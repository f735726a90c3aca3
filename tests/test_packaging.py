"""The wheel carries the built-ins: built, installed without the checkout, and run from a folder outside it.

`pip install .` must give a working tool: the 11 built-in rewards, the 4 environments, the shipped recipes by
name (`--config tiny`) and a real training step, with no path into the repository. The wheel is installed with
--no-deps into a temporary target that is put first on PYTHONPATH (the dependencies come from this venv), and
every command runs from an empty folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

BUILTIN_REWARDS = {"answer_match", "efficiency", "exact_answer", "overlong_penalty", "partial_progress",
                   "repetition_penalty", "structure", "task_success", "tool_call_format", "tool_error_penalty",
                   "unit_tests_passed"}
BUILTIN_ENVIRONMENTS = {"arithmetic", "code", "filesystem", "tools"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site folder with the installed wheel, an empty working folder outside the repository, the wheel)."""
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
                            str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    wheel, = (root / "dist").glob("agent_lightning-*.whl")
    site = root / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    workdir = root / "elsewhere"
    workdir.mkdir()
    return site, workdir, wheel


def _run(installed, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    site, workdir, _ = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "agent_lightning", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_holds_the_builtins_and_no_repository_paths(installed):
    _, _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("agent_lightning/rewards/task_success.py", "agent_lightning/environments/tools.py",
                     "agent_lightning/configs/tiny.yaml", "agent_lightning/configs/default.yaml",
                     "agent_lightning/configs/accelerate/ddp.yaml", "agent_lightning/data/sops/sum_file.yaml",
                     "agent_lightning/chat/templates/mistral_v3.jinja"):
        assert expected in names, expected
    assert not any(n.startswith(("tests/", "benchmarks/", "src/")) for n in names)


def test_the_installed_package_is_the_one_that_runs(installed):
    site, workdir, _ = installed
    probe = subprocess.run([sys.executable, "-c", "import agent_lightning.rewards as r; print(r.__file__)"],
                           cwd=workdir, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()).is_relative_to(site)


def test_lists_the_builtin_rewards_and_environments_outside_the_checkout(installed):
    rewards = _run(installed, "rewards", "list", "--json")
    assert rewards.returncode == 0, rewards.stderr
    listed = {r["name"]: r for r in json.loads(rewards.stdout)}
    assert set(listed) >= BUILTIN_REWARDS
    site = str(installed[0])
    assert all(listed[n]["source"].startswith(site) for n in BUILTIN_REWARDS), listed
    envs = _run(installed, "env", "list", "--json")
    assert envs.returncode == 0, envs.stderr
    assert {e["name"] for e in json.loads(envs.stdout)} >= BUILTIN_ENVIRONMENTS


def test_trains_one_grpo_step_with_a_shipped_recipe_by_name(installed):
    out = installed[1] / "run"
    result = _run(installed, "--algo", "grpo", "--config", "tiny", "--max-steps", "1", "--output-dir", str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1
    assert (out / "adapter" / "adapter_config.json").is_file()
