"""`exact_answer`: 1.0 when the environment verified the episode as a success, else 0.0."""

from agent_lightning import reward


@reward("exact_answer", weight=1.0)
def exact_answer(environments, **kwargs) -> list[float]:
    """1 if the environment's verified outcome is a success (the exact answer / the right files), else 0."""
    return [1.0 if env.outcome.success else 0.0 for env in environments]
