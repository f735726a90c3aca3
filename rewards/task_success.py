"""`task_success`: 1.0 when the environment verified the episode as a success, else 0.0.

Range {0.0, 1.0}. None (not applicable) only when there is no environment to read (a reward passed to TRL
without `environment_factory`, or a suite without an environment). No kwargs.

Same verdict as `exact_answer`, which is the historical name kept for old configs; `exact_answer` scores a missing
environment as an error, `task_success` as None. Prefer `task_success` in new configs.
"""


from agent_lightning import reward
from agent_lightning.rewards import _completion as _c



@reward("task_success", weight=1.0)
def task_success(completions, environments=None, **kwargs) -> list[float | None]:
    """1 if the environment verified the episode as a success (right answer, right files, all tests), else 0."""
    scores: list[float | None] = []
    for completion, env in zip(completions, _c.environments_for(environments, len(completions))):
        outcome = _c.outcome_of(env, completion)
        scores.append(None if outcome is None else float(bool(outcome.success)))
    return scores
