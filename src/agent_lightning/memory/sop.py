"""SOP memory: standard operating procedures, written by users or distilled from verified successes.

    python main_agent_lightning.py memory sop add data/sops/sum_numbers.yaml [--store DIR]
    python main_agent_lightning.py memory sop list | sop query "add up numbers in a file" | sop distill RUN_DIR

An SOP is {name, applicability, steps, preconditions, source_trajectories, uses, successes}. A file holds one or
more: YAML (a mapping, or a list of mappings, with those keys) or Markdown:

    # Sum the numbers of a file
    ## Applicability
    Add up numbers listed in a file and save the total.
    ## Preconditions
    - the numbers are one per line
    ## Steps
    1. read_file(path=<source>)
    2. calculator(expression=<the numbers joined by +>)
    3. write_file(path=<target>, content=<result of step 2>)

Distillation reads a run's traces (`traces/step-*.jsonl`, any depth, as rewarding.py writes them). Every rollout
with tool calls is abstracted: its successful calls become steps whose argument values are placeholders (`<path>`,
`<path2>`, `<result of step 2>` when a value is an earlier call's result), and the task prompt becomes the
applicability text with the same values replaced. Rollouts with the same abstract steps are one procedure: `uses`
counts them, `successes` counts the verified successes among them, and only procedures with at least one verified
success are kept. Near-duplicates (the same tool sequence and applicability texts that share at least 80% of
their words) merge, keeping the more successful one's wording. Adding an SOP whose id exists merges counts and
sources rather than duplicating it.

SOPs live in the store's Chroma collection `sops` (searched by name and applicability, placeholders dropped, not
by steps), written under the store's single-writer lock.

Not covered here: using SOPs in prompts (context.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent_lightning.errors import UserError
from agent_lightning.memory import MEMORY_MARKER
from agent_lightning.memory.embedder import DEFAULT_MAX_TOKENS, ChromaEmbedding, get_embedder
from agent_lightning.memory.store import chroma_client, writer_lock

_PLACEHOLDER = re.compile(r"<[^<>\n]{1,40}>")
log = logging.getLogger(__name__)
FIELDS = ("name", "applicability", "steps", "preconditions", "source_trajectories", "uses", "successes")


@dataclass
class SOP:
    name: str
    applicability: str
    steps: list[str]
    preconditions: list[str] = field(default_factory=list)
    source_trajectories: list[str] = field(default_factory=list)
    uses: int = 0
    successes: int = 0

    @property
    def id(self) -> str:
        return "sop-" + hashlib.sha1("\n".join([self.name, *self.steps]).encode()).hexdigest()[:16]

    def search_text(self) -> str:
        """What a task's prompt is matched against: the name and when it applies, placeholders dropped. Steps
        (tool-call syntax) and `<path>`-style placeholders pull a task's text toward the wrong procedure: with them,
        the top SOP was the task's own template's for 32 of 44 file tasks, without them 44 of 44
        (docs/results.md#code-memory)."""
        return _PLACEHOLDER.sub("", f"{self.name}\n{self.applicability}")

    def to_text(self) -> str:
        """The SOP as an agent reads it in a prompt."""
        record = f" (worked {self.successes} of {self.uses} times)" if self.uses else ""
        lines = [f"SOP: {self.name}{record}", f"When: {self.applicability}"]
        if self.preconditions:
            lines.append("Preconditions: " + "; ".join(self.preconditions))
        lines += ["Steps:"] + [f"{i}. {s}" for i, s in enumerate(self.steps, start=1)]
        return "\n".join(lines)

    def merge(self, other: SOP) -> None:
        self.uses += other.uses
        self.successes += other.successes
        self.source_trajectories = list(dict.fromkeys(self.source_trajectories + other.source_trajectories))[:20]


# ------------------------------------------------------------------------------------------------ files
def load_sop_file(path: str | Path) -> list[SOP]:
    """SOPs from a YAML or Markdown file; UserError naming the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"memory sop add {path}: {exc.strerror or exc}; give an existing YAML or Markdown file.") from None
    if path.suffix.lower() in (".md", ".markdown"):
        items = _parse_markdown(text, path)
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UserError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)}).") from None
        items = data if isinstance(data, list) else [data]
    return [_from_mapping(item, f"{path}" + (f"[{i}]" if len(items) > 1 else "")) for i, item in enumerate(items)]


def _from_mapping(item: Any, where: str) -> SOP:
    if not isinstance(item, dict):
        raise UserError(f"{where}: expected a mapping with keys {', '.join(FIELDS[:3])}, got {type(item).__name__}.")
    unknown = [k for k in item if k not in FIELDS]
    if unknown:
        raise UserError(f"{where}: unknown SOP key '{unknown[0]}'; valid keys: {', '.join(FIELDS)}.")
    for key in ("name", "applicability", "steps"):
        if not item.get(key):
            raise UserError(f"{where}: the SOP needs '{key}' (name, applicability and a list of steps).")
    steps = item["steps"]
    if isinstance(steps, str):
        steps = [s for s in steps.splitlines() if s.strip()]
    if not isinstance(steps, list) or not all(isinstance(s, (str, int, float)) for s in steps):
        raise UserError(f"{where}: 'steps' must be a list of strings.")
    pre = item.get("preconditions") or []
    pre = [pre] if isinstance(pre, str) else pre
    try:
        uses, successes = int(item.get("uses", 0)), int(item.get("successes", 0))
    except (TypeError, ValueError):
        raise UserError(f"{where}: 'uses' and 'successes' must be integers.") from None
    return SOP(str(item["name"]).strip(), " ".join(str(item["applicability"]).split()), [str(s).strip() for s in steps],
               [str(p) for p in pre], [str(s) for s in item.get("source_trajectories") or []], uses, successes)


def _parse_markdown(text: str, path: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    section = None
    for line in text.splitlines():
        if line.startswith("# "):
            current = {"name": line[2:].strip()}
            items.append(current)
            section = None
        elif line.startswith("## ") and current is not None:
            section = line[3:].strip().lower().replace(" ", "_")
            section = {"when_to_use": "applicability", "when": "applicability", "sources": "source_trajectories"}.get(
                section, section)
        elif current is not None and section and line.strip():
            item = re.match(r"\s*(?:[-*+]|\d+[.)])\s+(.*)", line)
            if section in ("steps", "preconditions", "source_trajectories"):
                current.setdefault(section, []).append(item.group(1) if item else line.strip())
            else:
                current[section] = (current.get(section, "") + " " + line.strip()).strip()
    if not items:
        raise UserError(f"{path}: no SOP found; a Markdown SOP starts with '# Name' and has '## Applicability' and "
                        "'## Steps' sections.")
    return items


# ------------------------------------------------------------------------------------------------ store
class SopStore:
    collection_name = "sops"

    def __init__(self, store_dir: str | Path, embedder: str | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                 backend: str = "auto", int8: bool = True):
        self.dir = Path(store_dir).expanduser()
        self.embedder = get_embedder(embedder, max_tokens, backend, int8)
        self._collection: Any = None
        self._stale: Any = None   # None: not checked yet; False: current; else (SOPs, vectors) ranked in memory

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._collection = chroma_client(self.dir).get_or_create_collection(
                self.collection_name, embedding_function=ChromaEmbedding(self.embedder),
                configuration={"hnsw": {"space": "cosine"}})
        return self._collection

    def add(self, sops: list[SOP]) -> list[SOP]:
        """Upsert SOPs (an existing id merges counts and sources); returns them as stored. SOPs stored with an older
        search text are embedded again on the way (their counts untouched)."""
        if not sops:
            return []
        with writer_lock(self.dir):
            merged: dict[str, SOP] = {}
            for sop in sops:
                if sop.id in merged:
                    merged[sop.id].merge(sop)
                else:
                    merged[sop.id] = SOP(**asdict(sop))
            added = set(merged)
            existing = self.collection.get(include=["metadatas", "documents"])
            for id_, meta, document in zip(existing["ids"], existing["metadatas"], existing["documents"]):
                old = SOP(**json.loads(meta["json"]))
                if id_ in added:
                    old.merge(merged[id_])
                    merged[id_] = old
                elif document != old.search_text():  # embedded from an older search text: embedded again
                    merged[id_] = old
            items = list(merged.values())
            self._stale = None
            self.collection.upsert(ids=[s.id for s in items], documents=[s.search_text() for s in items],
                                   embeddings=self.embedder.embed([s.search_text() for s in items]),
                                   metadatas=[{"name": s.name, "uses": s.uses, "successes": s.successes,
                                               "json": json.dumps(asdict(s))} for s in items])
            return [merged[id_] for id_ in added]

    def list(self) -> list[SOP]:
        if not (self.dir / "chroma").is_dir():
            return []
        got = self.collection.get(include=["metadatas"])
        sops = [SOP(**json.loads(m["json"])) for m in got["metadatas"]]
        return sorted(sops, key=lambda s: (-s.successes, s.name))

    def query(self, text: str, k: int = 3) -> list[tuple[SOP, float]]:
        if not (self.dir / "chroma").is_dir() or k <= 0 or not text.strip():
            return []
        n = self.collection.count()
        if n == 0:
            return []
        vector = self.embedder.embed([text])
        stale = self._stale_sops()
        if stale:  # a store written before the search text changed: ranked here, exactly, until the next `add`
            sops, matrix = stale
            scores = [sum(a * b for a, b in zip(row, vector[0])) for row in matrix]
            order = sorted(range(len(sops)), key=lambda i: -scores[i])[:k]
            return [(sops[i], float(scores[i])) for i in order]
        got = self.collection.query(query_embeddings=vector, n_results=min(k, n), include=["metadatas", "distances"])
        return [(SOP(**json.loads(m["json"])), 1.0 - float(d)) for m, d in zip(got["metadatas"][0], got["distances"][0])]

    def _stale_sops(self) -> tuple[list[SOP], list[list[float]]] | None:
        """(SOPs, vectors of their current search text) when some were stored with another text, else None."""
        count = self.collection.count()
        if self._stale is None or (self._stale and len(self._stale[0]) != count):  # another process added some
            got = self.collection.get(include=["metadatas", "documents"])
            sops = [SOP(**json.loads(m["json"])) for m in got["metadatas"]]
            if any(doc != sop.search_text() for sop, doc in zip(sops, got["documents"])):
                log.info("SOPs in %s were embedded from an older search text: ranked in memory until the next "
                         "`memory sop add` or `distill` re-embeds them", self.dir)
                self._stale = (sops, [list(v) for v in self.embedder.embed([s.search_text() for s in sops])])
            else:
                self._stale = False
        return self._stale or None


# ------------------------------------------------------------------------------------------------ distillation
def distill(run_dir: str | Path, min_successes: int = 1) -> list[SOP]:
    """SOPs from the verified-successful trajectories in a run's traces (see module docstring)."""
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("**/traces/step-*.jsonl")) if run_dir.is_dir() else []
    if not files:
        raise UserError(f"memory sop distill {run_dir}: no traces/step-*.jsonl under it; give a run directory.")
    groups: dict[tuple[str, ...], SOP] = {}
    for file in files:
        for n, line in enumerate(file.read_text().splitlines()):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            calls = [c for c in record.get("calls") or [] if isinstance(c, dict) and c.get("ok")]
            if not calls:
                continue
            outcome = record.get("outcome") or {}
            success = bool(outcome.get("success") and outcome.get("verified"))
            prompt = _user_prompt(record.get("prompt"))
            steps, applicability = abstract(calls, prompt)
            source = f"{file.relative_to(run_dir).as_posix()}#{n} ({record.get('task_id')})"
            sop = SOP(_name(calls, applicability), applicability, steps, [], [source] if success else [], 1, int(success))
            key = tuple(steps)
            if key in groups:
                if success and not groups[key].successes:
                    sop.merge(groups[key])
                    groups[key] = sop   # wording from a success
                else:
                    groups[key].merge(sop)
            else:
                groups[key] = sop
    kept = [s for s in groups.values() if s.successes >= min_successes]
    return _merge_near_duplicates(kept)


def abstract(calls: list[dict[str, Any]], prompt: str) -> tuple[list[str], str]:
    """(steps with placeholders, the prompt with the same values replaced) for one trajectory's tool calls."""
    placeholders: dict[str, str] = {}
    used: dict[str, int] = {}
    results: list[str] = []
    steps = []
    for call in calls:
        parts = []
        for key, value in (call.get("arguments") or {}).items():
            text = value if isinstance(value, str) else json.dumps(value)
            if text in placeholders:
                ph = placeholders[text]
            elif text.strip() and text.strip() in results:
                ph = f"<result of step {results.index(text.strip()) + 1}>"
            else:
                used[key] = used.get(key, 0) + 1
                ph = f"<{key}{used[key] if used[key] > 1 else ''}>"
                placeholders[text] = ph
            parts.append(f"{key}={ph}")
        steps.append(f"{call.get('name')}({', '.join(parts)})")
        results.append(str(call.get("result", "")).strip())
    applicability = prompt
    for text, ph in sorted(placeholders.items(), key=lambda kv: -len(kv[0])):
        if len(text) >= 2:
            applicability = applicability.replace(text, ph)
    applicability = re.sub(r"(?<![\w<])\d+(?:\.\d+)?(?![\w>])", "<n>", applicability)
    return steps, " ".join(applicability.split())


def _user_prompt(prompt: Any) -> str:
    if isinstance(prompt, list):
        users = [m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        prompt = users[-1] if users else ""
    text = prompt if isinstance(prompt, str) else ""
    return text.split(MEMORY_MARKER)[0]


def _name(calls: list[dict[str, Any]], applicability: str) -> str:
    words = re.sub(r"<[^>]*>", "", applicability).split()
    return " ".join(words[:8]).rstrip(".,:;") or " then ".join(c.get("name", "?") for c in calls)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+|<[^>]*>", text.lower()))


def _merge_near_duplicates(sops: list[SOP]) -> list[SOP]:
    out: list[SOP] = []
    for sop in sorted(sops, key=lambda s: -s.successes):
        tools = [s.split("(")[0] for s in sop.steps]
        for kept in out:
            a, b = _words(kept.applicability), _words(sop.applicability)
            if [s.split("(")[0] for s in kept.steps] == tools and len(a & b) >= 0.8 * max(len(a | b), 1):
                kept.merge(sop)
                break
        else:
            out.append(sop)
    return out
