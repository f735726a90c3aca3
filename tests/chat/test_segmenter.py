"""The output segmenter on a corpus of messy policy outputs, on random garbage and truncations, and its imports."""

from __future__ import annotations

import ast
import json
import random
import sys
from pathlib import Path

import pytest

from agent_lightning.chat import segmenter
from agent_lightning.chat.segmenter import ParsedResponse, Segment, ToolCall, parse_response_text, segment

CORPUS_PATH = Path(__file__).resolve().parents[1] / "assets" / "messy_outputs.jsonl"
CORPUS = [json.loads(line) for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
TOOLS = ["write_file", "read_file", "list_dir", "run_python", "search"]
KINDS = {"THOUGHT", "TOOLCALL", "TEXT", "TOOLRESPONSE"}


def check_invariants(segments: list[Segment]):
    """What every result must satisfy, whatever the input."""
    assert isinstance(segments, list)
    for seg in segments:
        assert seg.kind in KINDS and isinstance(seg.text, str)
        assert (seg.call is not None) == (seg.kind == "TOOLCALL")
        if seg.call is not None:
            call = seg.call
            assert isinstance(call.arguments, dict)
            assert call.name is None or isinstance(call.name, str)
            if call.error is None:
                assert call.name
            else:
                assert isinstance(call.error, str) and "\n" not in call.error


def test_corpus_is_large_and_ids_unique():
    assert len(CORPUS) >= 45
    assert len({e["id"] for e in CORPUS}) == len(CORPUS)
    assert max(len(e["text"]) for e in CORPUS) > 50_000


@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
def test_corpus_entry(entry):
    expect = entry["expect"]
    segments = segmenter._segment(entry["text"])  # unguarded: a crash must fail the test, not fall back
    check_invariants(segments)
    parsed = parse_response_text(entry["text"], TOOLS)
    assert [s.kind for s in parsed.segments] == expect["kinds"]
    assert len(parsed.calls) == len(expect["calls"])
    for call, want in zip(parsed.calls, expect["calls"]):
        assert call.name == want["name"]
        if want.get("error"):
            assert call.error
            assert call.arguments == {} or call.error.startswith("unknown tool")  # malformed: no arguments
        else:
            assert call.error is None, call.error
            assert call.arguments == want["arguments"]
    if "content" in expect:
        assert parsed.content == expect["content"]


def test_parsed_response_shape():
    text = '<think>plan</think>Let me read it.\n<tool_call>{"name": "read_file", "arguments": {"path": "a"}}</tool_call>'
    parsed = parse_response_text(text)
    assert isinstance(parsed, ParsedResponse)
    assert parsed.thoughts == ["plan"] and parsed.content == "Let me read it."
    assert parsed.calls == [parsed.segments[-1].call]
    assert parsed.calls[0] == ToolCall("read_file", {"path": "a"}, None, '{"name": "read_file", "arguments": {"path": "a"}}')


def test_error_messages_tell_the_policy_what_to_write():
    call = parse_response_text('<tool_call>{"name": "write_file", "arguments": {"path": "a.txt" "content": "hi"}}</tool_call>').calls[0]
    assert call.error.startswith("malformed tool call: invalid JSON (Expecting ',' delimiter at char 53)")
    assert call.error.endswith('write <tool_call>{"name": "write_file", "arguments": {...}}</tool_call>')
    call = parse_response_text("[TOOL_CALLS]").calls[0]
    assert "[TOOL_CALLS][{" in call.error
    call = parse_response_text('<tool_call>{"name": "wirte_file", "arguments": {}}</tool_call>', TOOLS).calls[0]
    assert call.error == (
        "unknown tool 'wirte_file'; did you mean 'write_file'? available tools: write_file, read_file, list_dir, run_python, search"
    )
    call = parse_response_text('<tool_call>{"name": "zzz", "arguments": {}}</tool_call>', ["a", "b"]).calls[0]
    assert call.error == "unknown tool 'zzz'; available tools: a, b"
    # A malformed call keeps its own error, not the unknown-tool one; without tool_names any name is accepted.
    assert parse_response_text('<tool_call>{"name": "zzz"}</tool_call>', ["a"]).calls[0].error.startswith("malformed")
    assert parse_response_text('<tool_call>{"name": "zzz", "arguments": {}}</tool_call>').calls[0].error is None


def test_segment_never_raises_even_on_non_strings():
    assert segment(None) == [] and segment(b"<tool_call>") == []


GARBAGE_PIECES = [
    "<tool_call>", "</tool_call>", "<think>", "</think>", "<tool_response>", "</tool_response>", "[TOOL_CALLS]",
    "[ARGS]", "[CALL_ID]", "[THINK]", "[/THINK]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "```", "```json\n",
    "<|im_end|>", "<|im_start|>assistant\n", "</s>", "{", "}", "[", "]", '"', "'", ":", ",", "\\", "\n", " ",
    '"name"', '"arguments"', "'parameters'", '"function"', "name", "True", "null", "-1.5e3", "\u201c", "\u201d",
    "\x00", "\ud800", "\U0001f680", "read_file",
]


def test_random_garbage_and_truncations_never_raise():
    rng = random.Random(1234)
    cases = []
    for _ in range(2000):  # random marker soup
        cases.append("".join(rng.choice(GARBAGE_PIECES) for _ in range(rng.randint(0, 30))))
    for _ in range(500):  # random characters
        cases.append("".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 80))))
    for entry in CORPUS:  # truncations and cut-outs of every corpus entry
        text = entry["text"]
        for _ in range(4 if len(text) > 5000 else 30):
            i, j = sorted(rng.randint(0, len(text)) for _ in range(2))
            cases += [text[:j], text[i:], text[i:j]]
    for text in cases:
        check_invariants(segmenter._segment(text))
        parse_response_text(text, TOOLS)


PATHOLOGICAL = {  # inputs that make naive regexes or repeated repairs quadratic
    "open_brackets": "[" * 50_000,
    "deep_objects": "<tool_call>" + '{"a": ' * 5_000,
    "spaces": " " * 50_000,
    "broken_bare_lines": '{"type": [1,\n' * 4_000,
    "call_like_bare_lines": '{"name": "a", "arguments": {\n' * 2_000,
    "many_tags": "<tool_call>" * 5_000,
    "many_fences": "```\n" * 12_000,
    "backslashes": '<tool_call>{"a": "' + "\\" * 50_000,
    "long_mistral_name": "[TOOL_CALLS]" + "a" * 50_000,
}


@pytest.mark.parametrize("name", PATHOLOGICAL)
def test_pathological_inputs_segment_correctly(name):
    """How long they take (no quadratic blow-up) is measured by benchmarks/segmenter.py."""
    check_invariants(segmenter._segment(PATHOLOGICAL[name]))


def test_module_imports_only_the_standard_library():
    tree = ast.parse(Path(segmenter.__file__).read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert modules and all(m.split(".")[0] in sys.stdlib_module_names for m in modules), modules
