"""`filesystem`: file tasks in a sandboxed workspace, verified by the files left behind (and an answer, for questions).

The policy works through the six file tools of `FileToolsEnvironment` (read_file, write_file, list_dir,
make_dir, move, delete). Sixteen task templates in three tiers, one third of the tasks each:
  1. one step:        create_file, append_line, make_folder, delete_file, rename_file
  2. read, then write: copy_file, upper_case, reverse_lines, line_count, fix_config, merge_files
  3. several steps:   sort_by_extension, prefix_move, index_tree, find_word (answer), count_files (answer)

    rows = FilesystemEnvironment.tasks("test", 100, seed=0)
    reference_solution(rows[0])      # {"calls": [{"name": ..., "arguments": {...}}, ...], "turns": [1, 3], "final": "..."}

Task rows: `task_id`, `prompt`, `files` (JSON {path: text}, the starting workspace, distractor files included),
`tier`, `template`, `expected` (JSON {"tree": {path: text, "empty/folder/": ""}, "answer": "..." for questions})
and `solution` (the reference solver's trajectory, usable as an SFT demonstration: `calls` in order, `turns` the
number of calls made together in each assistant turn, since calls that do not need each other's results go in one
turn, at most MAX_CALLS_PER_TURN, `notes` where a turn says something before its calls (append_line and
fix_config name the change before the write: `Noted`), and the `final` message).

Splits: the word vocabulary is split into disjoint train and test pools by a stable hash (zlib.crc32), and every
file name, folder name and line of content is built from its split's pool, so the splits share no name and no
line. Tasks are deterministic for (split, seed), and a size-n list is a prefix of a larger one. A split serves
at most `MAX_TASKS[split]` tasks (far fewer than the distinct combinations); larger sizes raise a UserError.

Verification reads the workspace after the episode: one check per expected path (exact text, except that a
single trailing newline more or less is tolerated), one check that there is nothing else (no stray file or empty
folder), and for questions one check of the answer: the last non-empty line of the final message, with an
"Answer:" prefix, quotes, backticks, a trailing period and a leading "./" removed, compared exactly. The checks
of what the task changes (a path created or whose text changes, "nothing else" when the task removes something,
the answer) are the outcome's `targets`: partial credit (`outcome.progress`) counts those, not the files the
episode only had to leave alone.

The reference solver reads the parameters back from the prompt (each template's prompt is a format string, so
this also checks that the prompt states everything the task needs) and the starting files from `files`.
Not covered: binary files, links and permissions (the sandbox refuses links; see agent_lightning.sandbox).
"""

from __future__ import annotations

import json
import random
import re
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent_lightning import environment
from agent_lightning.envs import SPLITS, Outcome, check_split
from agent_lightning.errors import UserError
from agent_lightning.envs.file_tools import FileToolsEnvironment

# ----------------------------------------------------------------------------------------------- vocabulary
WORDS = tuple(dict.fromkeys("""
    apple river stone cloud maple tiger lemon piano rocket garden silver candle planet forest window yellow
    orange purple violet copper marble spider dragon rabbit falcon winter summer autumn spring harbor island
    valley meadow canyon desert glacier breeze thunder shadow mirror ladder basket pencil acorn almond anchor
    anthem arrow aspen badger bakery balcony bamboo banner barley barrel beacon beetle berry bishop blanket
    blossom bonnet border bottle boulder bracket branch bread bridge bronze brook bucket buffalo bundle butter
    button cabin cactus camel canal canvas carpet carrot castle cedar cellar cereal chalk cherry chestnut
    chimney cider cinder circle citrus clover cobalt coconut comet compass coral cotton cradle crater crayon
    cricket crystal cushion cypress daisy dolphin donkey dune eagle ember emerald engine fable feather fence
    fern ferry fiddle fig flame flannel flute fossil fountain freckle frost garlic garnet ginger giraffe goblet
    gondola gourd granite grape gravel guitar gull hammer hamster harvest hazel heron hickory hollow honey
    hornet iris ivory jacket jasmine jelly jigsaw juniper kettle kitten koala lagoon lantern larch lava
    lilac linen lizard lobster locket lotus lumber magnet mango mantle maple marsh meadowlark melon mint
    mitten mosaic moss muffin mustard nectar needle nickel nutmeg oak oasis oatmeal ocean olive onion opal
    orchard orchid otter owl oyster paddle pagoda panda panther paper parrot pasta peach peanut pearl pebble
    pelican pepper pepperoni petal pewter pickle pigeon pillow pine pirate plum pocket pollen pony poppy
    porch potato pottery prairie pretzel puffin pumpkin quail quartz quill quilt radish raft raisin raven
    reef ribbon ridge robin rosemary ruby saddle saffron sage salmon sandal satin scarf seagull sequoia
    shell sherbet shovel shrub silk sketch sled slipper snail sorrel sparrow spinach sponge spruce squash
    squirrel stable starling stove straw strudel sugar sunflower swallow swan sycamore tablet tangerine
    teapot thimble thistle thyme timber toffee tomato topaz torch tortoise towel trellis trumpet tulip tundra
    turnip turtle umbrella velvet vessel village vine walnut walrus wagon weasel whistle willow wren yarn
    yogurt zebra zinnia alder amber apricot arbor attic avocado banjo bayou biscuit bluff bobcat bramble
    brass brick bugle burrow cameo caramel cashew catfish cello chapel cherub chisel cliff clove cobble
    cocoa condor cottage cove coyote crane creek crocus crumpet cumin dahlia delta dingo drum elm falls fjord
    flask flint fudge gazelle geyser gingham glade gorge grove gypsum hatchet hearth hedge helmet hemlock
    hilltop hyacinth igloo inlet jade jaguar kayak kelp kiln knoll lark laurel ledge lemur lichen lynx mallet
    manor maroon meteor mesa mole moor muslin nettle nugget ochre orbit osprey paprika parsley pastry pecan
    penguin pier plaza pond prism puddle quarry rapids rattan redwood rhubarb rook rye scone shale shore
    sienna slate spool spur stump summit tamarind tapestry tavern thicket tinsel trout tulle tweed vanilla
    vista waffle wharf wicker wigwam yacht zephyr
""".split()))


def split_of(word: str) -> str:
    """A word's split, fixed by its hash: about one word in four is a test word."""
    return "test" if zlib.crc32(word.encode()) % 4 == 0 else "train"


POOLS = {split: tuple(w for w in WORDS if split_of(w) == split) for split in SPLITS}
MAX_TASKS = {"train": 10_000, "test": 500}
EXTENSIONS = (".txt", ".md", ".csv", ".log")


# ----------------------------------------------------------------------------------------- task generation
class _Draw:
    """Names and text for one task, drawn from one split's pool: names are never reused within a task."""

    def __init__(self, rng: random.Random, pool: tuple[str, ...]):
        self.rng, self.pool = rng, pool
        self.used: set[str] = set()
        self.banned: tuple[str, ...] = ()  # substrings no name or text may contain (find_word's target)

    def _allowed(self, word: str) -> bool:
        return not any(b in word for b in self.banned)

    def word(self) -> str:
        while True:
            w = self.rng.choice(self.pool)
            if w not in self.used and self._allowed(w):
                self.used.add(w)
                return w

    def folder(self) -> str:
        return self.word() if self.rng.random() < 0.7 else f"{self.word()}/{self.word()}"

    def file(self, folder: str, ext: str = ".txt") -> str:
        return f"{folder}/{self.word()}{ext}" if folder else f"{self.word()}{ext}"

    def line(self, ext: str = ".txt") -> str:
        words = [w for w in self.rng.choices(self.pool, k=self.rng.randint(2, 4)) if self._allowed(w)]
        words = words or [self.word()]
        return ",".join(words) if ext == ".csv" else " ".join(words)

    def text(self, ext: str = ".txt", lo: int = 2, hi: int = 5) -> str:
        """Lines ending with a newline; no two equal, so reversing or merging them is observable."""
        lines: list[str] = []
        n = self.rng.randint(lo, hi)
        while len(lines) < n:
            line = self.line(ext)
            if line not in lines:
                lines.append(line)
        return "\n".join(lines) + "\n"

    def distractors(self, files: dict[str, str], lo: int = 1, hi: int = 4) -> None:
        """Unrelated files in fresh folders (and sometimes at the top level)."""
        folders = [self.folder() for _ in range(self.rng.randint(1, 2))] + [""]
        for _ in range(self.rng.randint(lo, hi)):
            ext = self.rng.choice(EXTENSIONS)
            files[self.file(self.rng.choice(folders), ext)] = self.text(ext)


@dataclass
class Spec:
    """One generated task: the prompt's parameters, the starting files, and the expected end state."""

    params: dict[str, str]
    files: dict[str, str]
    tree: dict[str, str]
    answer: str | None = None


@dataclass(frozen=True)
class Template:
    name: str
    tier: int
    prompt: str  # a format string over Spec.params; the solver parses it back
    make: Callable[[_Draw], Spec] = field(repr=False)


TEMPLATES: dict[str, Template] = {}


def template(name: str, tier: int, prompt: str) -> Callable:
    def register(make: Callable[[_Draw], Spec]) -> Callable[[_Draw], Spec]:
        TEMPLATES[name] = Template(name, tier, prompt, make)
        return make
    return register


def folders_of(files: dict[str, str]) -> set[str]:
    """Every folder that holds a file of `files`, at any depth."""
    out = set()
    for path in files:
        parts = path.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def end_tree(files: dict[str, str], folders: set[str]) -> dict[str, str]:
    """The workspace snapshot for these files and folders: folders with nothing below them appear as 'path/'."""
    tree = dict(files)
    occupied = folders_of(files) | {f.rsplit("/", 1)[0] for f in folders if "/" in f}
    tree.update({f"{f}/": "" for f in folders if f not in occupied})
    return tree


def _changed(files: dict[str, str], add: dict[str, str] | None = None, remove: tuple[str, ...] = (),
             new_folders: tuple[str, ...] = (), gone_folders: tuple[str, ...] = ()) -> dict[str, str]:
    """Expected tree after adding/overwriting `add`, removing files and creating or deleting folders."""
    out = {p: t for p, t in files.items() if p not in remove}
    out.update(add or {})
    folders = (folders_of(files) | set(new_folders) | folders_of(add or {})) - set(gone_folders)
    return end_tree(out, folders)


# Tier 1: one step ---------------------------------------------------------------------------------------
@template("create_file", 1, "Create the file {path} containing exactly: {text}")
def _create_file(d: _Draw) -> Spec:
    files: dict[str, str] = {}
    d.distractors(files, 0, 5)
    folder = d.rng.choice(sorted(folders_of(files)) + [d.folder()])
    path, text = d.file(folder), d.line()
    return Spec({"path": path, "text": text}, files, _changed(files, {path: text}))


@template("append_line", 1, "Add the line `{line}` at the end of {path}, keeping its current lines.")
def _append_line(d: _Draw) -> Spec:
    path = d.file(d.folder())
    files = {path: d.text()}
    d.distractors(files)
    line = d.line()
    return Spec({"path": path, "line": line}, files, _changed(files, {path: files[path] + line + "\n"}))


@template("make_folder", 1, "Create an empty folder at {path}/.")
def _make_folder(d: _Draw) -> Spec:
    files: dict[str, str] = {}
    d.distractors(files, 0, 5)
    parent = d.rng.choice(sorted(folders_of(files)) + [""])
    path = f"{parent}/{d.word()}" if parent else d.word()
    return Spec({"path": path}, files, _changed(files, new_folders=(path,)))


@template("delete_file", 1, "Delete the file {path}.")
def _delete_file(d: _Draw) -> Spec:
    folder = d.folder()
    files = {d.file(folder, d.rng.choice(EXTENSIONS)): d.text() for _ in range(d.rng.randint(2, 4))}
    d.distractors(files)
    path = d.rng.choice([p for p in files if p.startswith(folder + "/")])
    return Spec({"path": path}, files, _changed(files, remove=(path,)))


@template("rename_file", 1, "Rename the file {src} to {dst}.")
def _rename_file(d: _Draw) -> Spec:
    folder, ext = d.folder(), d.rng.choice(EXTENSIONS)
    src, dst = d.file(folder, ext), d.file(folder, ext)
    files = {src: d.text(ext), d.file(folder): d.text()}
    d.distractors(files)
    return Spec({"src": src, "dst": dst}, files, _changed(files, {dst: files[src]}, remove=(src,)))


# Tier 2: read, then write ---------------------------------------------------------------------------------
def _source_and_target(d: _Draw, ext: str = ".txt") -> tuple[str, str, dict[str, str]]:
    src = d.file(d.folder(), ext)
    files = {src: d.text(ext, 2, 6)}
    d.distractors(files)
    dst = d.file(d.rng.choice([src.rsplit("/", 1)[0], d.folder()]), ext)
    return src, dst, files


@template("copy_file", 2, "Copy the file {src} to {dst}: same content, and keep {src}.")
def _copy_file(d: _Draw) -> Spec:
    src, dst, files = _source_and_target(d, d.rng.choice(EXTENSIONS))
    return Spec({"src": src, "dst": dst}, files, _changed(files, {dst: files[src]}))


@template("upper_case", 2, "Write the text of {src} in upper case into a new file {dst}.")
def _upper_case(d: _Draw) -> Spec:
    src, dst, files = _source_and_target(d)
    return Spec({"src": src, "dst": dst}, files, _changed(files, {dst: files[src].upper()}))


@template("reverse_lines", 2, "Write the lines of {src} in reverse order (last line first) into a new file {dst}.")
def _reverse_lines(d: _Draw) -> Spec:
    src, dst, files = _source_and_target(d)
    reverse = "\n".join(reversed(files[src].splitlines())) + "\n"
    return Spec({"src": src, "dst": dst}, files, _changed(files, {dst: reverse}))


@template("line_count", 2, "Count the lines of {src} and write the result into a new file {dst} as one line "
                           "`{name}: N`, where N is the number of lines.")
def _line_count(d: _Draw) -> Spec:
    src, dst, files = _source_and_target(d, d.rng.choice(EXTENSIONS))
    name = src.rsplit("/", 1)[-1]
    count = f"{name}: {len(files[src].splitlines())}"
    return Spec({"src": src, "dst": dst, "name": name}, files, _changed(files, {dst: count}))


@template("fix_config", 2, "In the config file {path}, change the value of `{key}` to `{value}`; "
                           "leave every other line as it is.")
def _fix_config(d: _Draw) -> Spec:
    def value() -> str:
        return str(d.rng.randint(1, 999)) if d.rng.random() < 0.5 else d.word()

    path = d.file(d.folder(), ".cfg")
    config = {d.word(): value() for _ in range(d.rng.randint(3, 6))}
    files = {path: "".join(f"{k}={v}\n" for k, v in config.items())}
    d.distractors(files)
    key, new = d.rng.choice(sorted(config)), value()
    while new == config[key]:
        new = value()
    config[key] = new
    fixed = "".join(f"{k}={v}\n" for k, v in config.items())
    return Spec({"path": path, "key": key, "value": new}, files, _changed(files, {path: fixed}))


@template("merge_files", 2, "Create the file {dst} containing the lines of {first} followed by the lines of {second}.")
def _merge_files(d: _Draw) -> Spec:
    folder = d.folder()
    first, second = d.file(folder), d.file(d.rng.choice([folder, d.folder()]))
    files = {first: d.text(), second: d.text()}
    d.distractors(files)
    dst = d.file(d.rng.choice([folder, d.folder()]))
    return Spec({"dst": dst, "first": first, "second": second}, files,
                _changed(files, {dst: files[first] + files[second]}))


# Tier 3: several steps ------------------------------------------------------------------------------------
def _tree_under(d: _Draw, folder: str, lo: int, hi: int) -> dict[str, str]:
    """lo..hi files under `folder`, spread over the folder itself and up to two levels of subfolders."""
    subs = [folder]
    for _ in range(d.rng.randint(1, 2)):
        subs.append(f"{d.rng.choice(subs)}/{d.word()}")
    files = {}
    for sub in subs:  # every subfolder gets at least one file, so none is left empty
        ext = d.rng.choice(EXTENSIONS)
        files[d.file(sub, ext)] = d.text(ext)
    n = d.rng.randint(max(lo, len(files)), hi)
    while len(files) < n:
        ext = d.rng.choice(EXTENSIONS)
        files[d.file(d.rng.choice(subs), ext)] = d.text(ext)
    return files


@template("sort_by_extension", 3, "Sort the files in {src}/ by extension: move every .txt file into {txt}/, "
                                  "every .md file into {md}/ and every .csv file into {csv}/, keeping their names. "
                                  "Leave files with other extensions where they are.")
def _sort_by_extension(d: _Draw) -> Spec:
    src = d.folder()
    targets = {ext: d.word() for ext in (".txt", ".md", ".csv")}
    files, moved = {}, {}
    for ext, target in targets.items():
        for _ in range(d.rng.randint(1, 3)):
            path = d.file(src, ext)
            files[path] = d.text(ext)
            moved[f"{target}/{path.rsplit('/', 1)[-1]}"] = files[path]
    for _ in range(d.rng.randint(1, 2)):
        files[d.file(src, ".log")] = d.text(".log")
    d.distractors(files)
    params = {"src": src, "txt": targets[".txt"], "md": targets[".md"], "csv": targets[".csv"]}
    return Spec(params, files, _changed(files, moved, remove=tuple(p for p in files if p.endswith(
        (".txt", ".md", ".csv")) and p.rsplit("/", 1)[0] == src)))


@template("prefix_move", 3, "Move every file whose name starts with `{prefix}` from {first}/ and {second}/ into "
                            "the folder {dst}/, keeping their names, then delete the folder {first}/ "
                            "(it is empty by then).")
def _prefix_move(d: _Draw) -> Spec:
    prefix = d.word() + "-"
    first, second, dst = d.word(), d.folder(), d.folder()
    files, moving = {}, []
    for folder, keep in ((first, 0), (second, d.rng.randint(1, 3))):
        for _ in range(d.rng.randint(1, 3)):
            ext = d.rng.choice(EXTENSIONS)
            path = f"{folder}/{prefix}{d.word()}{ext}"
            files[path] = d.text(ext)
            moving.append(path)
        for _ in range(keep):
            files[d.file(folder)] = d.text()
    d.distractors(files)
    moved = {f"{dst}/{p.rsplit('/', 1)[-1]}": files[p] for p in moving}
    params = {"prefix": prefix, "first": first, "second": second, "dst": dst}
    return Spec(params, files, _changed(files, moved, remove=tuple(moving), gone_folders=(first,)))


@template("index_tree", 3, "Write into a new file {dst} the path of every file under {folder}/ (subfolders "
                           "included), one per line in alphabetical order, each path written from the workspace "
                           "root (starting with {folder}/).")
def _index_tree(d: _Draw) -> Spec:
    folder = d.folder()
    files = _tree_under(d, folder, 3, 8)
    d.distractors(files)
    dst = d.file(d.rng.choice(["", d.folder()]))
    index = "\n".join(sorted(files_under(files, folder))) + "\n"
    return Spec({"dst": dst, "folder": folder}, files, _changed(files, {dst: index}))


@template("find_word", 3, "Which file under {folder}/ contains the word `{word}`? Reply with its path from the "
                          "workspace root (it starts with {folder}/) on the last line.")
def _find_word(d: _Draw) -> Spec:
    word = d.word()
    d.banned = (word,)  # no other name or text may contain it, not even inside a longer word
    folder = d.folder()
    files = _tree_under(d, folder, 3, 7)
    d.distractors(files)
    target = d.rng.choice(sorted(files_under(files, folder)))
    lines = files[target].splitlines()
    row = d.rng.randrange(len(lines))
    sep = "," if target.endswith(".csv") else " "
    words = lines[row].split(sep)
    words.insert(d.rng.randint(0, len(words)), word)
    lines[row] = sep.join(words)
    files[target] = "\n".join(lines) + "\n"
    return Spec({"folder": folder, "word": word}, files, end_tree(files, folders_of(files)), answer=target)


@template("count_files", 3, "How many files are there under {folder}/, counting those in its subfolders "
                            "(folders themselves do not count)? Reply with the number on the last line.")
def _count_files(d: _Draw) -> Spec:
    folder = d.folder()
    files = _tree_under(d, folder, 3, 12)
    d.distractors(files)
    count = str(len(files_under(files, folder)))
    return Spec({"folder": folder}, files, end_tree(files, folders_of(files)), answer=count)


def files_under(files: dict[str, str], folder: str) -> list[str]:
    return sorted(p for p in files if p.startswith(folder + "/"))


TIERS = {tier: [t.name for t in TEMPLATES.values() if t.tier == tier] for tier in (1, 2, 3)}


def generate(name: str, rng: random.Random, pool: tuple[str, ...]) -> dict[str, Any]:
    """One task row (without id and solution) of template `name`."""
    tpl = TEMPLATES[name]
    spec = tpl.make(_Draw(rng, pool))
    expected: dict[str, Any] = {"tree": dict(sorted(spec.tree.items()))}
    if spec.answer is not None:
        expected["answer"] = spec.answer
    return {
        "prompt": tpl.prompt.format(**spec.params),
        "files": json.dumps(dict(sorted(spec.files.items()))),
        "tier": tpl.tier,
        "template": name,
        "expected": json.dumps(expected),
    }


# --------------------------------------------------------------------------------------- the environment
@environment("filesystem")
class FilesystemEnvironment(FileToolsEnvironment):
    """File tasks in a sandboxed workspace (create, edit, move, sort, find, count), verified by the end state."""

    system_prompt = (
        "You work in a workspace folder through the tools read_file, write_file, list_dir, make_dir, move and "
        "delete; paths are relative to the workspace. Do exactly what the user asks, then finish with a short "
        "final message. When asked a question, put only the answer on the last line."
    )

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        """`size` tasks of `split`, deterministic for (split, seed); tiers rotate 1, 2, 3 and templates within a tier."""
        check_split(split)
        if size > MAX_TASKS[split]:
            raise UserError(f"filesystem: the {split} split has at most {MAX_TASKS[split]} tasks; "
                            f"ask for a size <= {MAX_TASKS[split]}, not {size}.")
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for i in range(size):
            names = TIERS[1 + i % 3]
            name = names[(i // 3 + seed) % len(names)]
            for attempt in range(100):  # a duplicate of an earlier task is drawn again
                row = generate(name, random.Random(f"filesystem:{split}:{seed}:{i}:{attempt}"), POOLS[split])
                if (row["prompt"], row["files"]) not in seen:
                    break
            else:
                raise UserError(f"filesystem: could not draw {size} distinct {split} tasks; ask for fewer.")
            seen.add((row["prompt"], row["files"]))
            row = {"task_id": f"fs-{split}-{i:05d}", **row}
            row["solution"] = json.dumps(reference_solution(row))
            rows.append(row)
        return rows

    # Tools: read_file, write_file, list_dir, make_dir, move, delete (inherited from FileToolsEnvironment).

    def _finish(self, final_text: str) -> Outcome:
        expected = json.loads(self.task.get("expected") or "{}")
        tree = expected.get("tree", {})
        start = json.loads(self.task.get("files") or "{}")
        have = self.ws.snapshot()
        checks, targets = {}, []
        for path, want in tree.items():
            if path.endswith("/"):
                name = f"folder {path} exists and is empty"
                checks[name] = path in have
            else:
                name = f"file {path} == expected"
                checks[name] = path in have and same_text(have[path], want)
            if path not in start or not same_text(start[path], want):  # the task creates or changes it
                targets.append(name)
        extra = sorted(set(have) - set(tree))
        checks["no extra files"] = not extra
        if set(start) - set(tree):  # the task removes (deletes, moves) something
            targets.append("no extra files")
        missing = sorted(p for p in tree if p not in have)
        detail = "; ".join(f for f in (f"extra: {', '.join(extra[:5])}" if extra else "",
                                      f"missing: {', '.join(missing[:5])}" if missing else "") if f)
        outcome = Outcome(checks=checks, detail=detail, targets=targets)
        if "answer" in expected:
            outcome.answer, outcome.expected = final_answer(final_text), expected["answer"]
            checks["answer"] = outcome.answer == outcome.expected
            targets.append("answer")
        outcome.success = all(checks.values())
        return outcome


def same_text(have: str, want: str) -> bool:
    """Exact, except that a single trailing newline more or less is tolerated."""
    return have == want or have == want + "\n" or have + "\n" == want


def final_answer(text: str) -> str:
    """The answer a reply commits to: its last non-empty line, minus an "Answer:" prefix and decoration."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    last = re.sub(r"^(?:the\s+)?(?:final\s+)?answer(?:\s*[:=]|\s+is\b:?)\s*", "", lines[-1] if lines else "", flags=re.I)
    last = last.strip().strip("\"'`*").rstrip(".!").strip().strip("\"'`*")
    return last[2:] if last.startswith("./") else last


# --------------------------------------------------------------------------------------- reference solver
def parse_prompt(fmt: str, prompt: str) -> dict[str, str]:
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


def _call(name: str, **arguments: str) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def _explore(files: dict[str, str], folder: str) -> list[list[dict[str, Any]]]:
    """list_dir on `folder` and every subfolder below it, one turn per depth: a folder is only known once its
    parent has been listed, so an agent cannot list it earlier."""
    subs = sorted({f for f in folders_of(files) if f.startswith(folder + "/")})
    depth = folder.count("/")
    levels = [[folder]] + [[s for s in subs if s.count("/") == depth + k] for k in range(1, 4)]
    return [[_call("list_dir", path=sub) for sub in level] for level in levels if level]


MAX_CALLS_PER_TURN = 3  # longer runs of independent calls are split: a turn stays under ~170 generated tokens
Turns = list[list[dict[str, Any]]]  # the calls of each assistant turn: calls in one turn do not need each other's results
Solution = tuple[Turns, str]


class Noted(list):
    """A turn's calls with a short note the assistant writes before them: what the next write changes, said where
    the policy reads it last (a copy of the file it just read otherwise wins over the instruction it read long
    before: without it, the SFT policy wrote back the old text and left out the appended line)."""

    def __init__(self, note: str, calls: list[dict[str, Any]]):
        super().__init__(calls)
        self.note = note


def _solve_create_file(p: dict[str, str], files: dict[str, str]) -> Solution:
    return [[_call("write_file", path=p["path"], content=p["text"])]], f"Created {p['path']}."


def _solve_append_line(p: dict[str, str], files: dict[str, str]) -> Solution:
    old = files[p["path"]]
    new = old + ("" if old.endswith("\n") or not old else "\n") + p["line"] + "\n"
    write = Noted(f"Adding `{p['line']}` after its last line.", [_call("write_file", path=p["path"], content=new)])
    return [[_call("read_file", path=p["path"])], write], f"Added the line to {p['path']}."


def _solve_make_folder(p: dict[str, str], files: dict[str, str]) -> Solution:
    return [[_call("make_dir", path=p["path"])]], f"Created the folder {p['path']}/."


def _solve_delete_file(p: dict[str, str], files: dict[str, str]) -> Solution:
    return [[_call("delete", path=p["path"])]], f"Deleted {p['path']}."


def _solve_rename_file(p: dict[str, str], files: dict[str, str]) -> Solution:
    return [[_call("move", src=p["src"], dst=p["dst"])]], f"Renamed {p['src']} to {p['dst']}."


def _transform(p: dict[str, str], files: dict[str, str], fn: Callable[[str], str], done: str) -> Solution:
    return [[_call("read_file", path=p["src"])], [_call("write_file", path=p["dst"], content=fn(files[p["src"]]))]], \
        f"{done} {p['dst']}."


def _solve_copy_file(p: dict[str, str], files: dict[str, str]) -> Solution:
    return _transform(p, files, lambda text: text, f"Copied {p['src']} to")


def _solve_upper_case(p: dict[str, str], files: dict[str, str]) -> Solution:
    return _transform(p, files, str.upper, "Wrote the upper-case text to")


def _solve_reverse_lines(p: dict[str, str], files: dict[str, str]) -> Solution:
    return _transform(p, files, lambda text: "\n".join(reversed(text.splitlines())) + "\n",
                      "Wrote the lines in reverse order to")


def _solve_line_count(p: dict[str, str], files: dict[str, str]) -> Solution:
    return _transform(p, files, lambda text: f"{p['name']}: {len(text.splitlines())}", "Wrote the line count to")


def _solve_fix_config(p: dict[str, str], files: dict[str, str]) -> Solution:
    lines = [f"{p['key']}={p['value']}" if line.split("=", 1)[0].strip() == p["key"] else line
             for line in files[p["path"]].splitlines()]
    write = Noted(f"Changing `{p['key']}` to `{p['value']}`, every other line as it is.",
                  [_call("write_file", path=p["path"], content="\n".join(lines) + "\n")])
    return [[_call("read_file", path=p["path"])], write], f"Set {p['key']} to {p['value']} in {p['path']}."


def _solve_merge_files(p: dict[str, str], files: dict[str, str]) -> Solution:
    merged = "".join(text if text.endswith("\n") else text + "\n" for text in (files[p["first"]], files[p["second"]]))
    reads = [_call("read_file", path=p["first"]), _call("read_file", path=p["second"])]
    return [reads, [_call("write_file", path=p["dst"], content=merged)]], f"Wrote {p['dst']}."


def _solve_sort_by_extension(p: dict[str, str], files: dict[str, str]) -> Solution:
    targets = {".txt": p["txt"], ".md": p["md"], ".csv": p["csv"]}
    here = sorted(f for f in files if f.rsplit("/", 1)[0] == p["src"])
    act = [_call("make_dir", path=t) for t in targets.values()]
    for path in here:
        ext = "." + path.rsplit(".", 1)[-1]
        if ext in targets:
            act.append(_call("move", src=path, dst=f"{targets[ext]}/{path.rsplit('/', 1)[-1]}"))
    return [[_call("list_dir", path=p["src"])], act], f"Sorted the files of {p['src']}/ by extension."


def _solve_prefix_move(p: dict[str, str], files: dict[str, str]) -> Solution:
    act = [_call("make_dir", path=p["dst"])]
    for folder in (p["first"], p["second"]):
        for path in sorted(f for f in files if f.rsplit("/", 1)[0] == folder):
            name = path.rsplit("/", 1)[-1]
            if name.startswith(p["prefix"]):
                act.append(_call("move", src=path, dst=f"{p['dst']}/{name}"))
    act.append(_call("delete", path=p["first"]))
    return [[_call("list_dir", path=p["first"]), _call("list_dir", path=p["second"])], act], f"Moved the {p['prefix']} files into {p['dst']}/ and deleted {p['first']}/."


def _solve_index_tree(p: dict[str, str], files: dict[str, str]) -> Solution:
    index = "\n".join(files_under(files, p["folder"])) + "\n"
    return _explore(files, p["folder"]) + [[_call("write_file", path=p["dst"], content=index)]], f"Wrote {p['dst']}."


def _solve_find_word(p: dict[str, str], files: dict[str, str]) -> Solution:
    turns = _explore(files, p["folder"])
    turns.append([_call("read_file", path=path) for path in files_under(files, p["folder"])])
    found = [path for path in files_under(files, p["folder"]) if p["word"] in files[path]]
    return turns, f"The word {p['word']} is in:\n{found[0]}" if found else "No file contains it."


def _solve_count_files(p: dict[str, str], files: dict[str, str]) -> Solution:
    count = len(files_under(files, p["folder"]))
    return _explore(files, p["folder"]), f"Files under {p['folder']}/, subfolders included:\n{count}"


SOLVERS: dict[str, Callable[[dict[str, str], dict[str, str]], Solution]] = {
    name: globals()[f"_solve_{name}"] for name in TEMPLATES
}


def reference_solution(task: dict[str, Any]) -> dict[str, Any]:
    """The calls and final message that solve `task`, from its prompt and starting files alone."""
    params = parse_prompt(TEMPLATES[task["template"]].prompt, task["prompt"])
    solved, final = SOLVERS[task["template"]](params, json.loads(task["files"]))
    turns, notes = [], []
    for turn in solved:
        for i in range(0, len(turn), MAX_CALLS_PER_TURN):
            turns.append(turn[i:i + MAX_CALLS_PER_TURN])
            notes.append(getattr(turn, "note", "") if i == 0 else "")
    solution = {"calls": [call for turn in turns for call in turn], "turns": [len(turn) for turn in turns],
                "final": final}
    return {**solution, "notes": notes} if any(notes) else solution
