"""`efficiency`: how few tool calls a successful episode needed, against the task's reference solver.

Reads the task's `solution` column (the reference trajectory, JSON {"calls": [...], "final": ...}, which every
shipped tool environment stores) and `env.outcome.tool_calls` (every call the episode made, failed ones included).
Counting the final answer as one more step, with r the reference's calls and u the episode's:
  1.0 when the episode succeeded with u <= r; (r + 1) / (u + 1) when it succeeded with more (one extra call on
  a 2-call reference: 3/4; twice the calls: (r + 1) / (2r + 1), about 1/2); 0.0 when it did not succeed.
Range [0, 1]. None (not applicable) when the dataset has no `solution` column, a row's solution is not such
JSON, or there is no environment.
No kwargs.
"""

import json

from agent_lightning import reward
from agent_lightning.rewards import _completion as _c



def reference_calls(solution) -> int | None:
    """The number of calls of a reference trajectory (a JSON string or an already-decoded dict), else None."""
    if isinstance(solution, (str, bytes)):
        try:
            solution = json.loads(solution)
        except ValueError:
            return None
    calls = solution.get("calls") if isinstance(solution, dict) else None
    return len(calls) if isinstance(calls, list) else None


@reward("efficiency", weight=0.2)
def efficiency(completions, environments=None, solution=None, **kwargs) -> list[float | None]:
    """1 for a success in no more tool calls than the reference solver, less for more calls, 0 for a failure."""
    n = len(completions)
    scores: list[float | None] = []
    for completion, env, ref in zip(completions, _c.environments_for(environments, n), _c.column(solution, n)):
        ref_calls = reference_calls(ref)
        outcome = _c.outcome_of(env, completion) if ref_calls is not None else None
        if outcome is None:
            scores.append(None)
        elif not outcome.success:
            scores.append(0.0)
        else:
            used = int(outcome.tool_calls)
            scores.append(1.0 if used <= ref_calls else (ref_calls + 1) / (used + 1))
    return scores
