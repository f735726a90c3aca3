"""Agent Lightning: RL training for tool-using LLM agents (TRL SFT + GRPO, sandboxed environments, rewards)."""

from agent_lightning.registry import environment, reward

__all__ = ["environment", "reward"]
__version__ = "0.1.0"
