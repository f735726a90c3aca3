"""`structure`: reward for the reason -> act -> answer order of an agent episode.

The completion becomes one sequence of tagged segments: each assistant turn's text through the output segmenter
(`chat.segmenter.segment`: THOUGHT, TEXT, TOOLCALL, TOOLRESPONSE), followed by one TOOLCALL per call TRL parsed
out of that turn (`tool_calls`: TRL keeps a turn's text apart from its calls, so the text is taken to come first),
and one TOOLRESPONSE per tool result message. Rubric, 1/3 each:
  reason  a THOUGHT or TEXT segment of at least `min_reasoning_words` words before the first TOOLCALL;
  act     at least one TOOLCALL (well-formed or not; `tool_call_format` judges the format);
  answer  a non-blank TEXT segment after the last TOOLCALL and the last TOOLRESPONSE (with no call: any TEXT).
So 0, 1/3, 2/3 or 1: a direct answer without a call = 1/3; a call then an answer = 2/3; reasoning, a call and an
answer = 1. What the reasoning or the answer says is not judged.
Range [0, 1]. None (not applicable) for a single-turn environment (no tools); without an environment the
completion is scored as it is.

kwargs:
  min_reasoning_words (int, default 1): the words (runs of letters and digits) reasoning needs to count.
"""

import re

from agent_lightning import reward
from agent_lightning.chat.segmenter import TEXT, THOUGHT, TOOLCALL, TOOLRESPONSE, segment
from agent_lightning.rewards import _completion as _c


WORD = re.compile(r"\w+")


def tagged(completion) -> list[tuple[str, str]]:
    """(kind, text) of every segment of the completion, in order (see module docstring)."""
    out: list[tuple[str, str]] = []
    for message in _c.messages(completion):
        if message.role == "tool":
            out.append((TOOLRESPONSE, message.content))
            continue
        out.extend((seg.kind, seg.text) for seg in segment(message.content))
        out.extend((TOOLCALL, "") for _ in message.tool_calls)
    return out


def score(segments: list[tuple[str, str]], min_reasoning_words: int = 1) -> float:
    calls = [i for i, (kind, _) in enumerate(segments) if kind == TOOLCALL]
    reason = bool(calls) and any(kind in (THOUGHT, TEXT) and len(WORD.findall(text)) >= min_reasoning_words
                                 for kind, text in segments[:calls[0]])
    last = max((i for i, (kind, _) in enumerate(segments) if kind in (TOOLCALL, TOOLRESPONSE)), default=-1)
    answer = any(kind == TEXT and text.strip() for kind, text in segments[last + 1:])
    return (reason + bool(calls) + answer) / 3


@reward("structure", weight=0.1)
def structure(completions, environments=None, min_reasoning_words: int = 1, **kwargs) -> list[float | None]:
    """1/3 each for reasoning before the first tool call, making a call, and a final answer after the last result."""
    scores: list[float | None] = []
    for completion, env in zip(completions, _c.environments_for(environments, len(completions))):
        if env is not None and not _c.tool_names(env):
            scores.append(None)
        else:
            scores.append(score(tagged(completion), int(min_reasoning_words)))
    return scores
