"""The package's layers point one way and no module imports itself back through others.

core (errors, config, registry, chat, sandbox, envs, distributed) <- engine (rollout, rewarding, evaluate, memory,
observe, policy) <- built-in plugins (rewards, environments) <- train / serve <- cli. Every import statement
counts, including those inside functions (a lazy import is still a dependency), read from the source with `ast`
so that nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import agent_lightning
import agent_lightning.environments
import agent_lightning.rewards

PACKAGE = "agent_lightning"
LAYERS = {  # first component below agent_lightning -> rank (an import may only go to the same rank or lower)
    "errors": 0, "config": 0, "registry": 0, "chat": 0, "sandbox": 0, "envs": 0, "distributed": 0, "__init__": 0,
    "rollout": 1, "rewarding": 1, "evaluate": 1, "memory": 1, "observe": 1, "policy": 1, "stats": 1,
    "rewards": 2, "environments": 2,
    "train": 3, "serve": 3,
    "cli": 4, "__main__": 4,
}
NAMES = {0: "core", 1: "engine", 2: "built-in plugins", 3: "train/serve", 4: "cli"}


def _module_files() -> dict[str, Path]:
    roots = {PACKAGE: Path(agent_lightning.__file__).parent,
             f"{PACKAGE}.rewards": Path(agent_lightning.rewards.__file__).parent,
             f"{PACKAGE}.environments": Path(agent_lightning.environments.__file__).parent}
    files = {}
    for prefix, root in roots.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join([prefix, *parts])] = path
    return files


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports (a `from pkg import sub` names the submodule when it is one)."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith(PACKAGE) and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    files = _module_files()
    return {name: _imports(name, path, set(files)) for name, path in files.items()}


def _rank(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def test_every_module_has_a_layer():
    unknown = sorted(m for m in _graph() if (m.split(".") + ["__init__"])[1] not in LAYERS)
    assert not unknown, f"add these to LAYERS in tests/test_layers.py (and docs/architecture.md): {unknown}"


def test_imports_point_down_the_layers():
    upward = [f"{m} ({NAMES[_rank(m)]}) imports {t} ({NAMES[_rank(t)]})"
              for m, targets in _graph().items() for t in targets
              if t != PACKAGE and _rank(t) > _rank(m)]
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path):
    """The walk itself works: lazy imports inside functions count, and a relative import resolves."""
    (tmp_path / "a.py").write_text("def f():\n    from agent_lightning.train import pipeline\n")
    (tmp_path / "b.py").write_text("from . import c\n")
    known = {"agent_lightning.train", "agent_lightning.train.pipeline", "agent_lightning.memory.c"}
    assert _imports("agent_lightning.memory.a", tmp_path / "a.py", known) == {"agent_lightning.train.pipeline"}
    assert _imports("agent_lightning.memory.b", tmp_path / "b.py", known) == {"agent_lightning.memory.c"}
    assert _rank("agent_lightning.train.pipeline") > _rank("agent_lightning.memory.a")


def test_environment_reset_reads_no_module_level_state():
    """The memory context reaches environments as an argument (envs.environment_factory), not a module global."""
    base = Path(agent_lightning.__file__).parent / "envs" / "base.py"
    tree = ast.parse(base.read_text())
    assigned_globals = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                        if isinstance(t, ast.Name)}
    mutable = {name for name in assigned_globals if not name.isupper()} - {"log"}
    assert not mutable, f"module-level state in envs/base.py: {mutable}"
    assert not any(isinstance(n, ast.Global) for n in ast.walk(tree))
    graph = _graph()
    assert not any(t.startswith(f"{PACKAGE}.memory") for t in graph[f"{PACKAGE}.envs.base"] | graph[f"{PACKAGE}.envs"])
