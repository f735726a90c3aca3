"""`repetition_penalty`: minus the fraction of repeated word n-grams in what the assistant wrote.

The text is every assistant turn's visible text and thoughts (tool calls and tool results are left out: writing
the same file content twice is not babbling). Words are lower-cased runs of letters and digits; the n-grams of
every text or thought segment are pooled (none crosses a segment or turn boundary, but a sentence said again in a
later turn counts as repeated), and the score is -(1 - distinct / total): "a b c a b c" with n=3 has 4 trigrams,
3 distinct -> -0.25. Fewer than n words: 0.0.
Range [-1, 0] (a text that is one word repeated tends to -1). Applies to every completion (never None).

kwargs:
  n (int, default 3): the n-gram length (>= 1).
"""

import re
from collections import Counter

from agent_lightning import reward
from agent_lightning.chat.segmenter import TEXT, THOUGHT, segment
from agent_lightning.rewards import _completion as _c


WORD = re.compile(r"\w+")


def repeated_fraction(texts: list[str], n: int = 3) -> float:
    """1 - distinct/total over the word n-grams of each text (0.0 when there is none)."""
    grams: Counter = Counter()
    for text in texts:
        words = WORD.findall(text.lower())
        grams.update(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    total = sum(grams.values())
    return 1.0 - len(grams) / total if total else 0.0


@reward("repetition_penalty", weight=0.5)
def repetition_penalty(completions, n: int = 3, **kwargs) -> list[float]:
    """Minus the fraction of repeated word n-grams (n=3) in the assistant's text: loops and babble cost up to 1."""
    if int(n) < 1:
        raise ValueError(f"repetition_penalty: n must be >= 1, got {n}")
    scores = []
    for completion in completions:
        texts = [seg.text for turn in _c.assistant_turns(completion) for seg in segment(turn.content)
                 if seg.kind in (TEXT, THOUGHT)]
        scores.append(0.0 - repeated_fraction(texts, int(n)))
    return scores
