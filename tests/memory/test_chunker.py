"""Chunker: real tree-sitter grammars, cAST splitting and merging, symbols, headers, ids, fallbacks."""

import ast

from agent_lightning.memory.chunker import chunk_text, line_windows
from agent_lightning.memory.languages import available_languages

from .assets import JS_UTIL, PY_TOOLS

BIG_CLASS = "class Big:\n    \"\"\"A big class.\"\"\"\n\n" + "\n".join(
    f"    def method_{i}(self, x):\n        \"\"\"Method {i}.\"\"\"\n" + "".join(
        f"        x = x + {j} * {i}  # step {j}\n" for j in range(12)) + "        return x\n" for i in range(6))


def test_python_definitions_become_symbols_with_signature_and_docstring():
    chunks, ok = chunk_text("pkg/tools.py", PY_TOOLS)
    assert ok
    by_symbol = {c.symbol: c for c in chunks}
    fn = by_symbol["parse_tool_call"]
    assert fn.kind == "function" and fn.signature == "def parse_tool_call(text)"
    assert fn.doc == "Parse a tool call written as JSON between <tool_call> tags."
    assert "import json" in fn.text  # a small lead-in joins the next definition
    assert "Inventory" in by_symbol and by_symbol["Inventory"].kind == "class"
    assert fn.embedding_text().splitlines()[:2] == ["pkg/tools.py parse_tool_call",
                                                    "Parse a tool call written as JSON between <tool_call> tags."]
    assert fn.embedding_text().endswith(fn.text)


def test_an_oversized_class_splits_into_its_methods_and_never_cuts_a_statement():
    chunks, _ = chunk_text("big.py", BIG_CLASS, max_chars=400)
    symbols = [c.symbol for c in chunks]
    assert symbols == ["Big"] + [f"Big.method_{i}" for i in range(6)]
    head = chunks[0]  # the class's own chunk: its header and docstring, named after it, no method in it
    assert (head.kind, head.start_line, head.end_line, head.signature, head.doc) == ("class", 1, 2, "class Big",
                                                                                   "A big class.")
    assert all(c.kind == "method" and c.parent == "Big" for c in chunks[1:])
    statement_ends = {n.end_lineno for n in ast.walk(ast.parse(BIG_CLASS)) if isinstance(n, ast.stmt)}
    assert all(c.end_line in statement_ends for c in chunks)
    ranges = [(c.start_line, c.end_line) for c in chunks]
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))  # ordered, no overlap


def test_an_oversized_function_splits_along_statements_and_keeps_its_name():
    body = "def long_one(x):\n" + "".join(f"    x = x + {i}  # a fairly long comment number {i}\n" for i in range(60))
    chunks, _ = chunk_text("long.py", body, max_chars=300)
    assert len(chunks) > 3 and all(c.symbol == "long_one" for c in chunks)
    first = chunks[0]  # the function's chunk: its signature and as much of the body as fits, then fragments
    assert (first.kind, first.signature, first.start_line) == ("function", "def long_one(x)", 1)
    assert first.text.count("\n") > 2 and all(c.kind == "fragment" and c.parent == "long_one" for c in chunks[1:])
    statement_ends = {n.end_lineno for n in ast.walk(ast.parse(body)) if isinstance(n, ast.stmt)}
    assert all(c.end_line in statement_ends for c in chunks)
    assert sum(c.end_line - c.start_line + 1 for c in chunks) == 61  # every line once


def test_small_statements_merge_and_definitions_stay_apart():
    src = "A = 1\nB = 2\nC = 3\n\n\ndef f():\n    return A\n\n\ndef g():\n    return B\n"
    chunks, _ = chunk_text("m.py", src)
    assert [(c.symbol, c.start_line, c.end_line) for c in chunks] == [("f", 1, 7), ("g", 10, 11)]


def test_ids_are_deterministic_and_change_with_content():
    a, _ = chunk_text("pkg/tools.py", PY_TOOLS)
    b, _ = chunk_text("pkg/tools.py", PY_TOOLS)
    assert [c.id for c in a] == [c.id for c in b]
    assert a[0].id.startswith("pkg/tools.py:1-")
    c, _ = chunk_text("pkg/tools.py", PY_TOOLS.replace("json.loads(body)", "json.loads(body.strip())"))
    assert {x.id for x in a} != {x.id for x in c}


def test_other_languages_parse_offline():
    langs = available_languages()
    assert langs["python"] and langs["javascript"] and langs["go"] and langs["rust"] and langs["java"]
    js, ok = chunk_text("web/util.js", JS_UTIL)
    assert ok and [c.symbol for c in js][:1] == ["formatPrice"] and js[0].doc == "Format a price in euros with two decimals."
    go, _ = chunk_text("main.go", "package main\n\n// Add adds.\nfunc Add(a int, b int) int {\n\treturn a + b\n}\n")
    assert go[-1].symbol == "Add" and go[-1].doc == "Add adds."
    rust, _ = chunk_text("lib.rs", "/// Doubles.\nfn double(x: i32) -> i32 {\n    x * 2\n}\n")
    assert rust[0].symbol == "double" and rust[0].signature == "fn double(x: i32) -> i32"
    java, _ = chunk_text("A.java", "class A {\n  int twice(int x) { return 2 * x; }\n}\n")
    assert java[0].symbol.startswith("A")
    ts, _ = chunk_text("a.ts", "interface Shape { area(): number }\nfunction area(s: Shape): number { return s.area(); }\n")
    assert {c.language for c in ts} == {"typescript"}


def test_text_files_use_overlapping_line_windows():
    text = "\n".join(f"line {i}" for i in range(100))
    chunks = line_windows("notes.md", text, "markdown", window=40, overlap=5)
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 40), (36, 75), (71, 100)]
    md, ok = chunk_text("README.md", "# Title\n\nSome text.\n")
    assert ok and md[0].kind == "text" and md[0].language == "markdown"


def test_broken_code_still_chunks_and_reports_the_error():
    chunks, ok = chunk_text("broken.py", "def good():\n    return 1\n\ndef bad(:\n    pass\n\nx = [1, 2\n")
    assert not ok and chunks and any(c.symbol == "good" for c in chunks)
    assert chunk_text("empty.py", "   \n") == ([], True)


def test_a_split_decorated_function_keeps_its_comment_decorator_and_docstring_in_its_named_first_chunk():
    src = "import os\n\n# Load the thing.\n@cached\ndef load(path):\n    \"\"\"Read a file from disk.\"\"\"\n" + "".join(
        f"    path = os.path.join(path, 'part_{i}')  # step {i}\n" for i in range(40)) + "    return path\n"
    chunks, _ = chunk_text("load.py", src, max_chars=400)
    first = chunks[0]
    assert (first.symbol, first.kind, first.start_line) == ("load", "function", 1)
    assert "@cached" in first.text and "Read a file from disk." in first.text and "part_0" in first.text
    assert first.doc == "Read a file from disk." and first.signature == "def load(path)"
    assert [c.kind for c in chunks[1:]] == ["fragment"] * (len(chunks) - 1)


def test_an_oversized_first_method_is_its_own_chunk_not_part_of_the_class_header():
    big = "".join(f"        total = total + {j} * len(str(total))  # a comment to make it long {j}\n" for j in range(30))
    src = ("class Parser:\n    \"\"\"Parse things.\"\"\"\n\n    def parse(self, total):\n        \"\"\"Parse one.\"\"\"\n"
           + big + "        return total\n")
    chunks, _ = chunk_text("p.py", src, max_chars=600)
    assert [(c.symbol, c.kind) for c in chunks[:2]] == [("Parser", "class"), ("Parser.parse", "method")]
    assert (chunks[0].start_line, chunks[0].end_line) == (1, 2) and chunks[1].doc == "Parse one."
    assert {c.kind for c in chunks[2:]} == {"fragment"}


def test_a_long_string_with_escapes_loses_no_line():
    src = 'HELP = """Usage:\\n\n' + "".join(f"  option {i}: does a long thing number {i} with words\n"
                                             for i in range(60)) + '"""\n'
    chunks, _ = chunk_text("h.py", src, max_chars=400)
    covered = {row for c in chunks for row in range(c.start_line, c.end_line + 1)}
    assert covered == set(range(1, len(src.splitlines()) + 1))
