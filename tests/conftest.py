"""Shared fixtures. Tests never touch the network: models are built locally or come from PyPI packages.

Converted/built models are cached once per test session in a temporary AGENT_LIGHTNING_CACHE (inherited by
CLI subprocesses, removed at the end), so the suite is hermetic and does not depend on the user's cache.
Set AGENT_LIGHTNING_CACHE yourself to keep the cache between runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_OWN_CACHE = None
if "AGENT_LIGHTNING_CACHE" not in os.environ:
    _OWN_CACHE = tempfile.mkdtemp(prefix="al-test-cache-")
    os.environ["AGENT_LIGHTNING_CACHE"] = _OWN_CACHE
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")


def pytest_sessionfinish(session, exitstatus):
    """Remove the session's model cache (the fp32 SmolLM2 alone is ~540 MB)."""
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


def run_cli(*args: str, cwd: Path = REPO, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python main_agent_lightning.py ARGS` as a user would; returns the completed process."""
    return subprocess.run(
        [sys.executable, str(REPO / "main_agent_lightning.py"), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def tiny_policy():
    """(model, tokenizer) of the tiny random Mistral with the real v0.3 tokenizer, LoRA-wrapped."""
    from agent_lightning.config import PolicySection
    from agent_lightning.policy import load_policy

    return load_policy(PolicySection(source="tiny-mistral"))


if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs the suite on one worker per core (pytest-xdist): each worker, and every CLI subprocess it
    # starts, computes on one thread, so workers share the cores instead of oversubscribing them.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
