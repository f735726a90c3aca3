"""Shared by the benchmarks that write their tables into the docs: replace a marked block of a Markdown file.

    replace_block(Path("docs/results.md"), "signal-first", "| ... table ... |")
    publish("memory-effect", body, write=not args.no_write)    # print it, and put it in docs/results.md

A block is `<!-- NAME:start -->` ... `<!-- NAME:end -->`; the text between the markers is replaced, the markers
kept. A file without the block is left as it is, with a warning (a benchmark never rewrites what it does not own).
"""

from __future__ import annotations

import sys
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(path: Path, name: str, body: str) -> bool:
    """Put `body` between the `name` markers of `path`; False (and a warning) when the file has no such block."""
    start_marker, end_marker = markers(name)
    text = path.read_text()
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        print(f"warning: {path} has no {start_marker} ... {end_marker} block; left unchanged", file=sys.stderr)
        return False
    path.write_text(text[:start] + f"{start_marker}\n{body}\n{end_marker}" + text[end + len(end_marker):])
    return True


def publish(name: str, body: str, write: bool = True) -> None:
    """Print a benchmark's table and, unless `write` is False (its --no-write), put it in docs/results.md's block
    `name`."""
    print(body)
    if write:
        replace_block(Path(__file__).resolve().parents[1] / "docs" / "results.md", name, body)
