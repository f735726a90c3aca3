"""Memory in rollouts at the environment level: prompt injection at reset(), `retrieved`, the search_code tool."""

import json

import pytest

from importlib import resources

from agent_lightning.config import MemorySection
from agent_lightning.envs import ToolError, environment_factory
from agent_lightning.memory import MEMORY_MARKER
from agent_lightning.memory.context import MemoryContext
from agent_lightning.memory.sop import SopStore, load_sop_file
from agent_lightning.registry import ENVIRONMENTS, discover


@pytest.fixture
def tools_env():
    discover()
    return ENVIRONMENTS.get("tools").obj


@pytest.fixture
def memory(store):
    SopStore(store.dir).add(load_sop_file(resources.files("agent_lightning.data") / "sops" / "sum_file.yaml"))
    return MemoryContext.for_run(MemorySection(store=str(store.dir), inject=True, code_k=2, sop_k=1, reranker=""))


def test_reset_injects_code_and_sops_and_records_them(tools_env, memory):
    task = next(t for t in tools_env.tasks("train", 8, 0) if t.get("template") == "sum_file")
    env = environment_factory(tools_env, memory)()
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
    env = environment_factory(tools_env, memory)()
    env.reset(**tools_env.tasks("train", 1, 0)[0])
    result = env.search_code(query="nth fibonacci number")
    assert result.startswith("[1] (") and "pkg/mathy.py:1-6 fibonacci" in result
    assert env.calls[-1]["name"] == "search_code" and env.calls[-1]["ok"]
    with pytest.raises(ToolError, match="give a query"):
        env.search_code(query="  ")


def test_without_memory_reset_and_tools_are_unchanged(tools_env, memory):
    env = tools_env()
    assert env.reset(**tools_env.tasks("train", 1, 0)[0]) is None and env.retrieved is None
    with pytest.raises(ToolError, match="no code memory is configured"):
        env.search_code(query="anything")
    missing = MemoryContext.for_run(MemorySection(store="/nonexistent/memory-store", inject=True, reranker=""))
    env = environment_factory(tools_env, missing)()
    assert env.reset(**tools_env.tasks("train", 1, 0)[0]) is None  # a missing store injects nothing
    assert env.retrieved == {"query": env.task["prompt"], "code": [], "sops": []}


def test_memory_reaches_only_the_environments_built_with_it(tools_env, memory):
    """No process-wide state: an environment built without the run's context sees no memory, even while another
    run's environments use theirs."""
    with_memory, plain = environment_factory(tools_env, memory)(), tools_env()
    task = tools_env.tasks("train", 1, 0)[0]
    assert with_memory.reset(**task).startswith(MEMORY_MARKER)
    assert plain.reset(**task) is None and plain.retrieved is None


def test_sft_demonstrations_carry_the_memory_their_evaluation_will_see(tools_env, memory):
    from agent_lightning.train.sft_data import environment_demonstrations

    plain = environment_demonstrations(tools_env, "train", 4, 0)
    with_memory = environment_demonstrations(tools_env, "train", 4, 0, memory=memory)
    assert [d["task_id"] for d in plain] == [d["task_id"] for d in with_memory] and len(plain) == 4
    for a, b in zip(plain, with_memory):
        user_a, user_b = (next(m["content"] for m in d["messages"] if m["role"] == "user") for d in (a, b))
        assert MEMORY_MARKER not in user_a and user_b.startswith(user_a + MEMORY_MARKER)
        assert "Procedures that worked before:" in user_b
        assert a["messages"][-1] == b["messages"][-1]  # the same verified trajectory after the prompt
