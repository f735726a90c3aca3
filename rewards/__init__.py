"""Built-in reward functions, installed as `agent_lightning.rewards` (the repository keeps them in rewards/).

Each module registers its rewards with `@reward` when the registry imports it (`rewards list` shows them);
modules whose name starts with "_" hold shared helpers and register nothing. Users add their own rewards in
plugin folders (`--plugin-dir DIR`), not here: see the README's "Write a reward".
"""
