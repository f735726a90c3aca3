"""The code memory store: chunks of a source tree, embedded, in a persistent Chroma collection.

    python main_agent_lightning.py memory index PATH [--store DIR]

    store = CodeStore(".agent_lightning/memory")
    report = store.index("src/")          # incremental: only new and changed files are embedded
    hits = store.dense("parse a tool call", k=20)

Layout of a store folder: `chroma/` (Chroma PersistentClient, collection `code` in cosine space, telemetry off),
`manifest.json` (per indexed file: content hash, chunk count, state) and `write.lock`.

Indexing is incremental and idempotent. A file whose content hash matches the manifest is skipped (unless its
chunks were cut or read another way: another chunker version, `max_chars`, chunking or embedder window
`max_tokens`; each file records its own); a changed file loses its old chunks and gets new ones, and only chunks
whose embedding text is new are embedded (the others keep their vectors, found by a hash of that text and the
window: an edit to one function re-embeds that function, even when the lines below it moved); a file gone from
disk loses its chunks. Chunk ids are deterministic (chunker.py), writes are upserts in batches under Chroma's max
batch size, and crash safety comes from the manifest's order of writes: a group of files is marked `pending` (and
saved) before any of its chunks are written, and `done` only after all of them are. A run killed at any point
therefore leaves only files that are `pending` or absent from the manifest; the next run deletes the chunks of
pending files and redoes them, so it ends with no duplicates and the same count as a clean index.

One writer at a time: `index` holds `write.lock` (an OS file lock, released even when the process is killed); a
second writer gets a UserError naming the store and the holder's pid. Readers need no lock.

Not covered here: reranking and hybrid search (retriever.py), SOPs (sop.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_lightning.errors import UserError
from agent_lightning.memory.chunker import CHUNKER_VERSION, MAX_CHARS, Chunk, chunk_text
from agent_lightning.memory.embedder import DEFAULT_MAX_TOKENS, ChromaEmbedding, get_embedder
from agent_lightning.memory.languages import language_for

log = logging.getLogger(__name__)

SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", "site-packages", "dist-packages",
             ".mypy_cache", ".pytest_cache", ".tox", ".idea", ".vscode", "build", "dist", ".eggs"}
MAX_FILE_BYTES = 1 << 20
GROUP_CHUNKS = int(os.environ.get("AGENT_LIGHTNING_INDEX_GROUP", "256"))  # chunks per manifest round
MANIFEST_VERSION = 1


@dataclass
class Hit:
    """One retrieved chunk."""

    id: str
    path: str
    start_line: int
    end_line: int
    symbol: str
    text: str
    score: float
    kind: str = ""
    signature: str = ""
    scores: dict[str, float] = field(default_factory=dict)   # per stage: dense, bm25, rerank

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "start_line": self.start_line, "end_line": self.end_line, "symbol": self.symbol,
                "score": round(self.score, 4), "text": self.text}


@dataclass
class IndexReport:
    files: int = 0            # indexable files found
    indexed: int = 0          # new or changed files embedded this run
    unchanged: int = 0
    deleted: int = 0
    chunks_written: int = 0
    chunks_embedded: int = 0  # of those, embedded anew (a changed file's unchanged chunks keep their vectors)
    parse_errors: int = 0     # code files with syntax errors (indexed from tree-sitter's recovered tree)
    skipped: int = 0          # binary or too large
    total_chunks: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.files} files ({self.indexed} indexed, {self.unchanged} unchanged, {self.deleted} deleted, "
                f"{self.skipped} skipped, {self.parse_errors} with syntax errors), {self.chunks_written} chunks "
                f"written ({self.chunks_embedded} embedded), {self.total_chunks} in the store, {self.seconds:.1f} s")


def ensure_store_dir(store_dir: Path) -> None:
    """Create the store folder, or raise UserError when the path is taken by something else."""
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"memory store {store_dir}: exists and is not a folder; give another --store.") from None
    except PermissionError:
        raise UserError(f"memory store {store_dir}: permission denied; give a folder you can write.") from None


def chroma_client(store_dir: Path) -> Any:
    """A PersistentClient on `store_dir/chroma` with telemetry off."""
    import chromadb
    from chromadb.config import Settings

    ensure_store_dir(store_dir)
    try:
        return chromadb.PersistentClient(path=str(store_dir / "chroma"), settings=Settings(anonymized_telemetry=False))
    except Exception as exc:  # noqa: BLE001 - a damaged index is the user's to rebuild: one line that says how
        raise damaged_store(store_dir, exc) from None


def damaged_store(store_dir: Path, exc: Exception) -> UserError:
    """The one-line error for a Chroma index that cannot be opened or read, with the commands that rebuild it."""
    return UserError(f"memory store {store_dir}: the Chroma index is damaged ({type(exc).__name__}: "
                     f"{str(exc).splitlines()[0][:120]}); rebuild it: rm -r {store_dir} && python "
                     f"main_agent_lightning.py memory index PATH --store {store_dir}")


@contextlib.contextmanager
def writer_lock(store_dir: Path) -> Iterator[None]:
    """Hold the store's single-writer lock, or raise UserError naming the process that holds it."""
    from filelock import FileLock, Timeout

    ensure_store_dir(store_dir)
    lock = FileLock(str(store_dir / "write.lock"), timeout=0)
    owner = store_dir / "write.owner"
    try:
        lock.acquire()
    except Timeout:
        holder = owner.read_text().strip() if owner.exists() else "another process"
        raise UserError(f"memory store {store_dir} is being written by {holder}; wait for it to finish "
                        "(one writer at a time) or use another --store.") from None
    try:
        owner.write_text(f"pid {os.getpid()}")
        yield
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()


def iter_files(root: Path) -> Iterator[Path]:
    """Indexable files under `root` (or `root` itself), sorted, skipping hidden and build folders."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and language_for(name) is not None:
                yield Path(dirpath) / name


class CodeStore:
    """Code chunks in Chroma plus the manifest that makes indexing incremental (see module docstring)."""

    collection_name = "code"

    def __init__(self, store_dir: str | Path, embedder: str | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                 max_chars: int = MAX_CHARS, chunking: str = "ast", backend: str = "auto", int8: bool = True):
        if chunking not in ("ast", "lines"):
            raise UserError(f"memory.chunking: expected 'ast' or 'lines', got {chunking!r}.")
        self.dir = Path(store_dir).expanduser()
        self.chunking = chunking
        self.embedder = get_embedder(embedder, max_tokens, backend, int8)
        self.max_chars = max_chars
        # how chunks are cut and read: a file cut (or embedded through a window) another way is cut again
        self.cut = [CHUNKER_VERSION, max_chars, chunking, self.embedder.max_tokens]
        self._client: Any = None
        self._collection: Any = None

    # ------------------------------------------------------------------------------------------ chroma
    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._client = chroma_client(self.dir)
            try:
                self._collection = self._client.get_or_create_collection(
                    self.collection_name, embedding_function=ChromaEmbedding(self.embedder),
                    configuration={"hnsw": {"space": "cosine"}})
            except Exception as exc:  # noqa: BLE001 - see damaged_store
                raise damaged_store(self.dir, exc) from None
        return self._collection

    def count(self) -> int:
        return self.collection.count() if self.exists() else 0

    def exists(self) -> bool:
        return (self.dir / "chroma").is_dir()

    # ------------------------------------------------------------------------------------------ manifest
    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def _load_manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {"version": MANIFEST_VERSION, "embedder": self.embedder.name, "max_chars": self.max_chars,
                    "chunking": self.chunking, "chunker": CHUNKER_VERSION, "files": {}}
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise UserError(f"{self.manifest_path}: unreadable manifest; delete the store folder {self.dir} and "
                            "index again.") from None
        if manifest.get("embedder") != self.embedder.name:
            raise UserError(f"memory store {self.dir} was built with embedder '{manifest.get('embedder')}', not "
                            f"'{self.embedder.name}'; use the same memory.embedder or another --store.")
        return manifest

    def _save_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, sort_keys=True))
        os.replace(tmp, self.manifest_path)

    # ------------------------------------------------------------------------------------------ indexing
    def index(self, path: str | Path, progress: bool = True) -> IndexReport:
        """Bring the store up to date with the files under `path` (see module docstring)."""
        root = Path(path).expanduser()
        if not root.exists():
            raise UserError(f"memory index: {path} does not exist; give a source folder or file.")
        root = root.resolve()
        base = root.parent if root.is_file() else root
        with writer_lock(self.dir):
            return self._index(root, base, progress)

    def _index(self, root: Path, base: Path, progress: bool) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport()
        self._embedded = 0
        manifest = self._load_manifest()
        files = manifest["files"]
        if any(entry.get("cut") != self.cut for entry in files.values()):  # unchanged vectors are kept
            log.info("memory store %s: some files were chunked another way (chunker version, max_chars, chunking or "
                     "max_tokens); they are chunked again", self.dir)
        manifest.update(max_chars=self.max_chars, chunking=self.chunking, chunker=CHUNKER_VERSION)
        collection = self.collection
        max_batch = max(1, min(self._client.get_max_batch_size(), 1000))
        todo: list[tuple[str, Path, str, bytes]] = []
        seen: set[str] = set()
        for file in iter_files(root):
            key = str(file.resolve())
            seen.add(key)
            report.files += 1
            try:
                data = file.read_bytes()
            except OSError:
                report.skipped += 1
                continue
            if len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
                report.skipped += 1
                seen.discard(key)  # indexed before, too large or binary now: its chunks go below
                continue
            digest = hashlib.sha1(data).hexdigest()
            entry = files.get(key)
            if entry and entry.get("state") == "done" and entry.get("hash") == digest and entry.get("cut") == self.cut:
                report.unchanged += 1
                continue
            todo.append((key, file, digest, data))
        prefix = str(root) if root.is_dir() else None
        gone = [k for k in files if prefix and k.startswith(prefix + os.sep) and k not in seen]
        for key in gone:
            collection.delete(where={"file": key})
            del files[key]
            report.deleted += 1
        if gone:
            self._save_manifest(manifest)
        with _Progress(len(todo), progress and bool(todo)) as bar:
            group: list[tuple[str, str, list[Chunk]]] = []
            size = 0
            for key, file, digest, data in todo:
                rel = file.relative_to(base).as_posix()
                chunks, parsed = chunk_text(rel, data.decode("utf-8", "replace"), max_chars=self.max_chars,
                                              syntax=self.chunking == "ast")
                report.parse_errors += not parsed
                group.append((key, digest, chunks))
                size += len(chunks)
                if size >= GROUP_CHUNKS:
                    report.chunks_written += self._write_group(group, manifest, max_batch, bar)
                    group, size = [], 0
            if group:
                report.chunks_written += self._write_group(group, manifest, max_batch, bar)
        report.indexed = len(todo)
        report.chunks_embedded = self._embedded
        report.total_chunks = collection.count()
        report.seconds = time.perf_counter() - started
        return report

    def _write_group(self, group: list[tuple[str, str, list[Chunk]]], manifest: dict[str, Any], max_batch: int,
                     bar: _Progress) -> int:
        files, collection = manifest["files"], self.collection
        stale = [key for key, _, _ in group if key in files]
        for key, digest, _ in group:
            files[key] = {"hash": digest, "state": "pending", "chunks": 0, "cut": self.cut}
        self._save_manifest(manifest)                    # pending before any chunk of these files is written
        known: dict[str, Any] = {}                       # embedding-text hash -> vector, from the old chunks
        for key in stale:
            old = collection.get(where={"file": key}, include=["embeddings", "metadatas"])
            vectors_old = old.get("embeddings")
            if vectors_old is not None:
                for vector, meta in zip(vectors_old, old["metadatas"]):
                    if meta.get("etext"):
                        known[meta["etext"]] = [float(x) for x in vector]
            collection.delete(where={"file": key})
        chunks = [(key, c) for key, _, cs in group for c in cs]
        unique = {c.id: (key, c) for key, c in chunks}    # identical chunks (same path, lines, text) collapse
        items = list(unique.values())
        texts = [c.embedding_text() for _, c in items]
        window = f"{self.embedder.max_tokens}\n"   # a vector read through another window is not reused
        digests = [hashlib.sha1((window + t).encode("utf-8", "replace")).hexdigest()[:20] for t in texts]
        missing = [i for i, d in enumerate(digests) if d not in known]
        for i, vector in zip(missing, self.embedder.embed([texts[i] for i in missing])):
            known[digests[i]] = vector
        vectors = [known[d] for d in digests]
        for i in range(0, len(items), max_batch):
            part = items[i: i + max_batch]
            collection.upsert(ids=[c.id for _, c in part], embeddings=vectors[i: i + max_batch],
                              documents=[c.text for _, c in part],
                              metadatas=[{**c.metadata(), "file": key, "etext": d}
                                         for (key, c), d in zip(part, digests[i: i + max_batch])])
        for key, _, cs in group:
            files[key].update(state="done", chunks=len(cs))
        self._save_manifest(manifest)
        bar.advance(len(group), len(items))
        self._embedded += len(missing)
        return len(items)

    # ------------------------------------------------------------------------------------------ reading
    def dense(self, text: str, k: int = 20) -> list[Hit]:
        """The k chunks closest to `text` by cosine similarity, best first (score = 1 - cosine distance)."""
        if not self.exists() or k <= 0:
            return []
        collection = self.collection
        n = collection.count()
        if n == 0:
            return []
        result = collection.query(query_embeddings=self.embedder.embed([text]), n_results=min(k, n),
                                  include=["documents", "metadatas", "distances"])
        hits = []
        for id_, doc, meta, dist in zip(result["ids"][0], result["documents"][0], result["metadatas"][0],
                                        result["distances"][0]):
            score = 1.0 - float(dist)
            hits.append(Hit(id_, meta["path"], int(meta["start_line"]), int(meta["end_line"]), meta.get("symbol", ""),
                            doc, score, meta.get("kind", ""), meta.get("signature", ""), {"dense": score}))
        return hits

    def all_chunks(self) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """(ids, documents, metadatas) of every chunk, for lexical search and checks."""
        if not self.exists():
            return [], [], []
        got = self.collection.get(include=["documents", "metadatas"])
        return got["ids"], got["documents"], got["metadatas"]


class _Progress:
    """A rich progress bar with files/s and chunks/s on stderr (nothing when disabled or not a terminal)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.files = self.chunks = 0
        self.started = time.perf_counter()

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                                 TextColumn("{task.fields[rates]}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task("index", total=self.total, rates="")
        return self

    def advance(self, files: int, chunks: int) -> None:
        self.files += files
        self.chunks += chunks
        if self.enabled:
            elapsed = max(time.perf_counter() - self.started, 1e-6)
            self._bar.update(self._task, advance=files,
                             rates=f"{self.files / elapsed:.1f} files/s  {self.chunks / elapsed:.1f} chunks/s")

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)
