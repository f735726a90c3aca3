"""`memory` subcommands: index and query code memory, add, list, query and distill SOPs.

    python main_agent_lightning.py memory index PATH [--store DIR]
    python main_agent_lightning.py memory query TEXT [--store DIR] [-k N] [--json] [--no-rerank]
    python main_agent_lightning.py memory train-reranker [--store DIR] [--queries N] [--epochs E]
    python main_agent_lightning.py memory sop add FILE | sop list [--json] | sop query TEXT [-k N] [--json]
    python main_agent_lightning.py memory sop distill RUN_DIR [--min-successes N] [--dry-run]

`--store` defaults to the config's `memory.store`; `--config` / `--set memory.KEY=VALUE` choose the embedder and its
engine (memory.backend), reranker, hybrid search and candidate count. `query --json` prints a list of {path,
start_line, end_line, symbol, score, text, reranked_by}; `query --no-rerank` keeps the embedding order without
touching the reranker. `train-reranker` fine-tunes a cross-encoder on queries mined from the store itself
(memory/reranker_training.py) and saves it to STORE/reranker; `memory.reranker: trained` uses it. User mistakes
(missing path, empty store, bad SOP file, a second writer) are one-line errors, exit 2.

With the ONNX engine (memory.backend auto or onnx) and no loadable reranker, a query imports no torch,
transformers or sentence-transformers: only the config, Chroma, onnxruntime and tokenizers.

Not covered here: the argument parsing of the other commands (agent_lightning/cli.py wires this in).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_lightning.errors import UserError


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `memory ...` to the top-level subparsers; `common` adds --config/--set/--plugin-dir."""
    memory = sub.add_parser("memory", help="Code memory (tree-sitter chunks in Chroma) and SOPs.")
    actions = memory.add_subparsers(dest="action", required=True)

    def with_store(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--store", metavar="DIR", help="Memory store folder (default: the config's memory.store).")
        common(p)
        return p

    index = with_store(actions.add_parser("index", help="Index (or update) the code under PATH."))
    index.add_argument("path", metavar="PATH", help="A source folder or file.")
    index.add_argument("--chunking", choices=["ast", "lines"], default="ast",
                       help="ast: tree-sitter chunks (default); lines: fixed line windows.")
    query = with_store(actions.add_parser("query", help="Retrieve the code chunks that best match TEXT."))
    query.add_argument("text", metavar="TEXT")
    query.add_argument("-k", type=int, default=3, help="Chunks to return (default 3).")
    query.add_argument("--json", action="store_true", help="Print a JSON list.")
    query.add_argument("--no-rerank", action="store_true", help="Keep the embedding order: skip the reranker.")
    train = with_store(actions.add_parser(
        "train-reranker", help="Fine-tune a cross-encoder on queries mined from the store (docstrings, names), "
                               "saved to STORE/reranker; use it with --set memory.reranker=trained."))
    train.add_argument("--queries", type=int, default=1500, help="Mined training queries (default 1500).")
    train.add_argument("--epochs", type=float, default=1.0, help="Passes over them (default 1).")
    train.add_argument("--learning-rate", type=float, default=5e-5)
    train.add_argument("--max-length", type=int, default=128, help="Word pieces per (query, chunk) pair.")
    train.add_argument("--out", metavar="DIR", help="Save here instead of STORE/reranker.")
    train.add_argument("--curve", type=int, default=0, metavar="N",
                       help="Measure the held-out MRR before training and at N points during it (training.json "
                            "`curve`, curve.png); each point costs a pass over the held-out queries.")
    sop = actions.add_parser("sop", help="Standard operating procedures.").add_subparsers(dest="sop_action",
                                                                                         required=True)
    add = with_store(sop.add_parser("add", help="Add SOPs from a YAML or Markdown file."))
    add.add_argument("file", metavar="FILE")
    lst = with_store(sop.add_parser("list", help="List stored SOPs, most successful first."))
    lst.add_argument("--json", action="store_true")
    squery = with_store(sop.add_parser("query", help="SOPs that best match TEXT."))
    squery.add_argument("text", metavar="TEXT")
    squery.add_argument("-k", type=int, default=3)
    squery.add_argument("--json", action="store_true")
    distill = with_store(sop.add_parser("distill", help="Distill SOPs from a run's verified-successful traces."))
    distill.add_argument("run_dir", metavar="RUN_DIR")
    distill.add_argument("--min-successes", type=int, default=1, help="Keep procedures with at least N successes.")
    distill.add_argument("--dry-run", action="store_true", help="Print them without storing.")


def quiet() -> None:
    """Offline, and only our own messages: like the training commands, without importing torch up front (a
    mistake in the arguments is reported before any model library loads)."""
    import logging
    import os
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    warnings.filterwarnings("ignore")
    for name in ("transformers", "sentence_transformers", "chromadb", "httpx", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("agent_lightning.memory.embedder").setLevel(logging.INFO)  # "exporting ... (once)"


def run(args: argparse.Namespace) -> int:
    from agent_lightning.config import load_config

    cfg = load_config(args.config, args.overrides).memory
    store = Path(args.store or cfg.store).expanduser()
    if args.action == "index":
        return _index(args, cfg, store)
    if args.action == "query":
        return _query(args, cfg, store)
    if args.action == "train-reranker":
        return _train_reranker(args, cfg, store)
    return _sop(args, cfg, store)


def _index(args: argparse.Namespace, cfg: Any, store_dir: Path) -> int:
    from agent_lightning.memory.store import CodeStore

    store = CodeStore(store_dir, cfg.embedder, cfg.max_tokens, chunking=args.chunking, backend=cfg.backend,
                      int8=cfg.int8)
    report = store.index(args.path)
    print(f"memory index {store_dir}: {report.line()}")
    return 0


def _query(args: argparse.Namespace, cfg: Any, store_dir: Path) -> int:
    from agent_lightning.memory.reranker import Reranker
    from agent_lightning.memory.reranker_training import resolve_reranker
    from agent_lightning.memory.retriever import Retriever, format_hits
    from agent_lightning.memory.store import CodeStore

    if args.k < 1:
        raise UserError(f"-k {args.k}: expected a number of chunks >= 1.")
    store = CodeStore(store_dir, cfg.embedder, cfg.max_tokens, backend=cfg.backend, int8=cfg.int8)
    if store.count() == 0:
        raise UserError(f"memory store {store_dir} holds no code; run `memory index PATH --store {store_dir}` first.")
    name = "" if args.no_rerank else resolve_reranker(cfg.reranker, store_dir)
    reranker = Reranker(name, backend=cfg.backend, int8=cfg.int8) if name else None
    retriever = Retriever(store, max(cfg.candidates, args.k), args.k, reranker, cfg.hybrid)
    hits = retriever.search(args.text)
    ran = reranker.name if reranker is not None and reranker.available else None
    print(json.dumps([{**h.to_dict(), "reranked_by": ran} for h in hits], indent=2) if args.json
          else format_hits(hits))
    return 0


def _train_reranker(args: argparse.Namespace, cfg: Any, store_dir: Path) -> int:
    from agent_lightning.memory.reranker_training import train_reranker
    from agent_lightning.memory.store import CodeStore

    for name in ("queries", "epochs", "learning_rate", "max_length"):
        if getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} {getattr(args, name)}: expected a positive number.")
    if args.curve < 0:
        raise UserError(f"--curve {args.curve}: expected a number of points >= 0.")
    store = CodeStore(store_dir, cfg.embedder, cfg.max_tokens, backend=cfg.backend, int8=cfg.int8)
    report = train_reranker(store, args.out, max_queries=args.queries, epochs=args.epochs,
                            learning_rate=args.learning_rate, max_length=args.max_length,
                            candidates=cfg.candidates, curve_points=args.curve)
    print(f"memory train-reranker {store_dir}: {report.line()}")
    if report.curve:
        print(f"learning curve: {Path(report.folder) / 'curve.png'}")
    print("use it: --set memory.reranker=trained" + (f" (or {report.folder})" if args.out else ""))
    return 0


def _sop(args: argparse.Namespace, cfg: Any, store_dir: Path) -> int:
    from agent_lightning.memory.sop import SopStore, distill, load_sop_file

    sops = SopStore(store_dir, cfg.embedder, cfg.max_tokens, cfg.backend, cfg.int8)
    if args.sop_action == "add":
        added = sops.add(load_sop_file(args.file))
        print(f"added {len(added)} SOP(s) to {store_dir}: " + ", ".join(s.name for s in added))
    elif args.sop_action == "list":
        items = sops.list()
        if args.json:
            print(json.dumps([_sop_dict(s) for s in items], indent=2))
        else:
            for s in items:
                print(f"{s.successes:4d}/{s.uses:<4d} {s.name}: {s.applicability}")
            if not items:
                print(f"no SOPs in {store_dir}; add some with `memory sop add FILE`.")
    elif args.sop_action == "query":
        found = sops.query(args.text, args.k)
        if args.json:
            print(json.dumps([{**_sop_dict(s), "score": round(score, 4)} for s, score in found], indent=2))
        else:
            print("\n\n".join(f"[{i}] ({score:.2f}) {s.to_text()}" for i, (s, score) in enumerate(found, start=1))
                  or f"no SOPs in {store_dir}.")
    else:
        found = distill(args.run_dir, args.min_successes)
        stored = found if args.dry_run else sops.add(found)
        for s in stored:
            print(f"{s.successes:4d}/{s.uses:<4d} {s.name}\n" + "\n".join(f"       {i}. {st}" for i, st in
                                                                       enumerate(s.steps, start=1)))
        print(f"{len(stored)} SOP(s) distilled from {args.run_dir}" + (" (not stored: --dry-run)" if args.dry_run
                                                                      else f" into {store_dir}"))
    return 0


def _sop_dict(sop: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {"id": sop.id, **asdict(sop)}
