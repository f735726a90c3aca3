"""`overlong_penalty`: DAPO's soft overlong punishment on the completion's length in tokens.

With L = len(completion_ids) (in a tool episode TRL's ids include the tool results, which also count against
`grpo.max_completion_length`):
  0.0                                    for L <= max_length - cache
  (max_length - cache - L) / cache       for max_length - cache < L <= max_length (linear from 0 down to -1)
  -1.0                                   for L > max_length
Range [-1, 0]. None (not applicable) when the caller passed no `completion_ids`.
Set `max_length` to `grpo.max_completion_length`: a completion cut off at the limit then scores -1, and the
`cache` tokens before it are the soft zone that teaches the policy to finish in time (DAPO, Yu et al. 2025).

kwargs:
  max_length (int, default 256): the token budget; match grpo.max_completion_length.
  cache (int, default 64): the width of the soft zone before max_length (0 < cache <= max_length).
"""

from agent_lightning import reward


@reward("overlong_penalty", weight=1.0)
def overlong_penalty(completions, completion_ids=None, max_length: int = 256, cache: int = 64,
                     **kwargs) -> list[float | None]:
    """DAPO soft overlong penalty: 0 up to max_length - cache tokens, then linear down to -1 at max_length."""
    if not 0 < cache <= max_length:
        raise ValueError(f"overlong_penalty: need 0 < cache <= max_length, got cache={cache}, max_length={max_length}")
    if not isinstance(completion_ids, (list, tuple)) or len(completion_ids) != len(completions):
        return [None] * len(completions)
    free = max_length - cache
    scores: list[float | None] = []
    for ids in completion_ids:
        try:
            length = len(ids)
        except TypeError:
            scores.append(None)
            continue
        if length <= free:
            scores.append(0.0)
        elif length <= max_length:
            scores.append((free - length) / cache)
        else:
            scores.append(-1.0)
    return scores
