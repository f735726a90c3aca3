"""memory/reranker_training.py: mining (query, positive, hard negatives) from a real store, docstring removal, and
the trained cross-encoder end to end (real MiniLM weights, real Chroma store, sentence-transformers' trainer)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent_lightning.errors import UserError
from agent_lightning.memory.reranker_training import (mine_pairs, name_phrase, resolve_reranker, strip_docstrings,
                                                      trained_reranker_dir)

QUERY = "Return the number of vowels in a word."
# The positive counts vowels under a name that says nothing. The planted hard negative hashes a file, but its
# comments repeat the query: once the docstrings are gone (as in code you query without them), dense retrieval ranks
# it first; only reading the code tells them apart. The reranker learns from the documented copy of the code.
POSITIVE = f'''
def tally(word):
    """{QUERY}"""
    return sum(1 for letter in word.lower() if letter in "aeiou")
'''
DECOY = f'''
def file_digest(path):
    # {QUERY}
    # {QUERY} (the old helper did this; see tally)
    # {QUERY}
    import hashlib
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()
'''
OTHERS = [
    ("reverse_words", "Reverse the order of the words in a sentence.", "return ' '.join(reversed(text.split()))"),
    ("celsius_to_fahrenheit", "Convert a temperature from Celsius to Fahrenheit.", "return value * 9 / 5 + 32"),
    ("is_palindrome", "Check whether a string reads the same backwards.", "return text == text[::-1]"),
    ("flatten", "Flatten a list of lists into a single list.", "return [x for row in rows for x in row]"),
    ("chunked", "Split a list into pieces of a given size.", "return [xs[i:i + n] for i in range(0, len(xs), n)]"),
    ("word_count", "Count how often each word occurs in a text.",
     "import collections\n    return collections.Counter(text.split())"),
    ("clamp", "Limit a number to lie between a lower and an upper bound.", "return max(low, min(high, value))"),
    ("mean", "Compute the arithmetic average of a sequence of numbers.", "return sum(values) / len(values)"),
    ("slugify", "Turn a title into a lowercase URL slug with dashes.", "return '-'.join(text.lower().split())"),
    ("unique", "Remove duplicates from a list while keeping the order.", "return list(dict.fromkeys(items))"),
    ("gcd", "Greatest common divisor of two integers by Euclid's method.",
     "while b:\n        a, b = b, a % b\n    return a"),
    ("read_lines", "Read a text file and return its lines without newlines.",
     "return open(path).read().splitlines()"),
    ("merge_dicts", "Merge two dictionaries, the second one winning on conflicts.", "return {**a, **b}"),
    ("factorial", "Multiply all positive integers up to n.",
     "out = 1\n    for i in range(2, n + 1):\n        out *= i\n    return out"),
    ("transpose", "Swap the rows and columns of a matrix.", "return [list(col) for col in zip(*rows)]"),
    ("capitalize_all", "Upper-case the first letter of every word.", "return ' '.join(w.title() for w in text.split())"),
]


def corpus_source() -> str:
    parts = [POSITIVE, DECOY]
    for name, doc, body in OTHERS:
        parts.append(f'\ndef {name}(text=None, value=0, values=(), rows=(), xs=(), n=1, low=0, high=1, items=(), '
                     f'a=0, b=0, path="", **kw):\n    """{doc}"""\n    {body}\n')
    return "\n".join(parts)


def test_strip_docstrings_removes_definition_docstrings_and_keeps_code_and_comments():
    code = 'def f(x):  # note\n    """Summary.\n\n    More.\n    """\n    # keep me\n    return x\n'
    stripped = strip_docstrings(code)
    assert "Summary" not in stripped and "More." not in stripped
    assert "# keep me" in stripped and "return x" in stripped and stripped.startswith("def f(x):  # note\n")
    assert strip_docstrings("x = '''not a docstring'''\n") == "x = '''not a docstring'''\n"
    cls = "class A:\n    '''Doc.'''\n    def m(self):\n        r\"\"\"Raw doc.\"\"\"\n        return 1\n"
    assert "Doc." not in strip_docstrings(cls) and "Raw doc" not in strip_docstrings(cls)


def test_name_phrase_splits_identifiers():
    assert name_phrase("Parser.parse_tool_calls") == "parse tool calls"
    assert name_phrase("HTTPServerError") == "http server error"


def test_mine_pairs_from_a_real_store(store):
    pairs = mine_pairs(store, max_queries=50, negatives=2, candidates=8, progress=False)
    assert pairs, "the corpus has documented functions"
    ids, docs, metas = store.all_chunks()
    by_id = dict(zip(ids, docs))
    for pair in pairs:
        assert pair.negatives and len(pair.negatives) == 2
        assert strip_docstrings(by_id[pair.chunk_id]) == pair.positive
        assert pair.positive not in pair.negatives
        assert pair.query not in pair.positive  # the docstring the query came from is not shown to the model


def test_resolve_reranker_trained_needs_a_trained_folder(tmp_path):
    assert resolve_reranker("some/folder", tmp_path) == "some/folder"
    assert resolve_reranker("", tmp_path) == ""
    with pytest.raises(UserError, match="memory train-reranker"):
        resolve_reranker("trained", tmp_path)
    (trained_reranker_dir(tmp_path) / "config.json").parent.mkdir(parents=True)
    (trained_reranker_dir(tmp_path) / "config.json").write_text("{}")
    assert resolve_reranker("trained", tmp_path) == str(tmp_path / "reranker")


@pytest.mark.slow
def test_trained_reranker_puts_the_planted_hard_negative_below_the_positive(tmp_path):
    from agent_lightning.memory.reranker import Reranker
    from agent_lightning.memory.reranker_training import train_reranker
    from agent_lightning.memory.store import CodeStore

    documented, bare = tmp_path / "documented", tmp_path / "bare"
    documented.mkdir(), bare.mkdir()
    (documented / "helpers.py").write_text(corpus_source())
    (bare / "helpers.py").write_text(strip_docstrings(corpus_source()))
    teacher, store = CodeStore(tmp_path / "teacher"), CodeStore(tmp_path / "store")
    teacher.index(documented, progress=False)
    store.index(bare, progress=False)
    dense = [h.symbol for h in store.dense(QUERY, 10)]
    assert dense.index("file_digest") < dense.index("tally"), dense  # the decoy fools dense retrieval

    report = train_reranker(teacher, tmp_path / "store" / "reranker", max_queries=16, eval_queries=1, epochs=6,
                            batch_size=4, learning_rate=2e-4, max_length=96, candidates=10, progress=False,
                            curve_points=2)
    folder = Path(report.folder)
    saved = json.loads((folder / "training.json").read_text())
    assert saved["recipe"]["queries"] == 16
    # the learning curve: before training, half way (12 of 24 steps) and at the end, which is the final model
    assert [point["step"] for point in saved["curve"]] == [0, 12, 24]
    assert saved["curve"][-1]["best_fused_mrr"] == report.reranked_mrr
    assert (folder / "curve.png").stat().st_size > 0

    reranked = [h.symbol for h in Reranker(resolve_reranker("trained", store.dir)).rerank(QUERY,
                                                                                          store.dense(QUERY, 10))]
    assert reranked.index("tally") < reranked.index("file_digest"), reranked

    # the CLI uses it with memory.reranker=trained and says so in --json
    out = subprocess.run([sys.executable, "main_agent_lightning.py", "memory", "query", QUERY, "--store",
                          str(store.dir), "-k", "10", "--json", "--set", "memory.reranker=trained",
                          "--set", "memory.candidates=10"],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    symbols = [h["symbol"] for h in json.loads(out.stdout)]
    assert symbols.index("tally") < symbols.index("file_digest"), symbols
    assert {h["reranked_by"] for h in json.loads(out.stdout)} == {str(folder)}
