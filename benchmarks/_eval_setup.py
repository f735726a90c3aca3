"""What the evaluation benchmarks share: their flags, and the policy, tasks and prompts `eval` would use.

    from _eval_setup import load_eval_setup
    setup = load_eval_setup(__doc__.splitlines()[0], default_limit=50)   # setup.model, setup.tasks, ...
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace


def load_eval_setup(description: str, default_limit: int) -> SimpleNamespace:
    """Parse --adapter/--config/--limit/--batch-size; load the adapter's policy and the test tasks."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--adapter", required=True, help="An adapter that makes tool calls, e.g. RUN_DIR/sft/adapter.")
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--limit", type=int, default=default_limit)
    parser.add_argument("--batch-size", type=int, default=default_limit)
    args = parser.parse_args()

    from agent_lightning import evaluate as ev
    from agent_lightning.chat.tool_format import prepare_for_tools
    from agent_lightning.config import load_config
    from agent_lightning.registry import discover
    from agent_lightning.envs import environment_class, system_prompt

    discover()
    cfg = load_config(args.config)
    env_cls = environment_class(cfg)
    model, tokenizer = ev.load_for_eval(cfg, args.adapter)
    prepare_for_tools(tokenizer, cfg.policy.tool_prompt)
    return SimpleNamespace(
        args=args, cfg=cfg, env_cls=env_cls, model=model, tokenizer=tokenizer,
        tasks=env_cls.tasks("test", cfg.env.test_size, cfg.env.seed)[: args.limit],
        system=system_prompt(cfg, env_cls),
        max_new=cfg.eval.max_new_tokens or cfg.grpo.max_completion_length)
