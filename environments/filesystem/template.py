"""What a `filesystem` task template is: `Template`, the base class each template subclasses, and the helpers its
generator and its reference solver share.

A template is one class in a tier module (one_step.py, read_write.py, several_steps.py) with its prompt and two
methods side by side:

    class DeleteFile(Template):
        name, tier = "delete_file", 1
        prompt = "Delete the file {path}."

        def generate(self, d: Draw) -> Spec: ...                     # starting files and expected end state
        def solve(self, p: Params, files: Files) -> Solution: ...    # the calls (per turn) and the final message

`Template.row(rng, pool)` turns a generated `Spec` into a task row (without id and solution);
`Template.solution(task)` runs the reference solver on a row. The solver only sees what an agent sees: the
parameters parsed back from the prompt (so a prompt that leaves something out cannot be solved) and the starting
files. Not covered: the order templates rotate in and the environment itself (see the package's __init__.py).
"""

from __future__ import annotations

import json
import random
import re
import string
from dataclasses import dataclass
from typing import Any

from agent_lightning.environments.filesystem.words import Draw

Params = dict[str, str]  # a prompt's format-string fields
Files = dict[str, str]  # {path: text}
Turns = list[list[dict[str, Any]]]  # the calls of each assistant turn; calls in one turn need no result of another
Solution = tuple[Turns, str]  # (turns, final message)
MAX_CALLS_PER_TURN = 3  # longer runs of independent calls are split: a turn stays under ~170 generated tokens


# ------------------------------------------------------------------------------------------- generation
@dataclass
class Spec:
    """One generated task: the prompt's parameters, the starting files, and the expected end state."""

    params: Params
    files: Files
    tree: dict[str, str]
    answer: str | None = None


def folders_of(files: Files) -> set[str]:
    """Every folder that holds a file of `files`, at any depth."""
    out = set()
    for path in files:
        parts = path.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def files_under(files: Files, folder: str) -> list[str]:
    return sorted(p for p in files if p.startswith(folder + "/"))


def end_tree(files: Files, folders: set[str]) -> dict[str, str]:
    """The workspace snapshot for these files and folders: folders with nothing below them appear as 'path/'."""
    tree = dict(files)
    occupied = folders_of(files) | {f.rsplit("/", 1)[0] for f in folders if "/" in f}
    tree.update({f"{f}/": "" for f in folders if f not in occupied})
    return tree


def changed(files: Files, add: Files | None = None, remove: tuple[str, ...] = (),
            new_folders: tuple[str, ...] = (), gone_folders: tuple[str, ...] = ()) -> dict[str, str]:
    """Expected tree after adding/overwriting `add`, removing files and creating or deleting folders."""
    out = {p: t for p, t in files.items() if p not in remove}
    out.update(add or {})
    folders = (folders_of(files) | set(new_folders) | folders_of(add or {})) - set(gone_folders)
    return end_tree(out, folders)


# ------------------------------------------------------------------------------------- reference solving
def call(name: str, **arguments: str) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


class Noted(list):
    """A turn's calls with a short note the assistant writes before them: what the next write changes, said where
    the policy reads it last (a copy of the file it just read otherwise wins over the instruction it read long
    before: without it, the SFT policy wrote back the old text and left out the appended line)."""

    def __init__(self, note: str, calls: list[dict[str, Any]]):
        super().__init__(calls)
        self.note = note


def explore(files: Files, folder: str) -> Turns:
    """list_dir on `folder` and every subfolder below it, one turn per depth: a folder is only known once its
    parent has been listed, so an agent cannot list it earlier."""
    subs = sorted({f for f in folders_of(files) if f.startswith(folder + "/")})
    depth = folder.count("/")
    levels = [[folder]] + [[s for s in subs if s.count("/") == depth + k] for k in range(1, 4)]
    return [[call("list_dir", path=sub) for sub in level] for level in levels if level]


def parse_prompt(fmt: str, prompt: str) -> Params:
    """Invert a template's format string: the parameters a prompt was made from (a repeated field must repeat)."""
    pattern, seen = "", set()
    for literal, name, _, _ in string.Formatter().parse(fmt):
        pattern += re.escape(literal)
        if name:
            pattern += f"(?P={name})" if name in seen else f"(?P<{name}>.+?)"
            seen.add(name)
    match = re.fullmatch(pattern, prompt, flags=re.S)
    if match is None:
        raise ValueError(f"prompt does not match its template: {prompt!r}")
    return match.groupdict()


# ---------------------------------------------------------------------------------------------- Template
class Template:
    """One task template: a subclass sets `name`, `tier` and `prompt` and defines `generate` and `solve`."""

    name: str
    tier: int  # 1: one step, 2: read then write, 3: several steps
    prompt: str  # a format string over Spec.params; solve() gets them back by parsing the prompt

    def generate(self, d: Draw) -> Spec:
        """Starting files and expected end state, every name and line drawn from `d`."""
        raise NotImplementedError

    def solve(self, p: Params, files: Files) -> Solution:
        """The calls, grouped per assistant turn, and the final message, from the prompt's parameters `p` and the
        starting `files` alone."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, tier={self.tier})"

    def row(self, rng: random.Random, pool: tuple[str, ...]) -> dict[str, Any]:
        """One task row (without id and solution)."""
        spec = self.generate(Draw(rng, pool))
        expected: dict[str, Any] = {"tree": dict(sorted(spec.tree.items()))}
        if spec.answer is not None:
            expected["answer"] = spec.answer
        return {
            "prompt": self.prompt.format(**spec.params),
            "files": json.dumps(dict(sorted(spec.files.items()))),
            "tier": self.tier,
            "template": self.name,
            "expected": json.dumps(expected),
        }

    def solution(self, task: dict[str, Any]) -> dict[str, Any]:
        """The row's `solution`: `calls` in order, `turns` (calls per assistant turn, at most MAX_CALLS_PER_TURN),
        `notes` when a turn says something before its calls, and the `final` message."""
        solved, final = self.solve(parse_prompt(self.prompt, task["prompt"]), json.loads(task["files"]))
        turns, notes = [], []
        for turn in solved:
            for i in range(0, len(turn), MAX_CALLS_PER_TURN):
                turns.append(turn[i:i + MAX_CALLS_PER_TURN])
                notes.append(getattr(turn, "note", "") if i == 0 else "")
        solution = {"calls": [c for turn in turns for c in turn], "turns": [len(turn) for turn in turns],
                    "final": final}
        return {**solution, "notes": notes} if any(notes) else solution
