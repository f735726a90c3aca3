"""The environment contract and how a run resolves its environment.

    from agent_lightning.envs import Environment, Outcome, ToolError        # write an environment
    env_cls = environment_class(cfg)                                         # the run's class (registry)
    make_env = environment_factory(env_cls, memory)                          # TRL's zero-argument factory

base.py holds the contract (TRL's `environment_factory` plus a verified `outcome`), file_tools.py the reusable
sandboxed-workspace environment with the six file tools. Built-in environments live in the repository's
`environments/` folder, installed as `agent_lightning.environments`.

Not covered here: the tool loop (rollout/), rewards (rewarding.py), sandboxing (sandbox/).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent_lightning.envs.base import (
    RESERVED,
    SPLITS,
    Environment,
    Outcome,
    ToolError,
    check_split,
    tasks_in_tiers,
    tool_message,
)

__all__ = ["RESERVED", "SPLITS", "Environment", "Outcome", "ToolError", "check_split", "environment_class",
           "environment_factory", "prompt_prefix", "system_prompt", "tasks_in_tiers", "tool_message"]


def environment_class(cfg: Any) -> type[Environment]:
    """The class registered under `cfg.env.name` (a one-line error with did-you-mean when unknown), bound to the
    run's config by its `for_run(cfg)` when it has one (the `agent` environment: its task file and command)."""
    from agent_lightning.registry import ENVIRONMENTS

    cls = ENVIRONMENTS.get(cfg.env.name).obj
    for_run = getattr(cls, "for_run", None)
    return for_run(cfg) if for_run is not None else cls


def system_prompt(cfg: Any, env_cls: type) -> str | None:
    """The run's system prompt: `env.system_prompt` when set, else the environment's own."""
    return cfg.env.system_prompt if cfg.env.system_prompt is not None else env_cls.system_prompt


def prompt_prefix(cfg: Any, env_cls: type) -> list[dict[str, Any]]:
    """The messages every conversation of the run starts with: `policy.prompt` (a prompt.yaml: instructions and
    few-shot demonstrations, chat/prompt.py) when set, else the system prompt alone (`system_prompt`)."""
    from agent_lightning.chat.prompt import Prompt, prefix_messages

    if getattr(cfg.policy, "prompt", None):
        return Prompt.load(cfg.policy.prompt).messages(system_prompt(cfg, env_cls))
    return prefix_messages(system_prompt(cfg, env_cls))


def environment_factory(env_cls: type[Environment], memory: Any = None) -> Callable[[], Environment]:
    """A zero-argument constructor (TRL's `environment_factory` contract) whose instances carry `memory` (a
    memory.context.MemoryContext, or None): the run's memory reaches each environment explicitly."""
    if memory is None:
        return env_cls

    def make() -> Environment:
        env = env_cls()
        env.memory = memory
        return env

    make.__name__ = make.__qualname__ = f"{env_cls.__name__}_with_memory"
    return make
