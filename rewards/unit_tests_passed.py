"""`unit_tests_passed`: the fraction of the problem's unit tests the episode's solution passed (`code` env).

The `code` environment scores every test statement of a problem on its own (checks named "test 1", "test 2",
...); this is the fraction passed, i.e. `env.outcome.progress` for such checks: 5 of 7 tests = 0.714, no
solution found = 0.0. Any environment whose verifier reports its checks under those names is read the same way.
Range [0, 1]. None (not applicable) for other environments (checks not named "test N"), or without one.
No kwargs.
"""

import re

from agent_lightning import reward
from agent_lightning.rewards import _completion as _c


TEST_CHECK = re.compile(r"test \d+")


@reward("unit_tests_passed", weight=1.0)
def unit_tests_passed(completions, environments=None, **kwargs) -> list[float | None]:
    """Fraction of the problem's unit tests passed (code environment; None elsewhere)."""
    scores: list[float | None] = []
    for completion, env in zip(completions, _c.environments_for(environments, len(completions))):
        outcome = _c.outcome_of(env, completion)
        checks = getattr(outcome, "checks", None) or {}
        if not checks or not all(isinstance(k, str) and TEST_CHECK.fullmatch(k) for k in checks):
            scores.append(None)
        else:
            scores.append(sum(bool(v) for v in checks.values()) / len(checks))
    return scores
