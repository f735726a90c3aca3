"""`answer_match`: whether the episode's final answer equals the expected one, exactly or as a number.

Compares `env.outcome.answer` (what the environment read as the answer) with `env.outcome.expected`: both
stripped; equal as text (case-insensitive unless `case_sensitive`), or, when both read as numbers ("1,234",
"12.0", "-3e2"), equal within `rel_tol` (and `abs_tol`). Unlike `task_success` this looks at the answer only
(a filesystem question is matched even when a file was left wrong) and accepts 12.0 for 12.
Range {0.0, 1.0}. None (not applicable) when the environment has no expected answer for that task (file tasks
that ask no question, code tasks) or there is no environment.

kwargs:
  rel_tol (float, default 1e-6): relative tolerance of the numeric comparison.
  abs_tol (float, default 1e-9): absolute tolerance of the numeric comparison (for answers near 0).
  case_sensitive (bool, default False): compare text answers case-sensitively.
"""

import math

from agent_lightning import reward
from agent_lightning.rewards import _completion as _c



def as_number(text: str) -> float | None:
    """The text as a finite number ("1,234", "12.0", "-3e2"), else None."""
    try:
        value = float(text.replace(",", "").replace("_", "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def matches(answer, expected, rel_tol: float = 1e-6, abs_tol: float = 1e-9, case_sensitive: bool = False) -> bool:
    if answer is None:
        return False
    a, e = str(answer).strip(), str(expected).strip()
    if a == e or (not case_sensitive and a.casefold() == e.casefold()):
        return True
    x, y = as_number(a), as_number(e)
    return x is not None and y is not None and math.isclose(x, y, rel_tol=rel_tol, abs_tol=abs_tol)


@reward("answer_match", weight=1.0)
def answer_match(completions, environments=None, rel_tol: float = 1e-6, abs_tol: float = 1e-9,
                 case_sensitive: bool = False, **kwargs) -> list[float | None]:
    """1 if the final answer equals the expected answer (as text, or as a number within rel_tol), else 0."""
    scores: list[float | None] = []
    for completion, env in zip(completions, _c.environments_for(environments, len(completions))):
        outcome = _c.outcome_of(env, completion)
        if outcome is None or outcome.expected is None:
            scores.append(None)
        else:
            scores.append(float(matches(outcome.answer, outcome.expected, rel_tol, abs_tol, case_sensitive)))
    return scores
