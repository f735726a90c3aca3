"""Code and SOP memory: tree-sitter chunks of a code base and standard operating procedures in Chroma.

    python main_agent_lightning.py memory index PATH && python main_agent_lightning.py memory query "..."

Modules, one job each: languages (grammars), chunker (cAST-style chunks), embedder (sentence-transformers and the
Chroma embedding function), store (incremental indexing, single writer), lexical (BM25 + rank fusion), reranker
(cross-encoder with fallback), retriever (the pipeline), sop (procedures: files, store, distillation), context
(prompt injection at reset and the search_code tool), cli (the `memory` subcommand), tiny_models (offline
stand-ins for tests and benchmarks). Importing this package imports nothing heavy.
"""
