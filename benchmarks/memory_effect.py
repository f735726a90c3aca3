"""Claim under test: SOP memory injected into the prompt changes held-out success (paired, same tasks).

    .venv/bin/python benchmarks/memory_effect.py --adapter RUN_DIR/sft/adapter --traces RUN_DIR [--limit 100]
        [--trained-adapter DIR] [--split test] [--config configs/default.yaml] [--sops FILE ...] [--work DIR]
        [--no-write]

1. SOPs: `memory sop distill` of the verified-successful rollouts under `--traces` (a training run's traces: the
   policy's own successes on training tasks; GRPO writes them), and any `--sops` files (`memory sop add`), into a
   fresh store in `--work`.
2. The same `--limit` tasks of `--split` evaluated with the adapter, greedy: memory off, and memory on
   (`memory.inject`, the top `memory.sop_k` SOP appended to each task's prompt, no code chunks); and, with
   `--trained-adapter`, a policy trained with the same memory in its prompts (e.g. `--algo sft --set
   memory.inject=true --set memory.store=WORK/store --set memory.code_k=0`), memory on.
3. Prints, and writes into docs/results.md (block `memory-effect`; `--no-write` only prints): success per tier with
   and without memory, the paired difference with its 95% interval over all tasks and over tiers 2-3 (where a
   procedure should help most), how many SOPs were distilled, and the command that reproduces it.

Evaluations are cached in `--work` (a rerun with the same work folder reuses them). Not covered: code memory
(chunks) in the prompt (the `code` and `tools` environments).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _cached_eval import cached_eval, run_cli as cli, tier_cells, tiers_of  # noqa: E402
from _results import publish  # noqa: E402
from agent_lightning.evaluate import task_successes  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/memory_effect.py"


def evaluate(args: argparse.Namespace, store: Path, inject: bool, out: Path, adapter_dir: str | None) -> dict[str, Any]:
    memory = ["--set", "memory.inject=true", "--set", f"memory.store={store}", "--set", "memory.code_k=0"] \
        if inject else []
    return cached_eval(out, "--config", args.config, "--split", args.split, "--limit", str(args.limit),
                       *(["--adapter", adapter_dir] if adapter_dir else []), *memory,
                       *sum((["--set", s] for s in args.set), []))


def outcomes(report: dict[str, Any], tiers: set[int] | None = None) -> dict[str, float]:
    """Task id -> success share, of the tasks in `tiers` (all when None)."""
    kept = [t for t in report["per_task"] if tiers is None or t.get("tier") in tiers]
    return task_successes({"per_task": kept})


def table(reports: list[tuple[str, dict[str, Any]]], sops: int, command: str) -> str:
    """Rows: the first report is the reference (memory off) every other row is paired with."""
    from agent_lightning.stats import format_difference, paired_difference

    off = reports[0][1]
    tiers = tiers_of(off)
    rows = ["| policy, memory | held-out success | vs off, all tasks (paired, 95% interval) | vs off, tiers 2-3 | " +
            " | ".join(f"tier {t}" for t in tiers) + " | prompts with memory |",
            "|---|---|---|---|" + "---|" * len(tiers) + "---|"]
    for i, (label, r) in enumerate(reports):
        cells = tier_cells(r, tiers)
        every = format_difference(paired_difference(outcomes(off), outcomes(r))) if i else ""
        hard = format_difference(paired_difference(outcomes(off, {2, 3}), outcomes(r, {2, 3}))) if i else ""
        rows.append(f"| {label} | {100 * r['success_rate']:.1f}% | {every} | {hard} | " + " | ".join(cells) +
                    f" | {r.get('episodes_with_memory', '?')} of {r['tasks']} |")
    return "\n".join(rows) + (f"\n\n{sops} SOPs in the store; the same {off['tasks']} {off['split']} tasks in every "
                              f"row, greedy. Reproduce: `{command}`.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", help="The policy's adapter, e.g. RUN_DIR/sft/adapter (default: the base policy).")
    parser.add_argument("--traces", help="A run directory whose traces/ hold the policy's training rollouts.")
    parser.add_argument("--sops", nargs="*", default=[], help="SOP files (YAML or Markdown) to add as well.")
    parser.add_argument("--trained-adapter", help="A policy trained with this memory in its prompts (see above).")
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Config overrides for both evaluations.")
    parser.add_argument("--work", type=Path, help="Folder for the store and the cached reports (default: a temp one).")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/results.md as it is.")
    args = parser.parse_args()
    if not args.traces and not args.sops:
        parser.error("give --traces RUN_DIR (SOPs distilled from its successes) and/or --sops FILE")
    flags = " ".join(sys.argv[1:])
    command = f"{COMMAND} {flags}".strip()
    print(f"reproduce: {command}")
    work = args.work or Path(tempfile.mkdtemp(prefix="memory-effect-"))
    work.mkdir(parents=True, exist_ok=True)
    store = work / "store"
    if not (store / "chroma").is_dir():
        if args.traces:
            print(cli("memory", "sop", "distill", args.traces, "--store", str(store), "--config", args.config)
                  .strip().splitlines()[-1])
        for file in args.sops:
            print(cli("memory", "sop", "add", file, "--store", str(store), "--config", args.config)
                  .strip().splitlines()[-1])
    listed = cli("memory", "sop", "list", "--store", str(store), "--config", args.config, "--json")
    sops = len(json.loads(listed[listed.index("["):]))
    reports = [("adapter, off", evaluate(args, store, False, work / f"{args.split}-off.json", args.adapter)),
               ("adapter, on (SOP in the prompt)", evaluate(args, store, True, work / f"{args.split}-on.json",
                                                            args.adapter))]
    if args.trained_adapter:
        reports.append(("trained with memory, on", evaluate(args, store, True, work / f"{args.split}-trained-on.json",
                                                            args.trained_adapter)))
    body = table(reports, sops, command)
    publish("memory-effect", body, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
