"""Tier 2 of the `filesystem` tasks, read then write: copy_file, upper_case, reverse_lines, line_count, fix_config,
merge_files.

Each template is one class: its prompt, `generate` (starting files and expected end state) and `solve` (the
reference solution, from the prompt and the starting files), in that order; `TIER_2` lists them in rotation
order. The first four share `source_and_target` (a source file and a new target path) and `read_then_write` (read
the source, write a function of its text). Not covered: turning them into task rows (template.py) and the tier
rotation (the package's __init__.py).
"""

from __future__ import annotations

from collections.abc import Callable

from agent_lightning.environments.filesystem.template import (Files, Noted, Params, Solution, Spec, Template, call,
                                                              changed)
from agent_lightning.environments.filesystem.words import EXTENSIONS, Draw


def source_and_target(d: Draw, ext: str = ".txt") -> tuple[str, str, dict[str, str]]:
    """A source file (with distractors around it) and a new path, in its folder or another one, to write to."""
    src = d.file(d.folder(), ext)
    files = {src: d.text(ext, 2, 6)}
    d.distractors(files)
    dst = d.file(d.rng.choice([src.rsplit("/", 1)[0], d.folder()]), ext)
    return src, dst, files


def read_then_write(p: Params, files: Files, fn: Callable[[str], str], done: str) -> Solution:
    """Read {src}, then write fn(its text) to {dst}; the final message is `done` followed by {dst}."""
    return [[call("read_file", path=p["src"])], [call("write_file", path=p["dst"], content=fn(files[p["src"]]))]], \
        f"{done} {p['dst']}."


class CopyFile(Template):
    name, tier = "copy_file", 2
    prompt = "Copy the file {src} to {dst}: same content, and keep {src}."

    def generate(self, d: Draw) -> Spec:
        src, dst, files = source_and_target(d, d.rng.choice(EXTENSIONS))
        return Spec({"src": src, "dst": dst}, files, changed(files, {dst: files[src]}))

    def solve(self, p: Params, files: Files) -> Solution:
        return read_then_write(p, files, lambda text: text, f"Copied {p['src']} to")


class UpperCase(Template):
    name, tier = "upper_case", 2
    prompt = "Write the text of {src} in upper case into a new file {dst}."

    def generate(self, d: Draw) -> Spec:
        src, dst, files = source_and_target(d)
        return Spec({"src": src, "dst": dst}, files, changed(files, {dst: files[src].upper()}))

    def solve(self, p: Params, files: Files) -> Solution:
        return read_then_write(p, files, str.upper, "Wrote the upper-case text to")


class ReverseLines(Template):
    name, tier = "reverse_lines", 2
    prompt = "Write the lines of {src} in reverse order (last line first) into a new file {dst}."

    def generate(self, d: Draw) -> Spec:
        src, dst, files = source_and_target(d)
        reverse = "\n".join(reversed(files[src].splitlines())) + "\n"
        return Spec({"src": src, "dst": dst}, files, changed(files, {dst: reverse}))

    def solve(self, p: Params, files: Files) -> Solution:
        return read_then_write(p, files, lambda text: "\n".join(reversed(text.splitlines())) + "\n",
                               "Wrote the lines in reverse order to")


class LineCount(Template):
    name, tier = "line_count", 2
    prompt = ("Count the lines of {src} and write the result into a new file {dst} as one line `{name}: N`, "
              "where N is the number of lines.")

    def generate(self, d: Draw) -> Spec:
        src, dst, files = source_and_target(d, d.rng.choice(EXTENSIONS))
        name = src.rsplit("/", 1)[-1]
        count = f"{name}: {len(files[src].splitlines())}"
        return Spec({"src": src, "dst": dst, "name": name}, files, changed(files, {dst: count}))

    def solve(self, p: Params, files: Files) -> Solution:
        return read_then_write(p, files, lambda text: f"{p['name']}: {len(text.splitlines())}",
                               "Wrote the line count to")


class FixConfig(Template):
    name, tier = "fix_config", 2
    prompt = "In the config file {path}, change the value of `{key}` to `{value}`; leave every other line as it is."

    def generate(self, d: Draw) -> Spec:
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
        return Spec({"path": path, "key": key, "value": new}, files, changed(files, {path: fixed}))

    def solve(self, p: Params, files: Files) -> Solution:
        lines = [f"{p['key']}={p['value']}" if line.split("=", 1)[0].strip() == p["key"] else line
                 for line in files[p["path"]].splitlines()]
        write = Noted(f"Changing `{p['key']}` to `{p['value']}`, every other line as it is.",
                      [call("write_file", path=p["path"], content="\n".join(lines) + "\n")])
        return [[call("read_file", path=p["path"])], write], f"Set {p['key']} to {p['value']} in {p['path']}."


class MergeFiles(Template):
    name, tier = "merge_files", 2
    prompt = "Create the file {dst} containing the lines of {first} followed by the lines of {second}."

    def generate(self, d: Draw) -> Spec:
        folder = d.folder()
        first, second = d.file(folder), d.file(d.rng.choice([folder, d.folder()]))
        files = {first: d.text(), second: d.text()}
        d.distractors(files)
        dst = d.file(d.rng.choice([folder, d.folder()]))
        return Spec({"dst": dst, "first": first, "second": second}, files,
                    changed(files, {dst: files[first] + files[second]}))

    def solve(self, p: Params, files: Files) -> Solution:
        merged = "".join(text if text.endswith("\n") else text + "\n"
                         for text in (files[p["first"]], files[p["second"]]))
        reads = [call("read_file", path=p["first"]), call("read_file", path=p["second"])]
        return [reads, [call("write_file", path=p["dst"], content=merged)]], f"Wrote {p['dst']}."


TIER_2: tuple[Template, ...] = (CopyFile(), UpperCase(), ReverseLines(), LineCount(), FixConfig(), MergeFiles())
