"""`eval`: greedy rollouts through the same tools and sandbox, and the report built from verified outcomes."""

import json

import pytest

from agent_lightning.config import load_config
from agent_lightning.env import Outcome
from conftest import run_cli


def test_cli_reports_json_with_tiers_for_a_tool_environment():
    result = run_cli("eval", "--config", "configs/tiny.yaml", "--env", "filesystem", "--limit", "6", "--json",
                     "--set", "grpo.max_completion_length=16", "--set", "env.max_turns=2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tasks"] == 6 and report["env"] == "filesystem" and report["split"] == "test"
    assert report["success_rate"] == 0.0  # a random tiny model solves nothing
    assert set(report["by_tier"]) == {"1", "2", "3"} and sum(t["n"] for t in report["by_tier"].values()) == 6
    assert set(report["rewards"]) == {"exact_answer"}


def test_a_scripted_policy_that_calls_the_reference_solution_scores_full_marks(tiny_policy):
    """Replace generation by the reference trajectory (rendered in Mistral's format): the loop must execute the
    calls in the sandbox, feed results back, stop on the final answer, and verify the episode as a success."""
    from agent_lightning.evaluate import evaluate
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    model, tokenizer = tiny_policy
    cfg = load_config("configs/tiny.yaml", ["env.name=filesystem", "env.test_size=6", "env.max_turns=40"])
    tasks = {t["prompt"]: json.loads(t["solution"]) for t in ENVIRONMENTS.get("filesystem").obj.tasks("test", 6, 0)}

    class Scripted:
        device = "cpu"

        def eval(self):
            return self

        def generate(self, input_ids, attention_mask, **kwargs):
            import torch

            rows = []
            for ids in input_ids.tolist():
                text = tokenizer.decode(ids)
                prompt = next(p for p in tasks if p in text)
                done = text.count("[TOOL_RESULTS]")
                calls, final = tasks[prompt]["calls"], tasks[prompt]["final"]
                reply = (f"[TOOL_CALLS] {json.dumps([calls[done]])}" if done < len(calls) else final)
                rows.append(ids + tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
            width = max(map(len, rows))
            return torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r for r in rows])

    report = evaluate(cfg, "test", model=Scripted(), tokenizer=tokenizer, batch_size=3)
    assert report["tasks"] == 6 and report["success_rate"] == 1.0, report
    assert report["tool_error_rate"] == 0.0 and report["mean_tool_calls"] >= 1
    assert report["rewards"]["exact_answer"] == 1.0


def test_summary_counts_tool_errors_and_tiers():
    from agent_lightning.evaluate import summarize

    rows = [{"tier": 1, "outcome": Outcome(success=True, tool_calls=2, tool_errors=1, turns=3), "rewards": {"r": 1.0}},
            {"tier": 2, "outcome": Outcome(success=False, tool_calls=2, tool_errors=0, turns=1), "rewards": {"r": None}}]
    report = summarize(rows, {"r": 2.0})
    assert report["success_rate"] == 0.5 and report["tool_error_rate"] == 0.25 and report["mean_turns"] == 2.0
    assert report["rewards"] == {"r": 1.0} and report["reward"] == 2.0
    assert report["by_tier"]["1"]["success_rate"] == 1.0 and report["by_tier"]["2"]["n"] == 1


def test_a_missing_adapter_is_one_line():
    result = run_cli("eval", "--config", "configs/tiny.yaml", "--adapter", "/nonexistent/adapter", "--limit", "1")
    assert result.returncode == 2 and "--adapter /nonexistent/adapter: no adapter_config.json" in result.stderr


pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
