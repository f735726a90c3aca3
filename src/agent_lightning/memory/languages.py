"""Which files are code, which tree-sitter grammar parses them, and what their definitions look like.

    from agent_lightning.memory.languages import language_for, parser_for
    parser_for("python").parse(b"def f(): pass")

Grammars come from the per-language PyPI wheels (tree-sitter-python, -javascript, -typescript, -go, -rust,
-java), which carry their compiled parsers: nothing is downloaded at run time. A grammar whose wheel is not
installed is reported by `available_languages()` and its files fall back to the line-window chunker.

Not covered here: how chunks are cut (chunker.py).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LanguageSpec:
    """What the chunker needs to know about one language's syntax tree."""

    name: str
    module: str                      # the PyPI wheel's import name
    loader: str = "language"         # function of that module returning the grammar
    definitions: dict[str, str] = field(default_factory=dict)  # node type -> kind (function, class, ...)
    wrappers: tuple[str, ...] = ()   # nodes that wrap a definition (decorators, export)
    doc_in_body: bool = False        # Python: the docstring is the first statement of the body


_FUNC, _CLASS, _METHOD = "function", "class", "method"

SPECS: dict[str, LanguageSpec] = {
    "python": LanguageSpec("python", "tree_sitter_python",
                           definitions={"function_definition": _FUNC, "class_definition": _CLASS},
                           wrappers=("decorated_definition",), doc_in_body=True),
    "javascript": LanguageSpec("javascript", "tree_sitter_javascript", definitions={
        "function_declaration": _FUNC, "generator_function_declaration": _FUNC, "class_declaration": _CLASS,
        "method_definition": _METHOD}, wrappers=("export_statement",)),
    "typescript": LanguageSpec("typescript", "tree_sitter_typescript", "language_typescript", definitions={
        "function_declaration": _FUNC, "class_declaration": _CLASS, "abstract_class_declaration": _CLASS,
        "method_definition": _METHOD, "interface_declaration": "interface", "enum_declaration": "enum",
        "type_alias_declaration": "type"}, wrappers=("export_statement",)),
    "tsx": LanguageSpec("tsx", "tree_sitter_typescript", "language_tsx", definitions={
        "function_declaration": _FUNC, "class_declaration": _CLASS, "method_definition": _METHOD,
        "interface_declaration": "interface"}, wrappers=("export_statement",)),
    "go": LanguageSpec("go", "tree_sitter_go", definitions={
        "function_declaration": _FUNC, "method_declaration": _METHOD, "type_declaration": "type"}),
    "rust": LanguageSpec("rust", "tree_sitter_rust", definitions={
        "function_item": _FUNC, "impl_item": "impl", "struct_item": "struct", "enum_item": "enum",
        "trait_item": "trait", "mod_item": "module"}),
    "java": LanguageSpec("java", "tree_sitter_java", definitions={
        "class_declaration": _CLASS, "interface_declaration": "interface", "enum_declaration": "enum",
        "method_declaration": _METHOD, "constructor_declaration": _METHOD, "record_declaration": _CLASS}),
}

CODE_EXTENSIONS = {".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
                   ".cjs": "javascript", ".jsx": "javascript", ".ts": "typescript", ".tsx": "tsx", ".go": "go",
                   ".rs": "rust", ".java": "java"}
TEXT_EXTENSIONS = {".md": "markdown", ".rst": "rst", ".txt": "text", ".yaml": "yaml", ".yml": "yaml",
                   ".toml": "toml", ".json": "json", ".cfg": "config", ".ini": "config", ".sh": "shell",
                   ".html": "html", ".css": "css", ".c": "c", ".h": "c", ".cpp": "cpp", ".sql": "sql"}
TEXT_NAMES = {"Makefile": "make", "Dockerfile": "docker", "README": "text", "LICENSE": "text"}


def language_for(path: str | Path) -> str | None:
    """The language of a file by name ('python', 'markdown', ...), or None when it is not indexed."""
    p = Path(path)
    return CODE_EXTENSIONS.get(p.suffix.lower()) or TEXT_EXTENSIONS.get(p.suffix.lower()) or TEXT_NAMES.get(p.name)


@functools.cache
def parser_for(language: str) -> Any | None:
    """A tree-sitter Parser for a code language, or None when its grammar wheel is not installed."""
    spec = SPECS.get(language)
    if spec is None:
        return None
    try:
        import tree_sitter

        grammar = getattr(importlib.import_module(spec.module), spec.loader)()
        return tree_sitter.Parser(tree_sitter.Language(grammar))
    except (ImportError, AttributeError, ValueError):
        return None


def available_languages() -> dict[str, bool]:
    """Every code language and whether its grammar loads here."""
    return {name: parser_for(name) is not None for name in SPECS}
