"""Shared by the benchmarks that compare `eval --json` reports: run the command line, cache a report per point.

    stdout = run_cli("memory", "sop", "list", "--json")          # main_agent_lightning.py ARGS; stdout
    report = cached_eval(out_json, "--split", "dev", "--adapter", DIR)   # `eval ... --json`, read back if cached
    tiers = tiers_of(report); cells = tier_cells(report, tiers)          # "82.4%" per tier, for a table row

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


def tiers_of(*reports: dict[str, Any]) -> list[int]:
    """The tiers the reports' tasks carry, sorted."""
    return sorted({t["tier"] for r in reports for t in r["per_task"] if t.get("tier") is not None})


def tier_cells(report: dict[str, Any], tiers: list[int]) -> list[str]:
    """The report's success rate per tier ("82.4%"), "" for a tier it has no task of."""
    by_tier = report.get("by_tier") or {}
    return [f"{100 * by_tier[str(t)]['success_rate']:.1f}%" if str(t) in by_tier else "" for t in tiers]
