"""Metrics plots: reward over steps from a run's metrics.jsonl.

    python -c "from agent_lightning.observe.plots import plot_rewards; plot_rewards('runs/X')"
"""

from __future__ import annotations

from pathlib import Path

from agent_lightning.observe.traces import read_jsonl


def plot_rewards(run_dir: str | Path, out_name: str = "reward.png") -> Path | None:
    """Reward mean ± std per step, each reward's mean, and the fraction of zero-signal groups. None if no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "reward" in r]
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    mean = [r["reward"] for r in rows]
    std = [r.get("reward_std", 0.0) for r in rows]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=[3, 1])
    ax.plot(steps, mean, color="C0", lw=1, alpha=0.6, label="total reward (mean per step)")
    window = max(1, min(10, len(mean) // 5))
    if window > 1:
        windows = [mean[max(0, i - window + 1): i + 1] for i in range(len(mean))]
        smooth = [sum(w) / len(w) for w in windows]
        ax.plot(steps, smooth, color="C0", lw=2.5, label=f"moving average ({window} steps)")
    ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                    color="C0", alpha=0.15, label="± std")
    names = sorted({k[len("rewards/"):-len("/mean")] for r in rows for k in r if k.startswith("rewards/")
                    and k.endswith("/mean")})
    if len(names) > 1:
        for i, name in enumerate(names, start=1):
            ax.plot(steps, [r.get(f"rewards/{name}/mean") for r in rows], lw=1, color=f"C{i}", label=name)
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"{run_dir.name}: reward over steps")
    ax2.plot(steps, [r.get("frac_reward_zero_std", 0.0) for r in rows], color="C3")
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_ylabel("groups with\nno signal")
    ax2.set_xlabel("step")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    out = run_dir / out_name
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
