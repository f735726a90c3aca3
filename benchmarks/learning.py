"""Does training teach the agent? Held-out success of the base policy, after SFT and after SFT+GRPO, side by side.

    .venv/bin/python benchmarks/learning.py [--config configs/default.yaml] [--set key=value ...] [--keep DIR]

Runs the real pipeline (`main_agent_lightning.py --algo sft+grpo`) into a fresh run directory. The run evaluates
the starting policy on the test split first, then SFT on verified demonstrations, evaluates, GRPO from the SFT
adapter, evaluates: all three on the same `eval.limit` test tasks with greedy rollouts through the sandbox. This
script prints the table (success rate, tool-error rate, wall time of each stage), the ratios that matter (SFT over
base in points, GRPO over SFT in points), the total wall time, the chart's path and the command that reproduces it.

Targets (issue: SFT warm start, on 2 CPU cores): total <= 40 min, base ~0%, after SFT >= 40%, GRPO >= SFT + 10
points. Not covered: variance across seeds (one seed per run; pass --set run.seed=N to repeat).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", help="Write the run here (default: a temporary folder, removed afterwards).")
    args = parser.parse_args()

    from agent_lightning.observe.compare import format_table

    with tempfile.TemporaryDirectory(prefix="learning-") as tmp:
        run_dir = Path(args.keep) if args.keep else Path(tmp) / "run"
        cmd = [sys.executable, "main_agent_lightning.py", "--algo", "sft+grpo", "--config", args.config,
               "--output-dir", str(run_dir)] + [x for kv in args.overrides for x in ("--set", kv)]
        started = time.time()
        done = subprocess.run(cmd, cwd=ROOT)
        total = time.time() - started
        if done.returncode != 0:
            print(f"training failed (exit {done.returncode})", file=sys.stderr)
            return done.returncode
        summary = json.loads((run_dir / "summary.json").read_text())
        rows = {r["policy"]: r for r in summary["comparison"]}
        print()
        print(format_table(summary["comparison"]))
        base, sft, grpo = (rows.get(k, {}).get("success_rate") for k in ("base", "after SFT", "after SFT+GRPO"))
        if None not in (base, sft, grpo):
            print(f"SFT - base: {100 * (sft - base):+.1f} points   GRPO - SFT: {100 * (grpo - sft):+.1f} points")
        print(f"total wall time: {total / 60:.1f} min (targets: <= 40 min, SFT >= 40%, GRPO >= SFT + 10 points)")
        print(f"chart: {summary.get('plot')}" + ("" if args.keep else " (temporary; pass --keep DIR to keep it)"))
        print("reproduce: .venv/bin/python benchmarks/learning.py " +
              " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
