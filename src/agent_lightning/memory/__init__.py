"""Code and SOP memory: tree-sitter chunks of a code base and standard operating procedures in Chroma.

    python main_agent_lightning.py memory index PATH && python main_agent_lightning.py memory query "..."

Modules, one job each: languages (grammars), chunker (cAST-style chunks), embedder (the embedding engine chosen by
memory.backend, and the Chroma embedding function), onnx_embedder (running an ONNX export with onnxruntime and
tokenizers, no torch), onnx_export (making and checking that export, and its int8 copy), model_files (where a
configured model is on disk, found without importing a model library), store (incremental indexing, single
writer), lexical (BM25 + rank fusion), reranker (cross-encoder with fallback), retriever (the pipeline), sop
(procedures: files, store, distillation), context (prompt injection at reset and the search_code tool),
tiny_models (offline stand-ins for tests and benchmarks).
The `memory` subcommand lives in cli/memory.py. Importing this package imports nothing heavy.
"""

MEMORY_MARKER = "\n\n[memory]"  # injected prompt text starts with it; SOP distillation cuts prompts there

