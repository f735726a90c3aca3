"""Claim under test: code memory injected into the prompt changes success on the `code` environment (HumanEval).

    .venv/bin/python benchmarks/code_memory_effect.py [--adapter DIR] [--code-k 2] [--work runs/code-memory-effect]
        [--config configs/default.yaml] [--limit N] [--no-write]

The corpus is solved code of *other* problems, as a codebase an agent works in holds working code next to the
function it is asked to write: the 164 HumanEval problems fall in two folds by the environment's own split (test:
33 problems, train: 131), each problem written as a file (its prompt plus its canonical body). Fold by fold, the
other fold's files are indexed (`memory index`) into a store, and the fold's problems are evaluated greedily with
memory off and on (`memory.inject`, the top `--code-k` chunks appended to the prompt, no SOPs). No problem ever sees
its own solution, and every problem is evaluated in both conditions, so the 164 outcomes pair.

Prints, and writes into docs/results.md (block `code-memory-effect`; `--no-write` only prints): success off and on
per fold and over all 164 problems, the paired difference with its 95% interval and n, the share of prompts that
got code, the mean tests passed (`progress`), and the command. Reports and stores are cached in `--work`.
Not covered: a policy trained with code memory in its prompts, the `tools` environment's `search_code`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _cached_eval import cached_eval, run_cli  # noqa: E402
from _results import publish  # noqa: E402
from agent_lightning.evaluate import task_successes  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/code_memory_effect.py"
FOLDS = ("test", "train")  # evaluated split; the corpus is the other one


def write_corpus(split: str, out: Path) -> Path:
    """The solved problems of `split`, one file each: the prompt (signature, docstring) and the canonical body."""
    from agent_lightning.environments.code import problems, split_of

    if out.is_dir():
        return out
    out.mkdir(parents=True)
    for task_id, problem in problems().items():
        if split_of(task_id) == split:
            name = task_id.replace("/", "_").lower() + ".py"
            (out / name).write_text(problem["prompt"] + problem["canonical_solution"])
    return out


def evaluate(args: argparse.Namespace, split: str, store: Path | None, out: Path) -> dict[str, Any]:
    memory = ["--set", "memory.inject=true", "--set", f"memory.store={store}", "--set", f"memory.code_k={args.code_k}",
              "--set", "memory.sop_k=0"] if store else []
    return cached_eval(out, "--config", args.config, "--set", "env.name=code", "--set", "env.train_tiers=[]",
                       "--split", split, "--limit", str(args.limit),
                       *(["--adapter", args.adapter] if args.adapter else []), *memory)


def table(folds: list[tuple[str, dict[str, Any], dict[str, Any]]], code_k: int, command: str) -> str:
    from agent_lightning.stats import format_difference, paired_difference

    rows = ["| problems | memory off | memory on | on - off (paired, 95% interval) | mean tests passed, off / on | "
            "prompts with code |", "|---|---|---|---|---|---|"]
    all_off: dict[str, float] = {}
    all_on: dict[str, float] = {}
    for label, off, on in folds:
        off_s, on_s = task_successes(off), task_successes(on)
        all_off.update(off_s)
        all_on.update(on_s)
        passed = " / ".join(f"{r['rewards'].get('partial_progress') or 0:.3f}" for r in (off, on))
        rows.append(f"| {label} | {100 * off['success_rate']:.1f}% | {100 * on['success_rate']:.1f}% | "
                    f"{format_difference(paired_difference(off_s, on_s))} | {passed} | "
                    f"{on.get('episodes_with_memory', '?')} of {on['tasks']} |")
    n = len(all_off)
    rate_off, rate_on = (100 * sum(outcomes.values()) / n for outcomes in (all_off, all_on))
    rows.append(f"| both folds ({n}) | {rate_off:.1f}% | {rate_on:.1f}% | "
                f"{format_difference(paired_difference(all_off, all_on))} | | |")
    return "\n".join(rows) + (f"\n\nGreedy; memory on: the top {code_k} chunks of the other fold's solved problems "
                              f"appended to each prompt. Reproduce: `{command}`.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", help="The policy's adapter (default: the base policy).")
    parser.add_argument("--code-k", type=int, default=2, help="Chunks appended to each prompt (memory.code_k).")
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--limit", type=int, default=200, help="Problems evaluated per fold (default: all).")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "code-memory-effect")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/results.md as it is.")
    args = parser.parse_args()
    command = f"{COMMAND} {' '.join(sys.argv[1:])}".strip()
    print(f"reproduce: {command}")
    args.work.mkdir(parents=True, exist_ok=True)
    folds = []
    for split in FOLDS:
        other = "train" if split == "test" else "test"
        store = args.work / f"store-{other}-solutions"
        if not (store / "chroma").is_dir():
            corpus = write_corpus(other, args.work / f"{other}-solutions")
            print(run_cli("memory", "index", str(corpus), "--store", str(store), "--config", args.config)
                  .strip().splitlines()[-1])
        off = evaluate(args, split, None, args.work / f"{split}-off.json")
        on = evaluate(args, split, store, args.work / f"{split}-on-k{args.code_k}.json")
        folds.append((f"{split} split ({off['tasks']}), corpus: the {other} split's solutions", off, on))
    body = table(folds, args.code_k, command)
    publish("code-memory-effect", body, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
