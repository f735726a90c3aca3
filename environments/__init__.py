"""Built-in environments, installed as `agent_lightning.environments` (the repository keeps them in environments/).

Each module (or sub-package) registers its environment with `@environment` when the registry imports it
(`env list` shows them); modules whose name starts with "_" are helpers. Users add their own environments in
plugin folders (`--plugin-dir DIR`): see the README's "Write an environment" and agent_lightning.envs.
"""
