"""Load a run configuration: YAML (a file, or the name of a shipped recipe), `--set` overrides, strict typing.

    cfg = load_config("configs/default.yaml", overrides=["grpo.learning_rate=1e-5"])
    cfg = load_config("tiny")            # a shipped recipe by name (package data agent_lightning.configs)

Validation is strict: an unknown key, a value of the wrong type or a missing file raises `UserError` with one
line naming the key and what is valid (with a close-match suggestion for typos); then each section validates
its meaning (config/sections.py).

Not covered here: whether a named reward or environment exists (checked by the registry when the run starts).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from agent_lightning.config.sections import Config, RewardSpec
from agent_lightning.errors import UserError, close_matches

DEFAULT_CONFIG_NAME = "default"


def shipped_configs() -> list[str]:
    """Names of the recipes shipped in the package (`tiny`, `default`, ...)."""
    return sorted(p.name[:-5] for p in resources.files("agent_lightning.configs").iterdir() if p.name.endswith(".yaml"))


def resolve_config_path(path: str | Path | None) -> Path:
    """A YAML file to load: `path` when it is a file, else the shipped recipe of that name (`tiny` or
    `tiny.yaml`), else a one-line error listing the shipped names. None: the embedded default."""
    if path is not None and Path(path).is_file():
        return Path(path)
    name = Path(str(path)).name.removesuffix(".yaml") if path is not None else DEFAULT_CONFIG_NAME
    shipped = resources.files("agent_lightning.configs") / f"{name}.yaml"
    if shipped.is_file() and (path is None or Path(str(path)).parent in (Path("."), Path("configs"))):
        return Path(str(shipped))
    raise UserError(f"config file not found: {path}.{close_matches(name, shipped_configs())} Pass a YAML file or "
                    f"a shipped recipe: {', '.join(shipped_configs())}.")




def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return `value` converted to the annotated type `tp`, or raise UserError naming `key`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except UserError:
                continue
        raise UserError(f"{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__}).")
    if dataclasses.is_dataclass(tp):
        if isinstance(tp, type) and isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise UserError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}.")
        return _build(tp, value, key)
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str) and item_tp is str:
            value = [v.strip() for v in value.split(",") if v.strip()] if "," in value else [value]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{key}: expected a list, got {value!r}.")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{key}: expected a mapping, got {value!r}.")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise UserError(f"{key}: expected true or false, got {value!r}.")
    if tp in (int, float):
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if is_number and (tp is float or isinstance(value, int)):
            return tp(value)
        if isinstance(value, str):
            try:
                return tp(value)
            except ValueError:
                pass
        raise UserError(f"{key}: expected {'an integer' if tp is int else 'a number'}, got {value!r}.")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"{key}: expected a string, got {value!r}.")
    raise TypeError(f"unsupported config type {tp!r} at {key}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    if cls is RewardSpec:  # {name, weight, ..., key: value}: unknown keys are the reward's own arguments
        extra = {k: v for k, v in data.items() if k not in names}
        data = {k: v for k, v in data.items() if k in names}
        if extra:
            data["kwargs"] = {**(data.get("kwargs") or {}), **extra}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise UserError(
                f"unknown config key '{full}'.{close_matches(str(key), names)} "
                f"Valid keys{' under ' + prefix if prefix else ''}: {', '.join(names)}."
            )
        kwargs[key] = _coerce(value, hints[key], full)
    built = cls(**kwargs)
    validate = getattr(built, "validate", None)
    if validate is not None:
        validate()
    return built


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected section.key=value, e.g. --set grpo.learning_rate=1e-5.")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def _set_path(data: dict[str, Any], path: list[str], value: Any, item: str) -> None:
    node: Any = data
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"--set {item!r}: '{part}' is not an index of {'.'.join(path[:i])} (0..{len(node)-1}).")
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise UserError(f"--set {item!r}: '{'.'.join(path[: i + 1])}' is a value, not a section.")
    last = path[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise UserError(f"--set {item!r}: '{last}' is not an index (0..{len(node)-1}).")
        node[int(last)] = value
    else:
        node[last] = value


def _set_reward_by_name(data: dict[str, Any], path: list[str], value: Any, item: str) -> bool:
    """`--set rewards.NAME.weight=2` addresses a reward by name, not index."""
    if path[0] != "rewards" or len(path) != 3 or path[1].isdigit():
        return False
    for spec in data.get("rewards", []):
        if isinstance(spec, dict) and spec.get("name") == path[1]:
            spec[path[2]] = value
            return True
    names = [s.get("name") for s in data.get("rewards", []) if isinstance(s, dict)]
    raise UserError(f"--set {item!r}: no reward named '{path[1]}' in this config.{close_matches(path[1], names)}")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load YAML (a file or a shipped recipe's name; default: the embedded default), apply `key=value` overrides,
    validate and return a Config."""
    path = resolve_config_path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}).") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of sections at the top level.")
    data.pop("algo", None)  # a run's config.yaml records what ran it: `--config RUN_DIR/config.yaml` reruns it
    for item in overrides or []:
        keys, value = _parse_override(item)
        if not _set_reward_by_name(data, keys, value, item):
            _set_path(data, keys, value, item)
    return _build(Config, data, "")


def iter_help(cls: type = Config, prefix: str = "") -> typing.Iterator[tuple[str, str, str]]:
    """Yield (key, type, help) for every field, depth first: what `--help-config` prints."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from iter_help(tp, key + ".")
        else:
            yield key, _type_name(tp), f.metadata.get("help", "")
