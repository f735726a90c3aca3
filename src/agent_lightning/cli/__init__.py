"""Command line: `python main_agent_lightning.py ...`

    --algo NAME[+NAME...] [--config FILE] [--set key=value ...] [--max-steps N] [--save-steps N]
                               [--output-dir DIR] [--resume] [--plugin-dir DIR]
    rewards list [--json]          registered reward functions
    algos list [--json]            registered training algorithms (built-ins and plugins) with their config sections
    rewards try NAME --env ENV --task-id ID --completion FILE   score one completion, show every argument
    env list [--json]              registered environments
    env run-calls --env NAME --calls FILE.jsonl [--task-id ID]   scripted tool calls in one fresh sandbox
    trace show RUN_DIR [--step N] [--limit K] [--failed]         readable rollout transcripts of a run
    eval --env NAME --split test [--adapter DIR] [--limit N] [--json]   greedy success rate of a policy
         [--samples K --temperature T] [--compare REPORT.json]        pass@k; paired difference from a report
    config show [--config FILE] [--set ...]   the resolved config;  config keys   every key with its help
    memory index PATH | query TEXT [-k N] [--json] | sop {add,list,query,distill}   code and SOP memory
    serve [--adapter DIR] [--host H] [--port N]   OpenAI-compatible gateway; records rollouts at /rollouts/<id>/v1

A user mistake (bad key, wrong type, missing file, unknown plugin) prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings

from agent_lightning.errors import UserError

SUBCOMMANDS = ("rewards", "env", "algos", "config", "trace", "eval", "memory", "serve")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (default: configs/default.yaml).")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Override a config value, e.g. --set grpo.learning_rate=1e-5 (repeatable).")
    p.add_argument("--plugin-dir", action="append", default=[], metavar="DIR",
                   help="Extra folder of reward/environment plugins (repeatable).")


def _tiers(text: str) -> list[int]:
    """`--tiers 1,2` -> [1, 2]; anything else is argparse's one-line error."""
    try:
        tiers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        tiers = []
    if not tiers:
        raise argparse.ArgumentTypeError(f"'{text}': expected tier numbers separated by commas, e.g. 1,2")
    return tiers


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="main_agent_lightning.py",
        description="Train a tool-using agent with TRL. Other commands: rewards list | env list | config show.",
    )
    p.add_argument("--algo", required=True, metavar="NAME[+NAME...]",
                   help="A registered algorithm (sft, grpo, rft, or a plugin's: `algos list`), or a chain such as "
                        "sft+grpo, each stage starting from the adapter the previous one left.")
    _common(p)
    p.add_argument("--max-steps", type=int, help="Steps of each stage (--set grpo.max_steps=N sft.max_steps=N rft.max_steps=N).")
    p.add_argument("--save-steps", type=int,
                   help="Checkpoint every N steps in each stage that runs (--set grpo.save_steps=N sft.save_steps=N).")
    p.add_argument("--output-dir", help="Run directory (default: runs/<name>-<algo>-<timestamp>).")
    p.add_argument("--resume", action="store_true",
                   help="Continue the latest checkpoint in --output-dir (or the latest run of this config's name).")
    p.add_argument("-v", "--verbose", action="store_true", help="Show library logs and warnings.")
    return p


def sub_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main_agent_lightning.py")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_text in (("rewards", "Reward functions."), ("env", "Environments."),
                            ("algos", "Training algorithms.")):
        cmd = sub.add_parser(name, help=help_text).add_subparsers(dest="action", required=True)
        lst = cmd.add_parser("list", help=f"List registered {name}.")
        lst.add_argument("--json", action="store_true")
        lst.add_argument("--plugin-dir", action="append", default=[], metavar="DIR")
        if name == "rewards":
            tryit = cmd.add_parser("try", help="Score one completion with one reward and show what it received.")
            tryit.add_argument("name", help="Reward name (see `rewards list`), file.py[:fn] or package.module:fn.")
            tryit.add_argument("--env", required=True, help="Environment name (see `env list`).")
            tryit.add_argument("--task-id", required=True, help="Task whose data and workspace the completion uses.")
            tryit.add_argument("--completion", required=True, metavar="FILE",
                               help="The completion: plain text, or a JSON list of chat messages.")
            _common(tryit)
        if name == "env":
            calls = cmd.add_parser("run-calls", help="Run tool calls from a JSONL file in one fresh sandbox.")
            calls.add_argument("--env", required=True, help="Environment name (see `env list`).")
            calls.add_argument("--calls", required=True, metavar="FILE.jsonl",
                               help='One {"name": TOOL, "arguments": {...}} per line; "-" reads stdin.')
            calls.add_argument("--task-id", help="Start from this task's workspace (default: an empty one).")
            _common(calls)
    ev = sub.add_parser("eval", help="Success rate (greedy) or pass@k (sampled) of a policy on a task split.")
    ev.add_argument("--env", help="Environment name (default: the config's env.name).")
    ev.add_argument("--split", default="test", choices=["train", "dev", "test"],
                    help="test: held out; dev: choose recipes here (tasks training never sees; filesystem: words of "
                         "their own, see env.dev_source); train: what training draws from.")
    ev.add_argument("--adapter", help="A PEFT adapter folder (e.g. RUN_DIR/adapter); default: the base policy.")
    ev.add_argument("--limit", type=int, help="Evaluate the first N tasks of the split.")
    ev.add_argument("--tiers", type=_tiers, metavar="1,2",
                    help="Only the split's tasks of these tiers (filesystem: 1 one step, 2 read then write, 3 several "
                         "steps); --limit then counts those.")
    ev.add_argument("--batch-size", type=int, help="Episodes generated together (default: eval.batch_size).")
    ev.add_argument("--samples", type=int, help="Episodes per task (default eval.samples, 1: greedy); K > 1 samples "
                                                "and reports pass@1 .. pass@K.")
    ev.add_argument("--temperature", type=float, help="Sampling temperature with --samples (default: eval.temperature).")
    ev.add_argument("--compare", metavar="REPORT.json",
                    help="An earlier `eval --json` report on the same split: print the paired difference task by task "
                         "(95%% interval, tasks won and lost).")
    ev.add_argument("--json", action="store_true", help="Print the report as JSON.")
    _common(ev)
    trace = sub.add_parser("trace", help="Rollout traces of a run.").add_subparsers(dest="action", required=True)
    show = trace.add_parser("show", help="Print a readable transcript of one step's rollouts.")
    show.add_argument("run_dir", metavar="RUN_DIR")
    show.add_argument("--step", type=int, help="Step to show (default: the last traced step).")
    show.add_argument("--limit", type=int, default=4, help="Rollouts to show (default 4).")
    show.add_argument("--failed", action="store_true", help="Only rollouts whose outcome is not a success.")
    from agent_lightning.cli.memory import add_parser as add_memory_parser

    add_memory_parser(sub, _common)
    from agent_lightning.cli.serve import add_parser as add_serve_parser

    add_serve_parser(sub, _common)
    cfg = sub.add_parser("config", help="Inspect configuration.").add_subparsers(dest="action", required=True)
    _common(cfg.add_parser("show", help="Print the resolved config as YAML."))
    cfg.add_parser("keys", help="Every config key with its type and help.")
    return p


def _quiet_libraries(verbose: bool) -> None:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # silences DeepSpeed's accelerator probe on CPU machines
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not verbose:
        warnings.filterwarnings("ignore")
        for name in ("transformers", "trl", "peft", "accelerate", "datasets", "torch", "httpx", "bitsandbytes"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            import datasets

            datasets.disable_progress_bars()
        except Exception:  # noqa: BLE001
            pass
        try:
            import transformers

            transformers.utils.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
        except Exception:  # noqa: BLE001
            pass


def cmd_list(kind: str, as_json: bool, plugin_dirs: list[str]) -> int:
    from agent_lightning.registry import ALGORITHMS, ENVIRONMENTS, REWARDS, add_plugin_dirs, discover

    add_plugin_dirs(plugin_dirs)
    discover()
    registry, extra, title = {
        "rewards": (REWARDS, "weight", "rewards"), "env": (ENVIRONMENTS, "tools", "environments"),
        "algos": (ALGORITHMS, "section", "training algorithms")}[kind]
    rows = []
    for plugin in registry.all():
        row = {"name": plugin.name, "source": plugin.source, "summary": plugin.summary}
        if kind == "rewards":
            row["weight"] = plugin.meta.get("weight", 1.0)
        elif kind == "env":
            row["tools"] = plugin.obj.tool_names() if hasattr(plugin.obj, "tool_names") else []
        else:
            row["section"] = plugin.meta.get("section")
        rows.append(row)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"registered {title}")
    for c in ["name", extra, "summary", "source"]:
        table.add_column(c, overflow="fold")
    for row in rows:
        shown = ", ".join(row["tools"]) or "(single-turn)" if kind == "env" else str(row[extra])
        table.add_row(row["name"], shown, row["summary"], os.path.relpath(row["source"]))
    Console().print(table)
    return 0


def cmd_run_calls(args: argparse.Namespace) -> int:
    from agent_lightning.config import load_config
    from agent_lightning.registry import ENVIRONMENTS, add_plugin_dirs, discover
    from agent_lightning.cli.run_calls import find_task, run_calls

    cfg = load_config(args.config, args.overrides)
    add_plugin_dirs(args.plugin_dir)
    discover()
    env_cls = ENVIRONMENTS.get(args.env).obj
    if not env_cls.tool_names():
        raise UserError(f"env '{args.env}' has no tools (single-turn); run-calls needs a tool environment.")
    task = {}
    if args.task_id:
        task = find_task(env_cls, args.task_id, cfg.env.seed, {"train": cfg.env.train_size, "test": cfg.env.test_size})
    if args.calls == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            with open(args.calls) as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            raise UserError(f"--calls {args.calls}: {exc.strerror}.") from None
    env = env_cls()
    env.reset(**task)
    for result in run_calls(env, lines):
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from agent_lightning.config import load_config
    from agent_lightning.registry import add_plugin_dirs

    _quiet_libraries(verbose=False)
    overrides = list(args.overrides) + ([f"env.name={args.env}"] if args.env else [])
    overrides += [f"eval.samples={args.samples}"] if args.samples is not None else []
    overrides += [f"eval.temperature={args.temperature}"] if args.temperature is not None else []
    cfg = load_config(args.config, overrides)
    add_plugin_dirs(args.plugin_dir)
    from agent_lightning.evaluate import evaluate, format_report

    earlier = _read_report(args.compare) if args.compare else None
    from agent_lightning.serve import player_for

    report = evaluate(cfg, args.split, args.adapter, args.limit, args.batch_size, play=player_for(cfg),
                      tiers=args.tiers)
    if earlier is not None:
        from agent_lightning.evaluate import task_successes
        from agent_lightning.stats import format_difference, paired_difference

        report["vs_compare"] = paired_difference(task_successes(earlier), task_successes(report))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if earlier is not None and not args.json:
        print(f"  vs {args.compare}: {format_difference(report['vs_compare'])}")
    return 0


def _read_report(path: str) -> dict:
    """An earlier `eval --json` report, with the per-task outcomes a paired comparison needs."""
    try:
        report = json.loads(open(path).read())
    except OSError as exc:
        raise UserError(f"--compare {path}: {exc.strerror}.") from None
    except ValueError:
        raise UserError(f"--compare {path}: not JSON; give the output of `eval --json`.") from None
    if not isinstance(report, dict) or not report.get("per_task"):
        raise UserError(f"--compare {path}: no per_task outcomes; give the output of `eval --json` (this version).")
    return report


def cmd_try_reward(args: argparse.Namespace) -> int:
    from agent_lightning.config import RewardSpec, load_config
    from agent_lightning.registry import ENVIRONMENTS, REWARDS, add_plugin_dirs, discover
    from agent_lightning.cli.reward_try import describe, load_completion, try_reward
    from agent_lightning.cli.run_calls import find_task

    cfg = load_config(args.config, args.overrides)
    add_plugin_dirs(args.plugin_dir)
    discover()
    plugin = REWARDS.get(args.name)
    env_cls = ENVIRONMENTS.get(args.env).obj
    task = find_task(env_cls, args.task_id, cfg.env.seed, {"train": cfg.env.train_size, "test": cfg.env.test_size})
    spec = next((s for s in cfg.rewards if s.name == args.name), RewardSpec(name=args.name))
    result = try_reward(args.name, env_cls, task, load_completion(args.completion), spec)
    print(f"reward '{plugin.name}' ({os.path.relpath(plugin.source)}): {plugin.summary}")
    print("received:")
    for key, value in result["received"].items():
        print(f"  {key:16s} {describe(value)}")
    if result["outcome"] is not None:
        print(f"outcome: {json.dumps(result['outcome'])}")
    errors = "  (it FAILED and was scored by on_error; see the warning above)" if result["errors"] else ""
    print(f"score: {result['score']}{errors}")
    return 0


def run_sub(argv: list[str]) -> int:
    args = sub_parser().parse_args(argv)
    if args.command == "eval":
        return cmd_eval(args)
    if args.command == "memory":
        from agent_lightning.cli.memory import quiet, run as run_memory

        quiet()

        return run_memory(args)
    if args.command == "serve":
        from agent_lightning.cli.serve import run as run_serve

        _quiet_libraries(verbose=False)
        return run_serve(args)
    if args.command == "trace":
        from agent_lightning.observe.traces import load_step, render

        step, records = load_step(args.run_dir, args.step)
        print(render(records, step, args.limit, args.failed))
        return 0
    if args.command == "env" and args.action == "run-calls":
        return cmd_run_calls(args)
    if args.command == "rewards" and args.action == "try":
        return cmd_try_reward(args)
    if args.command in ("rewards", "env", "algos"):
        return cmd_list(args.command, args.json, args.plugin_dir)
    from agent_lightning.config import iter_help, load_config

    if args.action == "keys":
        for key, tp, help_text in iter_help():
            print(f"{key:40s} {tp:22s} {help_text}")
        return 0
    import yaml

    cfg = load_config(args.config, args.overrides)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0


def run_train(argv: list[str]) -> int:
    args = train_parser().parse_args(argv)
    _quiet_libraries(args.verbose)
    from agent_lightning.config import load_config
    from agent_lightning.registry import add_plugin_dirs

    overrides = list(args.overrides)
    if args.max_steps is not None:
        overrides += [f"{stage}.max_steps={args.max_steps}" for stage in ("grpo", "sft", "rft")]
    if args.save_steps is not None:
        if args.save_steps < 1:
            raise UserError(f"--save-steps {args.save_steps}: expected a number of steps >= 1.")
        overrides += [f"grpo.save_steps={args.save_steps}", f"sft.save_steps={args.save_steps}"]
    cfg = load_config(args.config, overrides)
    add_plugin_dirs(args.plugin_dir)
    from agent_lightning.train.pipeline import run_training

    run_dir = run_training(cfg, args.algo, args.output_dir, args.resume)
    print(f"run directory: {run_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return run_sub(argv)
        return run_train(argv)
    except UserError as exc:
        from agent_lightning.train.graceful import Preempted

        print(f"{'' if isinstance(exc, Preempted) else 'error: '}{exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. piped into `head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted: the latest checkpoint-* can be continued with --resume", file=sys.stderr)
        return 130
