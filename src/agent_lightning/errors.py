"""User-facing errors.

A `UserError` is a mistake the user can fix (bad config key, missing file, unknown reward).
The CLI prints its message as one line and exits with code 2, never with a traceback.
Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake the user can fix; the message names the culprit and the fix, on one line."""

    exit_code = 2


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return ' Did you mean X?' for the closest candidates, or '' when none is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"
