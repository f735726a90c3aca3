"""GRPO's gain on chosen file-task templates, over task sets that differ only in seed strings or word pool.

    .venv/bin/python benchmarks/template_rows.py --config RUN/config.yaml --before RUN/sft/adapter \
        --after GRPO_RUN/checkpoint-8 [--templates merge_files,fix_config] [--draws 0-7] [--fresh 96]

Plays, greedily with the episode loop `eval` uses, the `--templates` tasks of five sets with both adapters, and
prints each set's successes before and after with the paired difference (95% interval, tasks better/worse, n):
  - the test split's tasks of `--draws` (env.seed values), as `eval --split test --set env.seed=S` plays them;
  - the same seed strings and rotation built from the dev split's words (`split_rows(..., POOLS['dev'])`);
  - `--fresh` tasks per template from seed strings of their own, once with the test words, once with the dev words;
  - the dev split's tasks of the same draws (its own words).
So a gap between the test and dev splits can be put on the seed strings or on the words. Written for the
filesystem environment (its word pools and templates); nothing is written to disk. Not covered: tier-3 templates
work but no adapter here solves them; one greedy sample per task (no sampling noise is measured).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def parse_draws(text: str) -> list[int]:
    """'0-7' or '0,2,5' -> env.seed values."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="The run's config.yaml (policy, env, eval settings).")
    parser.add_argument("--before", required=True, help="Adapter before GRPO, e.g. RUN/sft/adapter.")
    parser.add_argument("--after", required=True, help="Adapter after GRPO, e.g. GRPO_RUN/checkpoint-8.")
    parser.add_argument("--templates", default="merge_files,fix_config")
    parser.add_argument("--draws", default="0-7", help="env.seed values of the split draws: '0-7' or '0,3'.")
    parser.add_argument("--size", type=int, default=200, help="Tasks per split draw (before the template filter).")
    parser.add_argument("--fresh", type=int, default=96, help="Fresh-seed tasks per template and pool.")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from agent_lightning.chat.tool_format import prepare_for_tools
    from agent_lightning.config import load_config
    from agent_lightning.environments.filesystem import POOLS, generate, reference_solution, split_rows
    from agent_lightning.envs import environment_class, prompt_prefix
    from agent_lightning.evaluate import load_for_eval
    from agent_lightning.registry import discover
    from agent_lightning.rollout.episodes import generation_weights, play_episodes
    from agent_lightning.stats import format_difference, paired_difference

    discover()
    cfg = load_config(args.config)
    env_cls = environment_class(cfg)
    if env_cls.env_name != "filesystem":
        sys.exit(f"template_rows: the config's env is '{env_cls.env_name}'; this benchmark needs 'filesystem'.")
    templates, draws = args.templates.split(","), parse_draws(args.draws)

    def drawn(split: str, pool: str) -> list[dict]:
        return [{**row, "task_id": f"{row['task_id']}-s{seed}"} for seed in draws
                for row in split_rows(split, args.size, seed, POOLS[pool]) if row["template"] in templates]

    def fresh(pool: str) -> list[dict]:
        rows = []
        for name in templates:
            for i in range(args.fresh):
                row = generate(name, random.Random(f"fresh:{name}:{i}"), POOLS[pool])
                row = {"task_id": f"fresh-{name}-{i}", **row}
                rows.append({**row, "solution": json.dumps(reference_solution(row))})
        return rows

    sets = {f"test split, env.seed {args.draws} (test words)": drawn("test", "test"),
            "the same seed strings, dev words": drawn("test", "dev"),
            f"fresh seed strings, test words ({args.fresh} per template)": fresh("test"),
            f"fresh seed strings, dev words ({args.fresh} per template)": fresh("dev"),
            f"dev split, env.seed {args.draws} (its own words)": drawn("dev", "dev")}
    system = prompt_prefix(cfg, env_cls)
    outcomes: dict[str, dict[str, dict[str, float]]] = {}
    for adapter in (args.before, args.after):
        model, tokenizer = load_for_eval(cfg, adapter)
        prepare_for_tools(tokenizer, cfg.policy.tool_prompt)
        for label, rows in sets.items():
            done = outcomes.setdefault(label, {}).setdefault(adapter, {})
            for start in range(0, len(rows), args.batch_size):
                chunk = rows[start:start + args.batch_size]
                with generation_weights(model):
                    episodes = play_episodes(model, tokenizer, env_cls, chunk, system,
                                             max_new_tokens=cfg.eval.max_new_tokens or cfg.grpo.max_completion_length,
                                             max_turns=cfg.env.max_turns, max_failed_turns=cfg.eval.max_failed_turns)
                for task, episode in zip(chunk, episodes):
                    done[task["task_id"]] = float(episode.env._finish_episode(episode.messages).success)
            print(f"{adapter}: {label}: {int(sum(done.values()))} of {len(done)}", flush=True)

    print(f"\n{', '.join(templates)}: {args.before} -> {args.after}, greedy")
    print("| task set | tasks | before | after | after - before (paired, 95% interval) |\n|---|---|---|---|---|")
    for label, by_adapter in outcomes.items():
        before, after = by_adapter[args.before], by_adapter[args.after]
        print(f"| {label} | {len(before)} | {int(sum(before.values()))} | {int(sum(after.values()))} | "
              f"{format_difference(paired_difference(before, after))} |")
    print(f"\nreproduce: .venv/bin/python benchmarks/template_rows.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
