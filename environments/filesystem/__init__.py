"""`filesystem`: file tasks in a sandboxed workspace, verified by the files left behind (and an answer, for questions).

    python main_agent_lightning.py --algo grpo --set env.name=filesystem

The policy works through the six file tools of `FileToolsEnvironment` (read_file, write_file, list_dir,
make_dir, move, delete). Sixteen task templates in three tiers, one third of the tasks each:
  1. one step (one_step.py):           create_file, append_line, make_folder, delete_file, rename_file
  2. read, then write (read_write.py): copy_file, upper_case, reverse_lines, line_count, fix_config, merge_files
  3. several steps (several_steps.py): sort_by_extension, prefix_move, index_tree, find_word (answer),
                                       count_files (answer)
Each template is one class holding its prompt, its generator and its reference solver (template.py says how);
words.py holds the word pools and their train/test split.

    rows = FilesystemEnvironment.tasks("test", 100, seed=0)
    reference_solution(rows[0])      # {"calls": [{"name": ..., "arguments": {...}}, ...], "turns": [1, 3], "final": "..."}

Task rows: `task_id`, `prompt`, `files` (JSON {path: text}, the starting workspace, distractor files included),
`tier`, `template`, `expected` (JSON {"tree": {path: text, "empty/folder/": ""}, "answer": "..." for questions})
and `solution` (the reference solver's trajectory, usable as an SFT demonstration: `calls` in order, `turns` the
number of calls made together in each assistant turn, since calls that do not need each other's results go in one
turn, at most MAX_CALLS_PER_TURN, `notes` where a turn says something before its calls (append_line and
fix_config name the change before the write: `Noted`), and the `final` message).

Splits: the word vocabulary is split into disjoint train and test pools by a stable hash (zlib.crc32), the dev
split has a third pool of its own (words.DEV_WORDS), and every file name, folder name and line of content is built
from its split's pool, so no two splits share a name or a line: a dev task is as new to a trained policy as a
test task (the dev split taken from unused training tasks, `env.dev_source: train`, is not: its words are the
ones training saw). Tasks are deterministic for (split, seed), and a size-n list is a prefix of a larger one.
A split serves at most `MAX_TASKS[split]` tasks (far fewer than the distinct combinations); larger sizes raise a
UserError.

Verification reads the workspace after the episode: one check per expected path (exact text, except that a
single trailing newline more or less is tolerated), one check that there is nothing else (no stray file or empty
folder), and for questions one check of the answer: the last non-empty line of the final message, with an
"Answer:" prefix, quotes, backticks, a trailing period and a leading "./" removed, compared exactly. The checks
of what the task changes (a path created or whose text changes, "nothing else" when the task removes something,
the answer) are the outcome's `targets`: partial credit (`outcome.progress`) counts those, not the files the
episode only had to leave alone. A file that exists but is wrong gets `outcome.credit`, the share of its expected
words it has in order (`word_share`; for a file the task changes, only the part beyond its starting text:
`text_credit`), which only `outcome.graded_progress` counts (`partial_progress` with
`graded: true`): a garbled copy then scores above no copy at all.

The reference solver reads the parameters back from the prompt (each template's prompt is a format string, so
this also checks that the prompt states everything the task needs) and the starting files from `files`.
Not covered: binary files, links and permissions (the sandbox refuses links; see agent_lightning.sandbox).
"""

from __future__ import annotations

import difflib
import json
import random
import re
from typing import Any

from agent_lightning import environment
from agent_lightning.envs import Outcome, check_split
from agent_lightning.envs.file_tools import FileToolsEnvironment
from agent_lightning.environments.filesystem.one_step import TIER_1
from agent_lightning.environments.filesystem.read_write import TIER_2
from agent_lightning.environments.filesystem.several_steps import TIER_3
from agent_lightning.environments.filesystem.template import (MAX_CALLS_PER_TURN, Noted, Solution, Spec, Template,
                                                              Turns, changed, end_tree, files_under, folders_of,
                                                              parse_prompt)
from agent_lightning.environments.filesystem.words import EXTENSIONS, POOLS, WORDS, Draw, split_of
from agent_lightning.errors import UserError

__all__ = [
    "EXTENSIONS", "MAX_CALLS_PER_TURN", "MAX_TASKS", "POOLS", "TEMPLATES", "TIERS", "WORDS", "Draw",
    "FilesystemEnvironment", "Noted", "Solution", "Spec", "Template", "Turns", "changed", "end_tree", "files_under",
    "final_answer", "folders_of", "generate", "parse_prompt", "reference_solution", "same_text", "split_of",
    "split_rows",
]

# Every template, by name, in rotation order within each tier (split_rows relies on this order).
TEMPLATES: dict[str, Template] = {t.name: t for t in (*TIER_1, *TIER_2, *TIER_3)}
TIERS = {tier: [t.name for t in TEMPLATES.values() if t.tier == tier] for tier in (1, 2, 3)}
MAX_TASKS = {"train": 10_000, "dev": 500, "test": 500}


def generate(name: str, rng: random.Random, pool: tuple[str, ...]) -> dict[str, Any]:
    """One task row (without id and solution) of template `name`."""
    return TEMPLATES[name].row(rng, pool)


def split_rows(split: str, size: int, seed: int, pool: tuple[str, ...]) -> list[dict[str, Any]]:
    """The task rows `FilesystemEnvironment.tasks(split, size, seed)` holds, with every word drawn from `pool`
    instead of the split's own (the same seed strings, templates and rotation): `pool=POOLS[split]` is the split."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for i in range(size):
        names = TIERS[1 + i % 3]
        name = names[(i // 3 + seed) % len(names)]
        for attempt in range(100):  # a duplicate of an earlier task is drawn again
            row = generate(name, random.Random(f"filesystem:{split}:{seed}:{i}:{attempt}"), pool)
            if (row["prompt"], row["files"]) not in seen:
                break
        else:
            raise UserError(f"filesystem: could not draw {size} distinct {split} tasks; ask for fewer.")
        seen.add((row["prompt"], row["files"]))
        row = {"task_id": f"fs-{split}-{i:05d}", **row}
        row["solution"] = json.dumps(reference_solution(row))
        rows.append(row)
    return rows


def reference_solution(task: dict[str, Any]) -> dict[str, Any]:
    """The calls and final message that solve `task`, from its prompt and starting files alone."""
    return TEMPLATES[task["template"]].solution(task)


# --------------------------------------------------------------------------------------- the environment
@environment("filesystem")
class FilesystemEnvironment(FileToolsEnvironment):
    """File tasks in a sandboxed workspace (create, edit, move, sort, find, count), verified by the end state."""

    has_dev_split = True  # tasks('dev', ...): the dev word pool (words.DEV_WORDS)
    system_prompt = (
        "You work in a workspace folder through the tools read_file, write_file, list_dir, make_dir, move and "
        "delete; paths are relative to the workspace. Do exactly what the user asks, then finish with a short "
        "final message. When asked a question, put only the answer on the last line."
    )

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        """`size` tasks of `split`, deterministic for (split, seed); tiers rotate 1, 2, 3 and templates within a tier."""
        check_split(split, tuple(MAX_TASKS))
        if size > MAX_TASKS[split]:
            raise UserError(f"filesystem: the {split} split has at most {MAX_TASKS[split]} tasks; "
                            f"ask for a size <= {MAX_TASKS[split]}, not {size}.")
        return split_rows(split, size, seed, POOLS[split])

    # Tools: read_file, write_file, list_dir, make_dir, move, delete (inherited from FileToolsEnvironment).

    def _finish(self, final_text: str) -> Outcome:
        expected = json.loads(self.task.get("expected") or "{}")
        tree = expected.get("tree", {})
        start = json.loads(self.task.get("files") or "{}")
        have = self.ws.snapshot()
        checks, targets, credit = {}, [], {}
        for path, want in tree.items():
            if path.endswith("/"):
                name = f"folder {path} exists and is empty"
                checks[name] = path in have
            else:
                name = f"file {path} == expected"
                checks[name] = path in have and same_text(have[path], want)
                if not checks[name] and isinstance(have.get(path), str):
                    credit[name] = text_credit(have[path], want, start.get(path))
            if path not in start or not same_text(start[path], want):  # the task creates or changes it
                targets.append(name)
        extra = sorted(set(have) - set(tree))
        checks["no extra files"] = not extra
        if set(start) - set(tree):  # the task removes (deletes, moves) something
            targets.append("no extra files")
        missing = sorted(p for p in tree if p not in have)
        detail = "; ".join(f for f in (f"extra: {', '.join(extra[:5])}" if extra else "",
                                      f"missing: {', '.join(missing[:5])}" if missing else "") if f)
        outcome = Outcome(checks=checks, detail=detail, targets=targets, credit=credit)
        if "answer" in expected:
            outcome.answer, outcome.expected = final_answer(final_text), expected["answer"]
            checks["answer"] = outcome.answer == outcome.expected
            targets.append("answer")
        outcome.success = all(checks.values())
        return outcome


def same_text(have: str, want: str) -> bool:
    """Exact, except that a single trailing newline more or less is tolerated."""
    return have == want or have == want + "\n" or have + "\n" == want


def word_share(have: str, want: str) -> float:
    """How much of `want` a wrong text `have` got right, word by word: difflib's ratio 2M / (words of both), M the
    words they share in order, each word with the whitespace after it (so a line break in the wrong place costs
    its word). The split loses nothing, so the share is 1.0 only for equal texts; a trailing newline is ignored.
    One garbled word of four: 0.75; the two lines of "a b / c d" swapped: 0.25 (one word keeps its place)."""
    return difflib.SequenceMatcher(None, _words(have), _words(want), autojunk=False).ratio()


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text.removesuffix("\n"))


def text_credit(have: str, want: str, before: str | None) -> float:
    """Partial credit of a wrong file: its `word_share` of the expected text, or for a file the task changes, the
    part of the way from the starting text to the expected one that it went (0 when it is no closer than the start:
    leaving a file to append to as it was earns nothing)."""
    share = word_share(have, want)
    if before is None:
        return share
    start = word_share(before, want)
    return max(0.0, (share - start) / (1 - start)) if start < 1 else 0.0


def final_answer(text: str) -> str:
    """The answer a reply commits to: its last non-empty line, minus an "Answer:" prefix and decoration."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    last = re.sub(r"^(?:the\s+)?(?:final\s+)?answer(?:\s*[:=]|\s+is\b:?)\s*", "", lines[-1] if lines else "", flags=re.I)
    last = last.strip().strip("\"'`*").rstrip(".!").strip().strip("\"'`*")
    return last[2:] if last.startswith("./") else last
