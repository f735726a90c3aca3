"""`tool_call_format`: the fraction of the assistant's tool-calling turns whose calls are all well-formed.

A turn's calls are those TRL parsed (`tool_calls`) plus any call the output segmenter
(`chat.segmenter.parse_response_text`) still finds in its text (a plain-string completion, or a turn a stricter
parser left as text). A call is well-formed when it names one of the environment's tools and its arguments are a
JSON object without the parser's `__malformed__` mark (unclosed JSON it could not repair, a missing name, an
unknown tool, ...). Whether the arguments suit the tool is not judged here: a wrong argument is a tool error
(see `tool_error_penalty`). Turns without any call (a final answer) are not counted.

Range [0, 1]: well-formed calling turns / calling turns; 2 of 3 clean turns = 0.667.
None (not applicable) for a single-turn environment (no tools) or without an environment.

kwargs:
  require_call (bool, default True): an episode of a tool environment with no call at all scores 0.0 (it never
      practised the format); False scores it None.
"""


from agent_lightning import reward
from agent_lightning.chat.segmenter import parse_response_text
from agent_lightning.rewards import _completion as _c



def turn_ok(turn, names: list[str]) -> bool | None:
    """True/False for a turn with calls (all well-formed or not), None for a turn without any."""
    parsed = parse_response_text(turn.content, names).calls if turn.content else []
    if not parsed and not turn.tool_calls:
        return None
    return all(call.error is None for call in parsed) and all(_c.call_error(c, names) is None for c in turn.tool_calls)


@reward("tool_call_format", weight=0.2)
def tool_call_format(completions, environments=None, require_call: bool = True, **kwargs) -> list[float | None]:
    """Fraction of tool-calling turns whose calls parse and name a known tool (0 if no call was made)."""
    scores: list[float | None] = []
    for completion, env in zip(completions, _c.environments_for(environments, len(completions))):
        names = _c.tool_names(env)
        if not names:
            scores.append(None)
            continue
        verdicts = [v for v in (turn_ok(t, names) for t in _c.assistant_turns(completion)) if v is not None]
        if not verdicts:
            scores.append(0.0 if require_call else None)
        else:
            scores.append(sum(verdicts) / len(verdicts))
    return scores
