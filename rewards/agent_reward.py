"""`agent_reward`: the reward your agent reported for its own rollout (the `agent` environment).

An agent run through the gateway (env.name=agent) reports a number by POSTing `{"reward": x}` to its rollout or
printing `{"reward": x}` as its last line of output; the environment keeps it as `env.outcome.reward`. This returns
that number as it is (any real number: partial credit, penalties). `task_success` only says whether it reached
`agent.success_reward`.
Range: whatever the agent reports. None (not applicable) when the episode has no reported reward: another
environment, an agent that reported nothing (then `task_success` / `answer_match` check its reply against the
task's `answer`), or a rollout that failed (`env.on_failure` scores those). No kwargs.
"""

from agent_lightning import reward
from agent_lightning.rewards import _completion as _c


@reward("agent_reward", weight=1.0)
def agent_reward(completions, environments=None, **kwargs) -> list[float | None]:
    """The reward the agent reported for its rollout (env.name=agent); None where it reported none."""
    scores: list[float | None] = []
    for completion, env in zip(completions, _c.environments_for(environments, len(completions))):
        outcome = _c.outcome_of(env, completion)
        scores.append(None if outcome is None or getattr(outcome, "reward", None) is None else float(outcome.reward))
    return scores
