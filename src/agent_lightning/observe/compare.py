"""Before/after view of an `sft+grpo` run: held-out success of the base policy, after SFT and after GRPO.

    rows = stage_rows(base_report, {"sft": sft_summary, "grpo": grpo_summary})
    print(format_table(rows)); plot_success(rows, run_dir / "success.png")

`base_report` is `evaluate()` of the policy the run starts from (written by the pipeline to RUN_DIR/base_eval.json
before the first stage); each stage's summary carries its own end-of-stage `eval` report and wall time. The table
and the chart show the success rate on the same test tasks (`eval.limit`), with each stage's wall time and the
tool-error rate, and each row's paired difference from the row before it on the tasks both were evaluated on,
with its bootstrap 95% interval and the number of tasks (stats.paired_difference): `vs previous`.
Not covered: variance across training seeds (one run is one draw of the training randomness).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

def stage_rows(base: dict[str, Any] | None, stages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per evaluated policy: name, success_rate, tasks, tool_error_rate, seconds (stage wall time), and
    `vs_previous`: the paired difference from the row before (None for the first row)."""
    from agent_lightning.evaluate import task_successes
    from agent_lightning.stats import paired_difference

    reports = [("base", base, base.get("seconds") if base else None)] if base else []
    names = list(stages)
    reports += [("after " + "+".join(n.upper() for n in names[:i + 1]), summary["eval"], summary.get("wall_seconds"))
                for i, (name, summary) in enumerate(stages.items()) if summary.get("eval")]
    rows = []
    for i, (label, report, seconds) in enumerate(reports):
        before = reports[i - 1][1] if i else None
        rows.append({"policy": label, "success_rate": report["success_rate"], "tasks": report["tasks"],
                     "tool_error_rate": report["tool_error_rate"], "seconds": seconds,
                     "vs_previous": paired_difference(task_successes(before), task_successes(report))
                     if before and before.get("per_task") and report.get("per_task") else None})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    from agent_lightning.stats import format_difference

    lines = [f"{'policy':<16} {'test success':>12} {'tasks':>6} {'tool errors':>11} {'wall time':>10}   "
             "vs previous (paired, 95% interval)"]
    for r in rows:
        wall = f"{r['seconds'] / 60:.1f} min" if r.get("seconds") is not None else "-"
        paired = format_difference(r["vs_previous"]) if r.get("vs_previous") else "-"
        lines.append(f"{r['policy']:<16} {r['success_rate']:>12.1%} {r['tasks']:>6} {r['tool_error_rate']:>11.1%} "
                     f"{wall:>10}   {paired}")
    return "\n".join(lines)


def plot_success(rows: list[dict[str, Any]], out: Path, title: str = "") -> Path | None:
    """Bar chart of held-out success per policy, labelled with the rate and the stage's wall time."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    names = [r["policy"] for r in rows]
    rates = [100 * r["success_rate"] for r in rows]
    bars = ax.bar(names, rates, color=[f"C{i}" for i in range(len(rows))])
    for bar, r in zip(bars, rows):
        wall = f"\n{r['seconds'] / 60:.1f} min" if r.get("seconds") is not None else ""
        ax.annotate(f"{100 * r['success_rate']:.1f}%{wall}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9)
    ax.set_ylim(0, max(100, max(rates) + 15))
    ax.set_ylabel(f"held-out test success (%), {rows[0]['tasks']} tasks")
    ax.set_title(title or "success before and after training")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
