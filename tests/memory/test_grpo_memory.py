"""A real GRPO step (tiny Mistral, `tools` environment, the cached rollout loop) with memory.inject on: the rollouts'
prompts carry the retrieved code and SOPs, and each trace line records exactly what was retrieved.

The trainer builds the run's memory context itself and hands it to the environments (nothing is set up here).
"""

import json
from importlib import resources

import pytest

from agent_lightning.config import load_config
from agent_lightning.memory import MEMORY_MARKER
from agent_lightning.memory.sop import SopStore, load_sop_file

pytestmark = pytest.mark.slow  # trains or loads real models: `pytest -m 'not slow'` skips it


def test_one_grpo_step_records_retrieved_context_in_traces(store, tmp_path):
    from agent_lightning.train.pipeline import run_training

    SopStore(store.dir).add(load_sop_file(resources.files("agent_lightning.data") / "sops" / "sum_file.yaml"))
    cfg = load_config("tiny", [
        "env.name=tools", "env.train_size=8", "env.test_size=4", "grpo.max_steps=1", "grpo.max_completion_length=16",
        "env.max_turns=1", "eval.at_end=false", f"memory.store={store.dir}", "memory.inject=true",
        "memory.code_k=2", "memory.sop_k=1", "memory.reranker="])
    run_dir = run_training(cfg, "grpo", str(tmp_path / "run"))
    records = [json.loads(line) for line in (run_dir / "traces" / "step-00001.jsonl").read_text().splitlines()]
    assert records
    for record in records:
        retrieved = record["retrieved"]
        user = [m for m in record["prompt"] if m["role"] == "user"][-1]["content"]
        assert retrieved["query"] == user.split(MEMORY_MARKER)[0]
        assert len(retrieved["code"]) == 2 and retrieved["sops"][0]["name"].startswith("Sum the numbers")
        assert MEMORY_MARKER in user
        for hit in retrieved["code"]:
            assert f"{hit['path']}:{hit['start_line']}-{hit['end_line']}" in user
