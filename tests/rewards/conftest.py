"""Fixtures for the reward tests: real environments, and episodes run the way TRL's tool loop runs them.

`episodes.run(env_name, task, turns)` plays raw assistant outputs through the policy's parsing path
(`parse_response_text` + `to_message`, so a malformed call carries `__malformed__` as in training), executes
each call on a fresh environment instance as TRL does (an exception becomes {"error": ...}), appends the tool
results, and verifies the episode with `env._finish_episode(messages)`; it returns (messages, env).

tests/rewards is a package (an empty __init__.py) so that this conftest is `rewards.conftest`: without it, it
would replace the top-level `conftest` module that other tests import `run_cli` from.
"""

from __future__ import annotations

import json
from functools import cache

import pytest

from agent_lightning.chat.segmenter import parse_response_text
from agent_lightning.chat.tool_format import to_message
from agent_lightning.registry import ENVIRONMENTS, REWARDS, discover


def chatml(call: dict) -> str:
    """A call as a ChatML policy writes it."""
    return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"


class Episodes:
    chatml = staticmethod(chatml)

    def __init__(self):
        discover()

    @staticmethod
    def reward(name: str):
        return REWARDS.get(name).obj

    @staticmethod
    def env_cls(name: str):
        return ENVIRONMENTS.get(name).obj

    @cache
    def _tasks(self, env_name: str, split: str, size: int) -> tuple:
        return tuple(self.env_cls(env_name).tasks(split, size, 0))

    def task(self, env_name: str, task_id: str, split: str = "test", size: int = 12) -> dict:
        return next(t for t in self._tasks(env_name, split, size) if t["task_id"] == task_id)

    def run(self, env_name: str, task: dict, turns: list[str], finish: bool = True):
        env = self.env_cls(env_name)()
        env.reset(**task)
        names = env.tool_names()
        messages = []
        for i, text in enumerate(turns):
            message = to_message(parse_response_text(text, names or None), names)
            messages.append(message)
            if not message.get("tool_calls"):
                assert i == len(turns) - 1, "TRL ends the episode at the first turn without a call"
                break
            for call in message["tool_calls"]:
                name, arguments = call["function"]["name"], call["function"]["arguments"]
                try:
                    result = getattr(env, name)(**arguments)
                except Exception as exc:  # noqa: BLE001 - what TRL does
                    result = {"error": str(exc)}
                messages.append({"role": "tool", "name": name, "content": str(result)})
        if finish:
            env._finish_episode(messages)
        return messages, env

    def solved(self, env_name: str, task: dict, extra_calls: tuple = (), finish: bool = True):
        """The reference trajectory (optionally with extra calls first), one call per turn."""
        solution = json.loads(task["solution"])
        turns = [chatml(c) for c in [*extra_calls, *solution["calls"]]] + [solution["final"]]
        return self.run(env_name, task, turns, finish)

    def single_turn(self, env_name: str, task: dict, reply):
        """A single-turn episode, verified the way the reward suite verifies it."""
        env = self.env_cls(env_name)()
        env.reset(**task)
        completion = [{"role": "assistant", "content": reply}]
        env._finish_episode(completion)
        return completion, env


@pytest.fixture(scope="session")
def episodes() -> Episodes:
    return Episodes()
