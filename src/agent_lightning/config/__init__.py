"""Typed run configuration: dataclasses with help text (sections.py), loaded from YAML and `--set` (loading.py).

    from agent_lightning.config import load_config
    cfg = load_config("tiny", overrides=["grpo.learning_rate=1e-5"])
    for key, type_name, help_text in iter_help(): ...   # what `python main_agent_lightning.py config keys` prints

Not covered here: whether a named reward or environment exists (the registry checks it when the run starts).
"""

from agent_lightning.config.loading import iter_help, load_config, resolve_config_path, shipped_configs
from agent_lightning.config.sections import (
    AgentSection,
    APOSection,
    Config,
    EnvSection,
    EvalSection,
    GRPOSection,
    LoraSection,
    MemorySection,
    PolicySection,
    RewardSpec,
    RFTSection,
    RunSection,
    SFTSection,
    SFTSource,
)

__all__ = ["AgentSection", "APOSection", "Config", "EnvSection", "EvalSection", "GRPOSection", "LoraSection", "MemorySection", "PolicySection",
           "RFTSection", "RewardSpec", "RunSection", "SFTSection", "SFTSource", "iter_help", "load_config",
           "resolve_config_path", "shipped_configs"]
