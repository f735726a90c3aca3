"""The statistics every comparison of policies prints: pass@k and the paired difference with its 95% interval.

    pass_at_k(n=8, c=3, k=4)                       # unbiased estimator (Chen et al., 2021)
    paired_difference({"t1": 1, "t2": 0}, {"t1": 1, "t2": 1})
        # {"n": 2, "difference": 0.5, "low": ..., "high": ..., "better": 1, "worse": 0, "p_value": ...}

Two policies are compared on the SAME tasks: each task contributes its own difference (after - before, a success
is 1), so the spread of task difficulty cancels out and the interval is much narrower than two independent rates'
would be. The 95% interval is a percentile bootstrap over tasks (10,000 resamples, seeded: the same inputs give
the same interval); `p_value` is McNemar's exact two-sided test on the discordant tasks (those one policy solved
and the other did not), for 0/1 outcomes. With 100 tasks one task is one point: a difference whose interval
straddles 0 is not a result.

Not covered: multiple-comparison corrections, and clustering (tasks of one template are treated as independent).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples, drawn without replacement from n with c correct, is correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def paired_difference(before: Mapping[str, float], after: Mapping[str, float], resamples: int = 10_000,
                      seed: int = 0) -> dict[str, float | int | None]:
    """after - before on the tasks both have (task id -> success 0/1 or a score), with a bootstrap 95% interval.

    Returns n (shared tasks), difference (mean of after - before), low / high (the interval), better / worse
    (tasks where after beats before / loses to it) and p_value (McNemar exact, for 0/1 outcomes; else None)."""
    shared = sorted(set(before) & set(after), key=str)
    if not shared:
        return {"n": 0, "difference": None, "low": None, "high": None, "better": 0, "worse": 0, "p_value": None}
    diffs = [float(after[t]) - float(before[t]) for t in shared]
    n = len(diffs)
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    low, high = means[int(0.025 * resamples)], means[min(int(0.975 * resamples), resamples - 1)]
    better, worse = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    binary = all(float(v) in (0.0, 1.0) for t in shared for v in (before[t], after[t]))
    return {"n": n, "difference": sum(diffs) / n, "low": low, "high": high, "better": better, "worse": worse,
            "p_value": mcnemar_exact(better, worse) if binary else None}


def mcnemar_exact(better: int, worse: int) -> float:
    """Two-sided exact McNemar p-value: the discordant tasks split as a fair coin would under no difference."""
    m = better + worse
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, i) for i in range(min(better, worse) + 1)) / 2 ** m
    return min(1.0, 2 * tail)


def format_difference(result: Mapping[str, float | int | None]) -> str:
    """'+5.0 points [+1.0, +9.0] (n=100, 7 better, 2 worse)', or 'n/a' without shared tasks."""
    if not result.get("n"):
        return "n/a"
    d, low, high = (100 * float(result[k]) for k in ("difference", "low", "high"))
    return f"{d:+.1f} points [{low:+.1f}, {high:+.1f}] (n={result['n']}, {result['better']} better, {result['worse']} worse)"
