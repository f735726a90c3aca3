"""`partial_progress`: the share of the task's own checks the episode passed (`env.outcome.progress`).

Range [0, 1]. `filesystem` credits only the change the task asks for (files created or changed, files removed,
the answer), and counts each file it had to leave alone but broke as one more failed check: e.g. 2 of 3 asked-for
moves done = 0.667, and an episode that does nothing scores 0 (counting the untouched files, it scored ~0.8,
and GRPO learned to make fewer calls). For `code`, the fraction of unit tests passed; an environment without
per-check results gives its success as 0 or 1.
None (not applicable) when there is no environment, and with `only_on_failure` for successful episodes.

kwargs:
  only_on_failure (bool, default False): score only failed episodes, so that with `task_success` in the same
      config a success is not counted twice (a success then gets None; a failure its progress, which is < 1).
  graded (bool, default False): each failed check earns its partial credit instead of 0
      (`env.outcome.graded_progress`; `filesystem`: a wrong file earns the share of its expected words it has in
      order), so a group of episodes that all failed differs by how close each came, and carries signal. A single
      check's tier 1-2 file task otherwise scores exactly like `task_success`.
"""

from agent_lightning import reward
from agent_lightning.rewards import _completion as _c


@reward("partial_progress", weight=0.5)
def partial_progress(completions, environments=None, only_on_failure: bool = False, graded: bool = False,
                     **kwargs) -> list[float | None]:
    """Fraction of the verifier's checks passed (partial credit for almost-right episodes)."""
    scores: list[float | None] = []
    for completion, env in zip(completions, _c.environments_for(environments, len(completions))):
        outcome = _c.outcome_of(env, completion)
        if outcome is None or (only_on_failure and outcome.success):
            scores.append(None)
        else:
            scores.append(float(outcome.graded_progress if graded else outcome.progress))
    return scores
