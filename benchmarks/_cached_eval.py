"""Shared by the benchmarks that compare `eval --json` reports: run the command line, cache a report per point.

    stdout = run_cli("memory", "sop", "list", "--json")          # main_agent_lightning.py ARGS; stdout
    report = cached_eval(out_json, "--split", "dev", "--adapter", DIR)   # `eval ... --json`, read back if cached

A failing command ends the benchmark with its exit code and the last line it printed on stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> str:
    """Run main_agent_lightning.py with `args` (printed first); its stdout."""
    command = [sys.executable, str(ROOT / "main_agent_lightning.py"), *args]
    print("  $ " + " ".join(command[1:]), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return done.stdout


def cached_eval(out: Path, *args: str) -> dict[str, Any]:
    """`eval ARGS --json`, written to `out`; read from `out` when it exists (a rerun resumes)."""
    if out.is_file():
        return json.loads(out.read_text())
    stdout = run_cli("eval", *args, "--json")
    report = json.loads(stdout[stdout.index("{"):])
    out.write_text(json.dumps(report, indent=1) + "\n")
    return report
