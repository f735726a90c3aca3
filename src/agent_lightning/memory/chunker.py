"""Cut source files into retrieval chunks: syntax-aware for code (cAST-style), line windows for other text.

    from agent_lightning.memory.chunker import chunk_text
    chunks, parsed_ok = chunk_text("pkg/mod.py", source)      # -> list[Chunk], False if the parse had errors

Code (languages.py lists the grammars) is parsed with tree-sitter and cut along the syntax tree, as in cAST:
sibling nodes are packed into a chunk up to `max_chars` non-whitespace characters; a node larger than that is
split recursively along its children (a class into its methods, a function body into its statements); a chunk
never ends inside a statement when a statement boundary exists (only a single statement larger than the limit is
cut by lines). Refinements for retrieval: a definition (function, class, method) always starts its own chunk
(small comments, decorators or imports right before it join it), and definitions are never packed together, so a
chunk holds one symbol and its citation (`path:start-end Class.method`) is precise; packing tiny definitions
together cut Recall@5 on the HumanEval benchmark (benchmarks/retrieval.py) by about 3 points. The first piece of a
split definition is that definition's chunk: named after it (symbol, signature, docstring in the header), it holds
the decorators, the signature and as much of the body as fits (a split class: its header, docstring and attributes;
its methods are chunks of their own); the rest are `fragment` chunks of the same symbol. Before, that first piece
was an unnamed fragment, often just the signature, and the stdlib paraphrase queries found their function in the
top 5 15 points less often than with one chunk per function (docs/results.md#code-memory).

Every chunk carries path, language, symbol (qualified, e.g. `Class.method`), kind, parent, signature, first docstring
line, 1-based inclusive start and end lines, and `embedding_text()`: the code under a one-line header (`path
symbol`) and the docstring's first line. Its id is deterministic: `path:start-end:<content hash>`.

Sizes: `max_chars` (3,000 non-whitespace characters) is about four times MiniLM's 256-word-piece window, so a
function of up to ~100 lines is one chunk whose embedding reads its signature, docstring and first lines (the rest
is found by BM25, `memory.hybrid`, and shown in full). Measured on two corpora, this beat 800-character chunks that
fit the window: more, smaller fragments of long functions crowded the definitions out of the top 5. Prompt
injection cuts each chunk's code at 1,500 characters (retriever.format_hits).

Markdown, YAML, config and other text files (and code whose grammar is not installed) are cut into windows of
lines with an overlap. A file with syntax errors still indexes: tree-sitter recovers and the chunks are cut from
the recovered tree; `parsed_ok` is False so the indexer can count it.

Not covered here: reading files from disk, embedding, storage (store.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from agent_lightning.memory.languages import SPECS, LanguageSpec, language_for, parser_for

MAX_CHARS = 3000       # non-whitespace characters per chunk (the embedder reads the first 256 word pieces: ~800)
CHUNKER_VERSION = 2    # stores re-chunk their files when this (or their max_chars) changes (store.py)
WINDOW_LINES = 40      # line windows of text files
WINDOW_OVERLAP = 5
_WS = re.compile(r"\s+")


@dataclass
class Chunk:
    path: str
    language: str
    start_line: int          # 1-based, inclusive
    end_line: int
    text: str
    symbol: str = ""
    kind: str = "text"       # function, method, class, ..., definitions, fragment, module, text
    parent: str = ""
    signature: str = ""
    doc: str = ""

    @property
    def content_hash(self) -> str:
        return hashlib.sha1(self.text.encode("utf-8", "replace")).hexdigest()

    @property
    def id(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}:{self.content_hash[:12]}"

    def embedding_text(self) -> str:
        """What the embedder reads: `path symbol`, the first docstring line, then the code (measured against longer
        headers in docs/results.md#code-memory)."""
        header = f"{self.path} {self.symbol}".rstrip()
        return header + (f"\n{self.doc}" if self.doc else "") + "\n" + self.text

    def metadata(self) -> dict[str, Any]:
        """Flat scalar metadata for the vector store (everything but the text)."""
        meta = {k: v for k, v in asdict(self).items() if k != "text"}
        meta["hash"] = self.content_hash
        return meta


def chunk_text(path: str, text: str, language: str | None = None, max_chars: int = MAX_CHARS,
               syntax: bool = True) -> tuple[list[Chunk], bool]:
    """Chunks of one file's text and whether it parsed without syntax errors (True for non-code).
    `syntax=False` cuts code into line windows too (the baseline the retrieval benchmark compares against)."""
    language = language or language_for(path) or "text"
    if not text.strip():
        return [], True
    parser = parser_for(language) if language in SPECS and syntax else None
    if parser is None:
        return line_windows(path, text, language, max_chars), True
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    return _AstChunker(path, text, language, SPECS[language], max_chars).run(tree.root_node), not tree.root_node.has_error


def line_windows(path: str, text: str, language: str, max_chars: int = MAX_CHARS, window: int = WINDOW_LINES,
                 overlap: int = WINDOW_OVERLAP) -> list[Chunk]:
    """Windows of up to `window` lines (and `max_chars` non-whitespace characters) overlapping by `overlap` lines."""
    lines = text.splitlines()
    chunks, start = [], 0
    while start < len(lines):
        end, size = start, 0
        while end < len(lines) and end - start < window:
            size += _nws(lines[end])
            if size > max_chars and end > start:
                break
            end += 1
        body = "\n".join(lines[start:end])
        if body.strip():
            chunks.append(Chunk(path, language, start + 1, end, body, kind="text"))
        if end >= len(lines):
            break
        start = max(end - overlap, start + 1)
    return chunks


def _nws(text: str) -> int:
    return len(_WS.sub("", text))


@dataclass
class _Span:
    start: int                  # 0-based rows, inclusive
    end: int
    size: int
    defs: list[tuple[str, str, Any]] = field(default_factory=list)   # (qualified name, kind, node)
    parent: str = ""
    open: bool = False          # the first piece of a split definition: its body's statements may still join it


class _AstChunker:
    def __init__(self, path: str, text: str, language: str, spec: LanguageSpec, max_chars: int):
        self.path, self.text, self.language, self.spec, self.max = path, text, language, spec, max_chars
        self.small = max_chars // 4
        self.source = text.encode("utf-8", "surrogatepass")
        self.lines = text.splitlines()

    def run(self, root: Any) -> list[Chunk]:
        spans = self._split(root.children, "", "")
        chunks, last_end = [], -1
        for span in spans:
            start = max(span.start, last_end + 1)
            if start > span.end:
                continue
            body = "\n".join(self.lines[start: span.end + 1])
            if not body.strip():
                continue
            chunks.append(self._chunk(span, start, body))
            last_end = span.end
        return chunks

    # -------------------------------------------------------------------------------------- splitting
    def _size(self, node: Any) -> int:
        return _nws(self.source[node.start_byte: node.end_byte].decode("utf-8", "replace"))

    def _definition(self, node: Any) -> tuple[Any, str] | None:
        """(definition node, kind) when `node` is a definition or wraps one (decorators, export)."""
        if node.type in self.spec.definitions:
            return node, self.spec.definitions[node.type]
        if node.type in self.spec.wrappers:
            for child in node.named_children:
                found = self._definition(child)
                if found:
                    return found
        return None

    def _split(self, nodes: list[Any], parent: str, parent_kind: str, lead: _Span | None = None) -> list[_Span]:
        """Spans of `nodes` (siblings); `lead`, a small span just before them (a definition's header, comments),
        starts the first one."""
        spans: list[_Span] = []
        cur: _Span | None = lead
        for node in nodes:
            size = self._size(node)
            found = self._definition(node)
            defs = []
            if found:
                name = self._name(found[0])
                kind = "method" if found[1] == "function" and parent_kind in ("class", "impl", "trait") else found[1]
                defs = [(f"{parent}.{name}" if parent and name else name or parent, kind, found[0])]
            if size > self.max:
                wrapper = node.type in self.spec.wrappers  # its definition is named when the recursion meets it
                inner_parent, inner_kind = (defs[0][0], defs[0][1]) if defs and not wrapper else (parent, parent_kind)
                # A small lead-in (comments, decorators, a split definition's header) starts the node's first
                # piece, which packs as much of the node as fits. A split definition's first piece is named after
                # it and stays open to its body's statements, not to nested definitions (a class's methods).
                lead = cur if cur is not None and (not cur.defs or (cur.open and not defs)) and cur.size <= self.small \
                    else None
                if cur is not None and lead is None:
                    spans.append(cur)
                cur = None
                if defs and not wrapper:  # the definition's first piece: its lead-in (if any), named after it
                    row = node.start_point[0]
                    lead = replace(lead or _Span(row, row, 0), defs=defs, parent=parent, open=True)
                sub = self._split(node.children, inner_parent, inner_kind, lead) if node.children else []
                if sum(piece.size for piece in sub) - (lead.size if lead else 0) < size // 2:
                    # children that do not cover the node (a long string's escape sequences): cut it by lines
                    sub = ([lead] if lead else []) + self._by_lines(node, inner_parent)
                for piece in sub:
                    piece.parent = piece.parent or inner_parent
                spans.extend(sub)
                continue
            span = _Span(node.start_point[0], node.end_point[0], size, defs, parent)
            if cur is None:
                cur = span
            elif cur.size + size > self.max:
                spans.append(cur)
                cur = span
            elif (not defs and (cur.open or not cur.defs)) or (defs and not cur.defs and cur.size <= self.small):
                cur = self._merge(cur, span)  # statements pack together; a small lead-in joins the next definition
            else:
                spans.append(cur)
                cur = span
        if cur is not None:
            spans.append(cur)
        return spans

    @staticmethod
    def _merge(a: _Span, b: _Span) -> _Span:
        return _Span(min(a.start, b.start), max(a.end, b.end), a.size + b.size, a.defs + b.defs, a.parent or b.parent,
                     a.open)

    def _by_lines(self, node: Any, parent: str) -> list[_Span]:
        """A single node too large to split along children: cut it between lines."""
        spans, row, size = [], node.start_point[0], 0
        start = row
        for row in range(node.start_point[0], node.end_point[0] + 1):
            line = _nws(self.lines[row]) if row < len(self.lines) else 0
            if size + line > self.max and row > start:
                spans.append(_Span(start, row - 1, size, [], parent))
                start, size = row, 0
            size += line
        spans.append(_Span(start, node.end_point[0], size, [], parent))
        return spans

    # -------------------------------------------------------------------------------------- describing
    def _chunk(self, span: _Span, start: int, body: str) -> Chunk:
        chunk = Chunk(self.path, self.language, start + 1, span.end + 1, body, parent=span.parent)
        if span.defs:
            names = [d[0] for d in span.defs]
            chunk.symbol = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            chunk.kind = span.defs[0][1] if len(span.defs) == 1 else "definitions"
            node = span.defs[0][2]
            chunk.signature, chunk.doc = self._signature(node), self._doc(node)
            own = span.defs[0][0]
            chunk.parent = own.rsplit(".", 1)[0] if "." in own else ""
        else:
            chunk.symbol = span.parent
            chunk.kind = "fragment" if span.parent else "module"
        return chunk

    def _name(self, node: Any) -> str:
        for field_name in ("name", "type"):
            child = node.child_by_field_name(field_name)
            if child is not None:
                return self._text(child)
        for child in node.named_children:  # Go: type_declaration -> type_spec(name)
            inner = child.child_by_field_name("name")
            if inner is not None:
                return self._text(inner)
            if child.type.endswith("identifier"):
                return self._text(child)
        return ""

    def _text(self, node: Any) -> str:
        return self.source[node.start_byte: node.end_byte].decode("utf-8", "replace")

    def _signature(self, node: Any) -> str:
        body = node.child_by_field_name("body")
        end = body.start_byte if body is not None else node.end_byte
        text = _WS.sub(" ", self.source[node.start_byte: end].decode("utf-8", "replace")).strip().rstrip(":{ ")
        return text[:200]

    def _doc(self, node: Any) -> str:
        if self.spec.doc_in_body:
            body = node.child_by_field_name("body")
            first = body.named_children[0] if body is not None and body.named_children else None
            if first is not None and first.type == "expression_statement" and first.named_children \
                    and first.named_children[0].type == "string":
                return _first_line(re.sub(r"^[rRbBuUfF]*(\"\"\"|'''|\"|')|(\"\"\"|'''|\"|')$", "",
                                          self._text(first.named_children[0])))
            return ""
        outer = node.parent if node.parent is not None and node.parent.type in self.spec.wrappers else node
        prev = outer.prev_named_sibling
        if prev is not None and "comment" in prev.type and prev.end_point[0] >= outer.start_point[0] - 1:
            return _first_line(re.sub(r"^\s*(/\*\*?|\*/?|///?|//!|#)", "", self._text(prev), flags=re.M))
        return ""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().strip("*/").strip()
        if line:
            return line[:200]
    return ""
