"""Agent Lightning: RL training for tool-using LLM agents (TRL SFT + GRPO, sandboxed environments, rewards)."""

from agent_lightning.envs import Environment, Outcome
from agent_lightning.registry import algorithm, environment, reward

# The environment contract lives in agent_lightning.envs (not .environment, which would shadow the decorator);
# the algorithm contract in agent_lightning.train.algorithm (a Stage is what an algorithm receives).
__all__ = ["Environment", "Outcome", "algorithm", "environment", "reward"]
__version__ = "0.1.0"
