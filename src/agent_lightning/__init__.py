"""Agent Lightning: RL training for tool-using LLM agents (TRL SFT + GRPO, sandboxed environments, rewards).

The public names below are imported on first use (PEP 562), so `import agent_lightning` (and every command line,
`memory query` included) pays only for what it touches.
"""

from __future__ import annotations

import importlib
from typing import Any

# The environment contract lives in agent_lightning.envs (not .environment, which would shadow the decorator);
# the algorithm contract in agent_lightning.train.algorithm (a Stage is what an algorithm receives).
__all__ = ["Environment", "Outcome", "algorithm", "environment", "reward"]
__version__ = "0.1.0"

_HOMES = {"Environment": "agent_lightning.envs", "Outcome": "agent_lightning.envs",
          "algorithm": "agent_lightning.registry", "environment": "agent_lightning.registry",
          "reward": "agent_lightning.registry"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'agent_lightning' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_HOMES))
