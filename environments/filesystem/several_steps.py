"""Tier 3 of the `filesystem` tasks, several steps: sort_by_extension, prefix_move, index_tree, and two questions
answered in the final message, find_word and count_files.

Each template is one class: its prompt, `generate` (starting files, expected end state, and the answer for
questions) and `solve` (the reference solution, from the prompt and the starting files), in that order; `TIER_3`
lists them in rotation order. `tree_under` fills a folder and its subfolders; the solvers of the last three walk
them with `explore` (one list_dir turn per depth). Not covered: turning them into task rows (template.py) and the
tier rotation (the package's __init__.py).
"""

from __future__ import annotations

from agent_lightning.environments.filesystem.template import (Files, Params, Solution, Spec, Template, call,
                                                              changed, end_tree, explore, files_under, folders_of)
from agent_lightning.environments.filesystem.words import EXTENSIONS, Draw


def tree_under(d: Draw, folder: str, lo: int, hi: int) -> dict[str, str]:
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


class SortByExtension(Template):
    name, tier = "sort_by_extension", 3
    prompt = ("Sort the files in {src}/ by extension: move every .txt file into {txt}/, every .md file into {md}/ "
              "and every .csv file into {csv}/, keeping their names. Leave files with other extensions where they are.")

    def generate(self, d: Draw) -> Spec:
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
        sorted_out = tuple(p for p in files if p.endswith((".txt", ".md", ".csv")) and p.rsplit("/", 1)[0] == src)
        return Spec(params, files, changed(files, moved, remove=sorted_out))

    def solve(self, p: Params, files: Files) -> Solution:
        targets = {".txt": p["txt"], ".md": p["md"], ".csv": p["csv"]}
        here = sorted(f for f in files if f.rsplit("/", 1)[0] == p["src"])
        act = [call("make_dir", path=t) for t in targets.values()]
        for path in here:
            ext = "." + path.rsplit(".", 1)[-1]
            if ext in targets:
                act.append(call("move", src=path, dst=f"{targets[ext]}/{path.rsplit('/', 1)[-1]}"))
        return [[call("list_dir", path=p["src"])], act], f"Sorted the files of {p['src']}/ by extension."


class PrefixMove(Template):
    name, tier = "prefix_move", 3
    prompt = ("Move every file whose name starts with `{prefix}` from {first}/ and {second}/ into the folder {dst}/, "
              "keeping their names, then delete the folder {first}/ (it is empty by then).")

    def generate(self, d: Draw) -> Spec:
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
        return Spec(params, files, changed(files, moved, remove=tuple(moving), gone_folders=(first,)))

    def solve(self, p: Params, files: Files) -> Solution:
        act = [call("make_dir", path=p["dst"])]
        for folder in (p["first"], p["second"]):
            for path in sorted(f for f in files if f.rsplit("/", 1)[0] == folder):
                name = path.rsplit("/", 1)[-1]
                if name.startswith(p["prefix"]):
                    act.append(call("move", src=path, dst=f"{p['dst']}/{name}"))
        act.append(call("delete", path=p["first"]))
        lists = [call("list_dir", path=p["first"]), call("list_dir", path=p["second"])]
        return [lists, act], f"Moved the {p['prefix']} files into {p['dst']}/ and deleted {p['first']}/."


class IndexTree(Template):
    name, tier = "index_tree", 3
    prompt = ("Write into a new file {dst} the path of every file under {folder}/ (subfolders included), one per "
              "line in alphabetical order, each path written from the workspace root (starting with {folder}/).")

    def generate(self, d: Draw) -> Spec:
        folder = d.folder()
        files = tree_under(d, folder, 3, 8)
        d.distractors(files)
        dst = d.file(d.rng.choice(["", d.folder()]))
        index = "\n".join(sorted(files_under(files, folder))) + "\n"
        return Spec({"dst": dst, "folder": folder}, files, changed(files, {dst: index}))

    def solve(self, p: Params, files: Files) -> Solution:
        index = "\n".join(files_under(files, p["folder"])) + "\n"
        return explore(files, p["folder"]) + [[call("write_file", path=p["dst"], content=index)]], f"Wrote {p['dst']}."


class FindWord(Template):
    name, tier = "find_word", 3
    prompt = ("Which file under {folder}/ contains the word `{word}`? Reply with its path from the workspace root "
              "(it starts with {folder}/) on the last line.")

    def generate(self, d: Draw) -> Spec:
        word = d.word()
        d.banned = (word,)  # no other name or text may contain it, not even inside a longer word
        folder = d.folder()
        files = tree_under(d, folder, 3, 7)
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

    def solve(self, p: Params, files: Files) -> Solution:
        turns = explore(files, p["folder"])
        turns.append([call("read_file", path=path) for path in files_under(files, p["folder"])])
        found = [path for path in files_under(files, p["folder"]) if p["word"] in files[path]]
        return turns, f"The word {p['word']} is in:\n{found[0]}" if found else "No file contains it."


class CountFiles(Template):
    name, tier = "count_files", 3
    prompt = ("How many files are there under {folder}/, counting those in its subfolders (folders themselves do "
              "not count)? Reply with the number on the last line.")

    def generate(self, d: Draw) -> Spec:
        folder = d.folder()
        files = tree_under(d, folder, 3, 12)
        d.distractors(files)
        count = str(len(files_under(files, folder)))
        return Spec({"folder": folder}, files, end_tree(files, folders_of(files)), answer=count)

    def solve(self, p: Params, files: Files) -> Solution:
        count = len(files_under(files, p["folder"]))
        return explore(files, p["folder"]), f"Files under {p['folder']}/, subfolders included:\n{count}"


TIER_3: tuple[Template, ...] = (SortByExtension(), PrefixMove(), IndexTree(), FindWord(), CountFiles())
