"""`tool_error_penalty`: a penalty per tool call that failed (`env.outcome.tool_errors`).

A failed call is anything the environment counted as a tool error: a malformed call, an unknown tool, wrong
arguments, a sandbox refusal (a path outside the workspace, a quota), a tool that raised.

Range [-max_penalty, 0]: `-penalty * tool_errors`, clipped at `-max_penalty`; 0.0 for an episode without errors.
None (not applicable) for a single-turn environment (no tools) or without an environment.

kwargs:
  penalty (float, default 0.25): the penalty per failed call (>= 0).
  max_penalty (float, default 1.0): the most an episode loses (>= 0).
"""


from agent_lightning import reward
from agent_lightning.rewards import _completion as _c



@reward("tool_error_penalty", weight=1.0)
def tool_error_penalty(completions, environments=None, penalty: float = 0.25, max_penalty: float = 1.0,
                       **kwargs) -> list[float | None]:
    """Minus `penalty` per failed tool call (malformed, unknown tool, bad arguments, refused), down to -max_penalty."""
    if penalty < 0 or max_penalty < 0:
        raise ValueError(f"tool_error_penalty: penalty ({penalty}) and max_penalty ({max_penalty}) must be >= 0")
    scores: list[float | None] = []
    for completion, env in zip(completions, _c.environments_for(environments, len(completions))):
        outcome = _c.outcome_of(env, completion) if _c.tool_names(env) else None
        if outcome is None:
            scores.append(None)
        else:
            scores.append(0.0 - min(float(max_penalty), float(penalty) * int(outcome.tool_errors)))
    return scores
