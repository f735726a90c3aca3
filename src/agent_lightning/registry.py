"""One registry mechanism for rewards, environments and training algorithms.

A plugin is a function (reward) or class (environment) registered by name with a decorator:

    from agent_lightning import reward

    @reward("exact_answer", weight=1.0)
    def exact_answer(completions, environments, **kwargs): ...

    @algorithm("my_algo")
    def my_algo(stage): ...            # train/algorithm.py: the contract

Where plugins are found, in order:
  1. the built-ins: every module of the packages `agent_lightning.environments` and `agent_lightning.rewards`
     (the repository's `environments/` and `rewards/` folders, installed inside the package) and the module
     `agent_lightning.train.algorithms` (sft, grpo, rft), imported as ordinary modules; names starting with "_"
     are helpers and are skipped;
  2. every `.py` file in extra folders: `--plugin-dir DIR` (repeatable) and `AGENT_LIGHTNING_PLUGIN_DIRS`
     (os.pathsep-separated), each folder scanned as a whole (both kinds may live in it);
  3. the entry-point groups `agent_lightning.rewards` / `agent_lightning.environments` /
     `agent_lightning.algorithms` of installed packages;
  4. on demand, a dotted path `package.module:function` or a file path `path/to/file.py:function`.

Two plugins with the same name from different files are an error naming both files. A plugin file that
fails to import is an error naming the file, the line and the exception: never a silent skip.

Not covered: sandboxing plugin code (plugins are trusted code, like a training script).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import pkgutil
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_lightning.errors import UserError, close_matches

ENV_PLUGIN_DIRS = "AGENT_LIGHTNING_PLUGIN_DIRS"


@dataclass
class Plugin:
    """A registered reward function or environment class."""

    kind: str
    name: str
    obj: Any
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.obj) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """Name -> Plugin for one kind ('reward', 'environment' or 'algorithm')."""

    def __init__(self, kind: str, package: str, entry_point_group: str):
        self.kind = kind
        self.package = package  # where the built-ins live
        self.entry_point_group = entry_point_group
        self._plugins: dict[str, Plugin] = {}

    # -- registration ----------------------------------------------------------------------------
    def add(self, name: str, obj: Any, **meta: Any) -> Plugin:
        source = _source_of(obj)
        existing = self._plugins.get(name)
        if existing is not None and existing.source != source:
            raise UserError(
                f"two {self.kind}s are named '{name}': {existing.source} and {source}. Rename one of them."
            )
        plugin = Plugin(self.kind, name, obj, source, meta)
        self._plugins[name] = plugin
        return plugin

    def __contains__(self, name: str) -> bool:
        return name in self._plugins

    def names(self) -> list[str]:
        return sorted(self._plugins)

    def all(self) -> list[Plugin]:
        return [self._plugins[n] for n in self.names()]

    # -- lookup ----------------------------------------------------------------------------------
    def get(self, spec: str) -> Plugin:
        """A registered name, `package.module:function`, or `path/file.py[:function]`."""
        discover()
        if spec in self._plugins:
            return self._plugins[spec]
        if ":" in spec or spec.endswith(".py"):
            return self._load_path(spec)
        where = [f"built-ins ({self.package})", *map(str, _extra_dirs()), f"entry points '{self.entry_point_group}'"]
        known = ", ".join(self.names()) or "none"
        raise UserError(
            f"unknown {self.kind} '{spec}'.{close_matches(spec, self.names())} Known: {known}. "
            f"Looked in: {'; '.join(where)}."
        )

    def _load_path(self, spec: str) -> Plugin:
        target, _, attr = spec.rpartition(":") if ":" in spec else (spec, "", "")
        if target.endswith(".py"):
            module = import_plugin_file(Path(target))
        else:
            try:
                module = importlib.import_module(target)
            except ImportError as exc:
                raise UserError(f"{self.kind} '{spec}': cannot import module '{target}' ({exc}).") from None
        registered = [p for p in self._plugins.values() if p.source == _module_file(module)]
        if not attr:
            if len(registered) == 1:
                return registered[0]
            raise UserError(f"{self.kind} '{spec}': name the {self.kind} inside it, e.g. '{spec}:my_{self.kind}'.")
        for plugin in registered:
            if getattr(plugin.obj, "__name__", None) == attr or plugin.name == attr:
                return plugin
        obj = getattr(module, attr, None)
        if obj is None:
            raise UserError(f"{self.kind} '{spec}': '{target}' has no attribute '{attr}'.")
        return self.add(attr, obj)


def _source_of(obj: Any) -> str:
    try:
        return str(Path(inspect.getfile(obj)).resolve())
    except (TypeError, OSError):
        return repr(obj)


def _module_file(module: Any) -> str:
    return str(Path(module.__file__).resolve()) if getattr(module, "__file__", None) else repr(module)


REWARDS = Registry("reward", "agent_lightning.rewards", "agent_lightning.rewards")
ENVIRONMENTS = Registry("environment", "agent_lightning.environments", "agent_lightning.environments")
ALGORITHMS = Registry("algorithm", "agent_lightning.train.algorithms", "agent_lightning.algorithms")


# ------------------------------------------------------------------------------------------ decorators


def reward(name: str | None = None, *, weight: float = 1.0, on_error: str = "zero"):
    """Register a reward function under `name` (default: the function's name)."""

    def wrap(fn):
        REWARDS.add(name or fn.__name__, fn, weight=weight, on_error=on_error)
        return fn

    return wrap


def environment(name: str | None = None):
    """Register an environment class under `name` (default: the class name)."""

    def wrap(cls):
        cls.env_name = name or cls.__name__
        ENVIRONMENTS.add(cls.env_name, cls)
        return cls

    return wrap


def algorithm(name: str | None = None, *, section: str | None = None):
    """Register a training algorithm under `name` (default: the function's name): a callable that takes a
    `train.algorithm.Stage` (see that module for the contract). `section` names its config section, shown by
    `algos list` (built-ins: sft, grpo, rft; a plugin's settings live under `algorithms.<name>`)."""

    def wrap(fn):
        ALGORITHMS.add(name or fn.__name__, fn, section=section or f"algorithms.{name or fn.__name__}")
        return fn

    return wrap


# ------------------------------------------------------------------------------------------ discovery

_extra_plugin_dirs: list[Path] = []
_imported_files: set[Path] = set()
_discovered = False


def add_plugin_dirs(dirs: list[str | Path]) -> None:
    """Add folders to scan (the CLI's --plugin-dir)."""
    global _discovered
    for d in dirs:
        path = Path(d).expanduser().resolve()
        if not path.is_dir():
            raise UserError(f"--plugin-dir {d}: not a folder.")
        if path not in _extra_plugin_dirs:
            _extra_plugin_dirs.append(path)
            _discovered = False


def _extra_dirs() -> list[Path]:
    env_dirs = [Path(p).expanduser().resolve() for p in os.environ.get(ENV_PLUGIN_DIRS, "").split(os.pathsep) if p]
    for d in env_dirs:
        if not d.is_dir():
            raise UserError(f"{ENV_PLUGIN_DIRS}: '{d}' is not a folder.")
    return [*_extra_plugin_dirs, *[d for d in env_dirs if d not in _extra_plugin_dirs]]


def import_plugin_file(path: Path) -> Any:
    """Import one plugin file; an import failure becomes a one-line UserError with file and line."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise UserError(f"plugin file not found: {path}.")
    module_name = "agent_lightning_plugins." + "_".join(path.with_suffix("").parts[-2:])
    if path in _imported_files and module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except UserError:
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure in user code becomes a clear message
        sys.modules.pop(module_name, None)
        line = _failing_line(exc, path)
        raise UserError(f"{path}{line}: cannot import plugin: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    _imported_files.add(path)
    return module


def _failing_line(exc: BaseException, path: Path) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f":{exc.lineno}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == path:
            return f":{frame.lineno}"
    return ""


def _import_builtins(name: str) -> None:
    """Import a built-in module, or every public module and sub-package of a built-in package (their decorators
    register them)."""
    module = importlib.import_module(name)
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if not info.name.startswith("_"):
            importlib.import_module(f"{name}.{info.name}")


def _scan(folder: Path) -> None:
    if not folder.is_dir():
        return
    for file in sorted(folder.glob("*.py")):
        if not file.name.startswith("_"):
            import_plugin_file(file)


def _load_entry_points() -> None:
    for registry in (REWARDS, ENVIRONMENTS, ALGORITHMS):
        for ep in importlib.metadata.entry_points(group=registry.entry_point_group):
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001
                raise UserError(
                    f"entry point '{ep.name}' ({ep.value}) in group {registry.entry_point_group} failed to load: "
                    f"{type(exc).__name__}: {exc}".splitlines()[0]
                ) from None
            if ep.name not in registry and callable(obj):
                registry.add(ep.name, obj)


def discover() -> None:
    """Import every plugin source once (idempotent; re-runs after new --plugin-dir folders are added)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    try:
        _import_builtins(ENVIRONMENTS.package)
        _import_builtins(REWARDS.package)
        _import_builtins(ALGORITHMS.package)
        for folder in _extra_dirs():
            _scan(folder)
        _load_entry_points()
    except BaseException:
        _discovered = False
        raise
