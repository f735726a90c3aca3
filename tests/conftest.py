"""Shared fixtures. Tests never touch the network: models are built locally or come from PyPI packages.

Converted/built models are cached once per test session in a temporary AGENT_LIGHTNING_CACHE (inherited by
CLI subprocesses), so the suite is hermetic and does not depend on the user's cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("AGENT_LIGHTNING_CACHE", tempfile.mkdtemp(prefix="al-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")


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
