"""Memory in rollouts at the environment level: prompt injection at reset(), `retrieved`, the search_code tool."""

import json

import pytest

from agent_lightning.config import REPO_ROOT, MemorySection
from agent_lightning.env import ToolError
from agent_lightning.memory.context import MEMORY_MARKER, configure
from agent_lightning.memory.sop import SopStore, load_sop_file
from agent_lightning.registry import ENVIRONMENTS, discover


@pytest.fixture
def tools_env():
    discover()
    return ENVIRONMENTS.get("tools").obj


@pytest.fixture
def memory(store):
    SopStore(store.dir).add(load_sop_file(REPO_ROOT / "data/sops/sum_file.yaml"))
    yield configure(MemorySection(store=str(store.dir), inject=True, code_k=2, sop_k=1, reranker=""))
    configure(None)


def test_reset_injects_code_and_sops_and_records_them(tools_env, memory):
    task = next(t for t in tools_env.tasks("train", 8, 0) if t.get("template") == "sum_file")
    env = tools_env()
    text = env.reset(**task, question=task["prompt"])
    assert text.startswith(MEMORY_MARKER) and "Code that may help:\n[1] (" in text
    assert "Procedures that worked before:\nSOP: Sum the numbers of a file into another file" in text
    assert env.retrieved["query"] == task["prompt"]
    assert len(env.retrieved["code"]) == 2 and env.retrieved["sops"][0]["name"].startswith("Sum the numbers")
    for hit in env.retrieved["code"]:
        assert f"{hit['path']}:{hit['start_line']}-{hit['end_line']}" in text
    first_file = next(iter(json.loads(task["files"])))
    assert env.ws.read_file(first_file) == json.loads(task["files"])[first_file]  # the workspace is still built


def test_search_code_tool_returns_cited_chunks(tools_env, memory):
    env = tools_env()
    env.reset(**tools_env.tasks("train", 1, 0)[0])
    result = env.search_code(query="nth fibonacci number")
    assert result.startswith("[1] (") and "pkg/mathy.py:1-6 fibonacci" in result
    assert env.calls[-1]["name"] == "search_code" and env.calls[-1]["ok"]
    with pytest.raises(ToolError, match="give a query"):
        env.search_code(query="  ")


def test_without_memory_reset_and_tools_are_unchanged(tools_env):
    configure(None)
    env = tools_env()
    assert env.reset(**tools_env.tasks("train", 1, 0)[0]) is None and env.retrieved is None
    with pytest.raises(ToolError, match="no code memory is configured"):
        env.search_code(query="anything")
    configure(MemorySection(store="/nonexistent/memory-store", inject=True, reranker=""))
    try:
        assert env.reset(**tools_env.tasks("train", 1, 0)[0]) is None  # a missing store injects nothing
        assert env.retrieved == {"query": env.task["prompt"], "code": [], "sops": []}
    finally:
        configure(None)
