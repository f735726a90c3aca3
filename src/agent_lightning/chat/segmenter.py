"""Output segmenter: split a decoded assistant turn into THOUGHT / TOOLCALL / TEXT / TOOLRESPONSE segments.

Policies under RL write messy output. `segment(text)` turns any string into ordered `Segment`s, and
`parse_response_text(text, tool_names)` adds the visible text, the calls and the thoughts. A call that cannot
be executed still comes back, as a `ToolCall` whose `error` is one line for the policy: what was wrong and
what to write instead. Neither function raises, and a 50 KB output parses in milliseconds (benchmarks/segmenter.py).

Recognised (the two chat formats this project trains, plus what small models fall back to):
- ChatML / Qwen: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (several in a row; unclosed, it
  ends where its JSON ends), `<tool_response>...</tool_response>`, `<think>...</think>` (unclosed: a thought
  to the end; a `</think>` with no opener makes everything before it a thought, as when the prompt opened
  it). Special tokens (`<|im_end|>`, `<|im_start|>assistant`, any `<|...|>`, `<s>`, `</s>`) are removed
  first, wherever they are; text after an end-of-turn token is kept.
- Mistral v0.3: `[TOOL_CALLS][{...}, ...]`, `[TOOL_CALLS]{...}`, `[TOOL_CALLS]name[ARGS]{...}` (optionally
  `[CALL_ID]id` before `[ARGS]`), `[TOOL_RESULTS]...[/TOOL_RESULTS]`, `[THINK]...[/THINK]`.
- A code fence whose whole body is a call object with "name" and "arguments" (or a list of them), and such
  an object or list starting a line of text. Other fences and other JSON stay TEXT.
- "parameters" is an alias of "arguments"; arguments sent as a JSON string are decoded; OpenAI's
  `{"type": "function", "function": {"name": ..., "arguments": ...}}` is unwrapped.
- JSON that `json` rejects is repaired once, string-aware: trailing commas, 'single quotes' (read with
  `ast.literal_eval`), True/False/None, unquoted keys, smart quotes, brackets left open at the end of the
  text. A value cut off inside a string is an error, not repaired, so a truncated file is never written.

Not covered: XML-parameter calls (`<function=...>`), Python-style calls (`tool_code`, `<|python_tag|>`),
unescaped double quotes inside JSON strings, tags written literally inside arguments (a `</tool_call>` in a
call's content ends it early), a bare (unfenced, untagged) call whose strings contain a ``` fence.

Tests: `.venv/bin/pytest -q tests/chat/test_segmenter.py` (corpus: tests/assets/messy_outputs.jsonl).

Longer than most modules (~430 lines) on purpose: one left-to-right scanner whose cases (tags, fences, bare JSON,
repair) share its cursor and must agree on where a segment ends; tests/chat/test_segmenter.py covers it as one.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

THOUGHT, TOOLCALL, TEXT, TOOLRESPONSE = "THOUGHT", "TOOLCALL", "TEXT", "TOOLRESPONSE"


@dataclass
class ToolCall:
    name: str | None  # tool name, None if it could not be recovered
    arguments: dict  # parsed arguments ({} when malformed)
    error: str | None = None  # None if well-formed, else a one-line message for the policy
    raw: str = ""  # the call's text as it appeared (for a list of calls: the whole list)


@dataclass
class Segment:
    kind: str  # THOUGHT | TOOLCALL | TEXT | TOOLRESPONSE
    text: str  # raw text of the segment, without the surrounding tags
    call: ToolCall | None = None  # set for TOOLCALL segments


@dataclass
class ParsedResponse:
    content: str  # the visible text: TEXT segments joined (thoughts and calls removed), stripped
    calls: list[ToolCall]  # every TOOLCALL in order, well-formed and malformed
    thoughts: list[str]  # THOUGHT texts, stripped
    segments: list[Segment]


_SPECIAL = re.compile(r"<\|im_start\|>[a-z_]*\n?|<\|[a-z_]+\|>|</?s>")
_MARK = re.compile(
    r"<think>|</think>|<tool_call>|</tool_call>|<tool_response>|</tool_response>"
    r"|\[THINK\]|\[/THINK\]|\[TOOL_CALLS\]|\[TOOL_RESULTS\]|\[/TOOL_RESULTS\]|```"
)
_OPENER = re.compile(r"<think>|<tool_call>|<tool_response>|\[THINK\]|\[TOOL_CALLS\]|\[TOOL_RESULTS\]")
_BLOCKS = {
    "<think>": ("</think>", THOUGHT),
    "[THINK]": ("[/THINK]", THOUGHT),
    "<tool_response>": ("</tool_response>", TOOLRESPONSE),
    "[TOOL_RESULTS]": ("[/TOOL_RESULTS]", TOOLRESPONSE),
}
_FENCE_HEAD = re.compile(r"([\w+.-]*)[ \t]*\n?")
_FENCE_CALL_LABELS = {"tool_call", "tool_calls", "function_call"}  # such a fence is a call even if malformed
# Possessive quantifiers (*+, ++) keep the regexes linear on long runs of spaces or letters.
_MISTRAL_NAMED = re.compile(r"\s*+([\w.\-]++)\s*+(?:\[CALL_ID\]\s*+[\w-]*+\s*+)?\[ARGS\]")
# A line that starts like a call object or a list of them (checked further by _read_calls).
_BARE = re.compile(
    r"^[ \t]*+(?=\[?[ \t]*+\n?[ \t]*+\{[ \t]*+\n?[ \t]*+[\"'](?:name|arguments|parameters|function|type)[\"'])", re.M
)
_MAX_BARE_MISSES = 16  # candidate lines that are not calls, per text, before the rest is left as TEXT unread
_NAME_KEY = re.compile(r"[\"']name[\"']\s*+:\s*+[\"']([^\"'\n]{1,100})[\"']")
_ARGS_KEY = re.compile(r"[\"'](?:arguments|parameters)[\"']\s*+:")
_WS = re.compile(r"\s*")
_SEP = re.compile(r"[\s,]*")
# JSON-ish tokens for the repair pass: whitespace, "string", 'string', “smart string”, punctuation, number, word.
_TOKEN = re.compile(
    r"""\s++|"[^"\\]*+(?:\\.[^"\\]*+)*+"|'[^'\\]*+(?:\\.[^'\\]*+)*+'|[“”„][^“”"\\]*+(?:\\.[^“”"\\]*+)*+[“”"]"""
    r"""|[{}\[\]:,]|-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[A-Za-z_]\w*""",
    re.S,
)
_KEY_COLON = re.compile(r"\s*+:")
_WORDS = {"true": "true", "false": "false", "null": "null", "True": "true", "False": "false", "None": "null"}
_DECODER = json.JSONDecoder(strict=False)  # strict=False: literal newlines inside strings are fine
_HINTS = {  # the expected format, per place the call was found
    "chatml": '<tool_call>{{"name": "{}", "arguments": {{...}}}}</tool_call>',
    "mistral": '[TOOL_CALLS][{{"name": "{}", "arguments": {{...}}}}]',
    "mistral_args": "[TOOL_CALLS]{}[ARGS]{{...}}",
    "json": '{{"name": "{}", "arguments": {{...}}}}',
}


def segment(text: str) -> list[Segment]:
    """Split a decoded assistant turn into segments, in order. Never raises; whitespace-only TEXT is dropped."""
    try:
        return _segment(text)
    except Exception:  # a parser bug must not stop a training run; the tests call _segment unguarded
        return [Segment(TEXT, text)] if isinstance(text, str) and text.strip() else []


def parse_response_text(text: str, tool_names: Iterable[str] | None = None) -> ParsedResponse:
    """Segment `text`; with `tool_names`, a well-formed call to any other tool gets an "unknown tool" error."""
    segments = segment(text)
    calls = [seg.call for seg in segments if seg.call is not None]
    if tool_names is not None:
        names = [str(n) for n in dict.fromkeys(tool_names)]
        for call in calls:
            if call.error is None and call.name not in names:
                close = difflib.get_close_matches(call.name[:100], names, n=1)
                hint = f" did you mean '{close[0]}'?" if close else ""
                call.error = f"unknown tool '{_short(call.name)}';{hint} available tools: {', '.join(names) or '(none)'}"
    return ParsedResponse(
        content="".join(seg.text for seg in segments if seg.kind == TEXT).strip(),
        calls=calls,
        thoughts=[seg.text.strip() for seg in segments if seg.kind == THOUGHT],
        segments=segments,
    )


# --- segmentation ---------------------------------------------------------------------------------------


class _Out:
    """Collects segments; TEXT is gathered in pieces and scanned for bare calls when a non-TEXT segment comes."""

    def __init__(self):
        self.segs: list[Segment] = []
        self.pending: list[tuple[str, bool]] = []  # (text, scan it for bare calls?)

    def text(self, t: str, scan: bool = True):
        if t:
            self.pending.append((t, scan))

    def add(self, seg: Segment):
        self.flush()
        self.segs.append(seg)

    def calls(self, calls: list[ToolCall]):
        self.flush()
        self.segs.extend(Segment(TOOLCALL, c.raw, c) for c in calls)

    def flush(self):
        buf: list[str] = []
        for t, scan in self.pending:
            starts = [m.end() for m in _BARE.finditer(t)] if scan else []
            last = misses = 0
            for k, p in enumerate(starts):
                if p < last or misses >= _MAX_BARE_MISSES:  # inside a call already read, or a degenerate text
                    continue
                # Repairs stop at the next candidate line, so broken lines do not each repair the rest of the text.
                got = _read_calls(t, p, "json", True, starts[k + 1] if k + 1 < len(starts) else len(t))
                if got is None:
                    misses += 1
                    continue
                buf.append(t[last:p])
                self.segs.append(Segment(TEXT, "".join(buf)))
                buf = []
                self.segs.extend(Segment(TOOLCALL, c.raw, c) for c in got[0])
                last = got[1]
            buf.append(t[last:])
        self.pending.clear()
        if buf:
            self.segs.append(Segment(TEXT, "".join(buf)))


def _segment(s: str) -> list[Segment]:
    s = _SPECIAL.sub("", s)
    out = _Out()
    pos = 0
    while (m := _MARK.search(s, pos)) is not None:
        out.text(s[pos : m.start()])
        tag, start, pos = m.group(), m.start(), m.end()
        if tag in _BLOCKS:
            closer, kind = _BLOCKS[tag]
            end = s.find(closer, pos)
            end = len(s) if end < 0 else end
            out.add(Segment(kind, s[pos:end]))
            pos = min(len(s), end + len(closer))
        elif tag in ("<tool_call>", "[TOOL_CALLS]"):
            nxt = _OPENER.search(s, pos)  # an unclosed call ends at the next opening tag at the latest
            limit = nxt.start() if nxt else len(s)
            close = s.find("</tool_call>", pos, limit) if tag == "<tool_call>" else -1
            end = close if close >= 0 else limit
            _region_calls(out, s[pos:end], "chatml" if tag == "<tool_call>" else "mistral")
            pos = end + len("</tool_call>") if close >= 0 else end
        elif tag == "```":
            pos = _fence(out, s, start, pos)
        elif tag in ("</think>", "[/THINK]") and all(seg.kind == TEXT for seg in out.segs):
            out.segs, out.pending = [Segment(THOUGHT, s[:start])], []  # the prompt opened the thought
        # any other closing tag without its opener is dropped
    out.text(s[pos:])
    out.flush()
    return [seg for seg in out.segs if seg.kind not in (TEXT, THOUGHT) or seg.text.strip()]


def _region_calls(out: _Out, region: str, style: str):
    """The text after <tool_call> or [TOOL_CALLS]: one or more calls, then maybe TEXT."""
    named = _MISTRAL_NAMED.match(region) if style == "mistral" else None
    p = _WS.match(region, named.end() if named else 0).end()
    if named:
        name, style = named.group(1), "mistral_args"
        if region[p : p + 1] not in ("{", "["):
            return out.calls([_bad(region, "expected a JSON object after [ARGS]", style, name)])
        value, end, err = _load_at(region, p)
        if err is not None:
            return out.calls([_bad(region, f"invalid JSON ({err})", style, name)])
        out.calls([_to_call({"name": name, "arguments": value}, region[:end], style)])
    elif region[p : p + 1] in ("{", "["):
        calls, end = _read_calls(region, p, style, need_shape=False)
        out.calls(calls)
    else:
        problem = "expected a JSON object" if region.strip() else "empty tool call"
        return out.calls([_bad(region, problem, style)])
    if region[end:].strip():  # whitespace between a call and its closing tag is not text
        out.text(region[end:])


def _fence(out: _Out, s: str, start: int, pos: int) -> int:
    """A ``` fence at s[start:pos]: a call if its whole body is one; returns where the fence ends."""
    head = _FENCE_HEAD.match(s, pos)
    label, c0 = head.group(1).lower(), head.end()
    close = s.find("```", c0)
    c1, end = (close, close + 3) if close >= 0 else (len(s), len(s))
    body = s[c0:c1]
    p = _WS.match(body).end()
    if body[p : p + 1] in ("{", "["):
        got = _read_calls(body, p, "json", need_shape=label not in _FENCE_CALL_LABELS)
        if got is not None and not body[got[1] :].strip():
            out.calls(got[0])
            return end
    elif label in _FENCE_CALL_LABELS:
        out.calls([_bad(body, "expected a JSON object", "json")])
        return end
    elif _OPENER.search(body):  # tags inside a fence: parse them (the body holds no ```, so this recurses once)
        for seg in _segment(body):
            if seg.kind == TEXT:
                out.text(seg.text, scan=False)
            else:
                out.add(seg)
        return end
    out.text(s[start:end], scan=False)
    return end


def _read_calls(t: str, p: int, style: str, need_shape: bool, limit: int | None = None):
    """Calls in a row from t[p] ('{' or '['): ([calls], end). With need_shape, None unless they look like calls.

    Repairs and a malformed call's text stop at `limit` (default: the end of t).
    """
    limit = len(t) if limit is None else limit
    value, end, err = _load_at(t, p, limit)
    if err is not None:
        if need_shape and not (_NAME_KEY.search(t, p, limit) and _ARGS_KEY.search(t, p, limit)):
            return None
        return [_bad(t[p:limit], f"invalid JSON ({err})", style)], limit
    if need_shape and not _is_call(value):
        return None
    calls = _to_calls(value, t[p:end], style)
    while True:  # {...}\n{...} or {...}, {...}: more calls, as long as they are well-formed
        q = _SEP.match(t, end).end()
        if q >= limit or t[q] not in "{[":
            return calls, end
        value, q_end, err = _load_at(t, q, limit)
        if err is not None or not _is_call(value):
            return calls, end
        calls += _to_calls(value, t[q:q_end], style)
        end = q_end


def _is_call(v) -> bool:
    if isinstance(v, list):
        return bool(v) and all(isinstance(x, dict) and _is_call(x) for x in v)
    if not isinstance(v, dict):
        return False
    if isinstance(v.get("function"), dict):
        v = v["function"]
    return isinstance(v.get("name"), str) and ("arguments" in v or "parameters" in v)


def _to_calls(value, raw: str, style: str) -> list[ToolCall]:
    items = value if isinstance(value, list) else [value]
    if not items:
        return [_bad(raw, "empty list of tool calls", style)]
    return [_to_call(item, raw, style) for item in items]


def _to_call(obj, raw: str, style: str) -> ToolCall:
    if not isinstance(obj, dict):
        return _bad(raw, f"a tool call must be a JSON object, got {_kind(obj)}", style)
    if isinstance(obj.get("function"), dict):  # OpenAI style
        obj = {**obj, **obj["function"]}
    name = obj.get("name")
    name = name.strip() if isinstance(name, str) and name.strip() else None
    key = "arguments" if "arguments" in obj else "parameters" if "parameters" in obj else None
    args = obj.get(key) if key else None
    if isinstance(args, str):
        args = _args_from_string(args)
    if args is None and key:  # "arguments": null or ""
        args = {}
    problems = []
    if name is None:
        problems.append('missing "name"')
    if key is None:
        problems.append('missing "arguments"')
    elif not isinstance(args, dict):
        problems.append(f'"arguments" must be a JSON object, got {_kind(args)}')
    if problems:
        message = _message("malformed tool call: " + "; ".join(problems), name, style)
        return ToolCall(name, {}, message, raw)
    return ToolCall(name, args, None, raw)


def _args_from_string(text: str):
    """Arguments sent as a JSON string: the decoded object, None for "", else the string itself (an error)."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped[0] == "{":
        value, end, err = _load_at(stripped, 0)
        if err is None and not stripped[end:].strip():
            return value
    return text


def _bad(raw: str, problem: str, style: str, name: str | None = None) -> ToolCall:
    """A call that could not be read: the name if a regex finds one, no arguments, an error for the policy."""
    if name is None and (m := _NAME_KEY.search(raw)):
        name = m.group(1).strip() or None
    return ToolCall(name, {}, _message(f"malformed tool call: {problem}", name, style), raw)


def _message(problem: str, name: str | None, style: str) -> str:
    return f"{problem}; write {_HINTS[style].format(_short(name) or 'tool_name')}"


def _short(text) -> str:
    return " ".join(str(text).split())[:80] if text else ""


def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number"
    )


# --- lenient JSON -----------------------------------------------------------------------------------------


def _load_at(t: str, p: int, limit: int | None = None) -> tuple[object, int, str | None]:
    """Decode the JSON value at t[p] ('{' or '['): (value, end, None), or (None, limit, error) if repair fails too.

    Strict json first (it may read past `limit`), then _repair on t[p:limit].
    """
    limit = len(t) if limit is None else limit
    try:
        value, end = _DECODER.raw_decode(t, p)
        return value, end, None
    except json.JSONDecodeError as e:
        err = f"{e.msg if e.msg.endswith(' at') else e.msg + ' at'} char {e.pos - p}"
    except Exception:  # RecursionError on absurd nesting
        err = "nested too deeply"
    fixed, end = _repair(t, p, limit)
    if fixed is not None:
        try:
            return _DECODER.decode(fixed), end, None
        except Exception:
            pass
    return None, limit, err


def _repair(t: str, p: int, n: int) -> tuple[str | None, int]:
    """Re-emit the value at t[p] as JSON, fixing what models get wrong; (json text, end) or (None, where it broke).

    String-aware, one pass: drops trailing commas, turns 'single' and “smart” quoted strings into JSON strings,
    True/False/None into true/false/null, quotes bare keys, closes brackets left open at the end of the text.
    """
    out: list[str] = []
    stack: list[str] = []
    pos = p
    while pos < n:
        m = _TOKEN.match(t, pos, n)
        if m is None:  # unterminated string or a character JSON has no use for
            return None, pos
        tok, pos = m.group(), m.end()
        c = tok[0]
        if c in "{[":
            stack.append("}" if c == "{" else "]")
            out.append(c)
        elif c in "}]":
            if not stack:
                return None, pos
            if out[-1] == ",":
                out.pop()
            out.append(stack.pop())  # the closer that matches, whichever the model wrote
            if not stack:
                return "".join(out), pos
        elif c == "'":
            try:
                out.append(json.dumps(ast.literal_eval(tok)))
            except Exception:
                return None, pos
        elif c in "“”„":
            out.append(json.dumps(tok[1:-1]))
        elif c.isalpha() or c == "_":
            if _KEY_COLON.match(t, pos, n):
                out.append(json.dumps(tok))
            elif tok in _WORDS:
                out.append(_WORDS[tok])
            else:
                return None, pos
        elif not c.isspace():  # "string", number, ':' or ','
            out.append(tok)
    if out and out[-1] == ",":
        out.pop()
    if out and out[-1] == ":":
        out.append("null")
    return "".join(out + stack[::-1]), n
