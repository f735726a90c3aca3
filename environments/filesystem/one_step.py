"""Tier 1 of the `filesystem` tasks, one step each: create_file, append_line, make_folder, delete_file, rename_file.

Each template is one class: its prompt, `generate` (starting files and expected end state) and `solve` (the
reference solution, from the prompt and the starting files), in that order; `TIER_1` lists them in rotation
order. Not covered: turning them into task rows (template.py) and the tier rotation (the package's __init__.py).
"""

from __future__ import annotations

from agent_lightning.environments.filesystem.template import (Files, Noted, Params, Solution, Spec, Template, call,
                                                              changed, folders_of)
from agent_lightning.environments.filesystem.words import EXTENSIONS, Draw


class CreateFile(Template):
    name, tier = "create_file", 1
    prompt = "Create the file {path} containing exactly: {text}"

    def generate(self, d: Draw) -> Spec:
        files: dict[str, str] = {}
        d.distractors(files, 0, 5)
        folder = d.rng.choice(sorted(folders_of(files)) + [d.folder()])
        path, text = d.file(folder), d.line()
        return Spec({"path": path, "text": text}, files, changed(files, {path: text}))

    def solve(self, p: Params, files: Files) -> Solution:
        return [[call("write_file", path=p["path"], content=p["text"])]], f"Created {p['path']}."


class AppendLine(Template):
    name, tier = "append_line", 1
    prompt = "Add the line `{line}` at the end of {path}, keeping its current lines."

    def generate(self, d: Draw) -> Spec:
        path = d.file(d.folder())
        files = {path: d.text()}
        d.distractors(files)
        line = d.line()
        return Spec({"path": path, "line": line}, files, changed(files, {path: files[path] + line + "\n"}))

    def solve(self, p: Params, files: Files) -> Solution:
        old = files[p["path"]]
        new = old + ("" if old.endswith("\n") or not old else "\n") + p["line"] + "\n"
        write = Noted(f"Adding `{p['line']}` after its last line.", [call("write_file", path=p["path"], content=new)])
        return [[call("read_file", path=p["path"])], write], f"Added the line to {p['path']}."


class MakeFolder(Template):
    name, tier = "make_folder", 1
    prompt = "Create an empty folder at {path}/."

    def generate(self, d: Draw) -> Spec:
        files: dict[str, str] = {}
        d.distractors(files, 0, 5)
        parent = d.rng.choice(sorted(folders_of(files)) + [""])
        path = f"{parent}/{d.word()}" if parent else d.word()
        return Spec({"path": path}, files, changed(files, new_folders=(path,)))

    def solve(self, p: Params, files: Files) -> Solution:
        return [[call("make_dir", path=p["path"])]], f"Created the folder {p['path']}/."


class DeleteFile(Template):
    name, tier = "delete_file", 1
    prompt = "Delete the file {path}."

    def generate(self, d: Draw) -> Spec:
        folder = d.folder()
        files = {d.file(folder, d.rng.choice(EXTENSIONS)): d.text() for _ in range(d.rng.randint(2, 4))}
        d.distractors(files)
        path = d.rng.choice([p for p in files if p.startswith(folder + "/")])
        return Spec({"path": path}, files, changed(files, remove=(path,)))

    def solve(self, p: Params, files: Files) -> Solution:
        return [[call("delete", path=p["path"])]], f"Deleted {p['path']}."


class RenameFile(Template):
    name, tier = "rename_file", 1
    prompt = "Rename the file {src} to {dst}."

    def generate(self, d: Draw) -> Spec:
        folder, ext = d.folder(), d.rng.choice(EXTENSIONS)
        src, dst = d.file(folder, ext), d.file(folder, ext)
        files = {src: d.text(ext), d.file(folder): d.text()}
        d.distractors(files)
        return Spec({"src": src, "dst": dst}, files, changed(files, {dst: files[src]}, remove=(src,)))

    def solve(self, p: Params, files: Files) -> Solution:
        return [[call("move", src=p["src"], dst=p["dst"])]], f"Renamed {p['src']} to {p['dst']}."


TIER_1: tuple[Template, ...] = (CreateFile(), AppendLine(), MakeFolder(), DeleteFile(), RenameFile())
