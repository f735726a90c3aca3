"""`eval`: greedy rollouts through the same tools and sandbox, and the report built from verified outcomes."""

import json
from types import SimpleNamespace

import pytest

from agent_lightning.config import load_config
from agent_lightning.envs import Outcome
from agent_lightning.errors import UserError
from conftest import run_cli


@pytest.mark.slow
def test_cli_reports_json_with_tiers_for_a_tool_environment():
    result = run_cli("eval", "--config", "configs/tiny.yaml", "--env", "filesystem", "--limit", "6", "--json",
                     "--set", "grpo.max_completion_length=16", "--set", "env.max_turns=2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tasks"] == 6 and report["env"] == "filesystem" and report["split"] == "test"
    assert report["success_rate"] == 0.0  # a random tiny model solves nothing
    assert set(report["by_tier"]) == {"1", "2", "3"} and sum(t["n"] for t in report["by_tier"].values()) == 6
    assert sum(t["n"] for t in report["by_template"].values()) == 6 and "create_file" in report["by_template"]
    assert set(report["rewards"]) == {"exact_answer"} and report["dev_source"] is None

    result = run_cli("eval", "--config", "configs/tiny.yaml", "--env", "filesystem", "--split", "dev", "--limit", "3",
                     "--json", "--set", "grpo.max_completion_length=16", "--set", "env.max_turns=2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["split"] == "dev" and report["dev_source"] == "held_out"
    assert [t["task_id"] for t in report["per_task"]] == ["fs-dev-00000", "fs-dev-00001", "fs-dev-00002"]

    result = run_cli("eval", "--config", "configs/tiny.yaml", "--env", "filesystem", "--tiers", "3", "--limit", "2",
                     "--json", "--set", "grpo.max_completion_length=16", "--set", "env.max_turns=2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tasks"] == 2 and report["tiers"] == [3] and set(report["by_tier"]) == {"3"}


def test_tiers_argument_is_a_comma_list_or_a_one_line_error():
    import argparse

    from agent_lightning.cli import _tiers

    assert _tiers("3") == [3] and _tiers("1,2") == [1, 2]
    for bad in ("x", ",", "1;2"):
        with pytest.raises(argparse.ArgumentTypeError, match="tier numbers separated by commas"):
            _tiers(bad)


def test_a_scripted_policy_that_calls_the_reference_solution_scores_full_marks(tiny_policy, monkeypatch):
    """Replace generation by the reference trajectory (rendered in Mistral's format): the loop must execute the
    calls in the sandbox, feed results back, stop on the final answer, and verify the episode as a success."""
    from agent_lightning import evaluate as ev
    from agent_lightning.rollout import episodes as rollouts
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    model, tokenizer = tiny_policy
    cfg = load_config("configs/tiny.yaml", ["env.name=filesystem", "env.test_size=6", "env.max_turns=40"])
    tasks = {t["prompt"]: json.loads(t["solution"]) for t in ENVIRONMENTS.get("filesystem").obj.tasks("test", 6, 0)}

    class Scripted:
        """A generation session that replays each task's reference turns (several calls in one turn where the
        solution groups them), reading only the text the rollout loop feeds it."""

        def __init__(self, model, tokenizer, sampling=None):
            self.seen = {}

        def generate(self, segments, max_new_tokens):
            replies = {}
            for i, segment in segments.items():
                self.seen[i] = self.seen.get(i, "") + tokenizer.decode(segment)
                prompt = next(p for p in tasks if p in self.seen[i])
                done = self.seen[i].count("[TOOL_CALLS]")  # turns played so far (a turn may carry several results)
                sizes, calls = tasks[prompt]["turns"], tasks[prompt]["calls"]
                if done < len(sizes):
                    turn = calls[sum(sizes[:done]):sum(sizes[:done + 1])]
                    reply = f"[TOOL_CALLS] {json.dumps(turn)}"
                else:
                    reply = tasks[prompt]["final"]
                ids = tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
                self.seen[i] += tokenizer.decode(ids)
                replies[i] = (ids, True)
            return replies

    monkeypatch.setattr(rollouts, "CachedSession", Scripted)
    report = ev.evaluate(cfg, "test", model=model, tokenizer=tokenizer, batch_size=3)
    assert report["tasks"] == 6 and report["success_rate"] == 1.0, report
    assert report["tool_error_rate"] == 0.0 and report["mean_tool_calls"] >= 1
    assert report["rewards"]["exact_answer"] == 1.0
    assert report["mean_turns"] < report["mean_tool_calls"] + 1  # grouped calls: fewer turns than calls + final


def test_summary_counts_tool_errors_and_tiers():
    from agent_lightning.evaluate import summarize

    rows = [{"task_id": "a", "tier": 1, "template": "copy",
             "outcome": Outcome(success=True, tool_calls=2, tool_errors=1, turns=3), "rewards": {"r": 1.0}},
            {"task_id": "b", "tier": 2, "template": "copy",
             "outcome": Outcome(success=False, tool_calls=2, tool_errors=0, turns=1), "rewards": {"r": None}}]
    report = summarize(rows, {"r": 2.0})
    assert report["success_rate"] == 0.5 and report["tool_error_rate"] == 0.25 and report["mean_turns"] == 2.0
    assert report["rewards"] == {"r": 1.0} and report["reward"] == 2.0
    assert report["by_tier"]["1"]["success_rate"] == 1.0 and report["by_tier"]["2"]["n"] == 1
    assert report["by_template"] == {"copy": {**report["by_template"]["copy"], "success_rate": 0.5, "n": 2}}
    assert report["per_task"] == [{"task_id": "a", "tier": 1, "template": "copy", "samples": 1, "successes": 1},
                                  {"task_id": "b", "tier": 2, "template": "copy", "samples": 1, "successes": 0}]
    assert "pass_at_k" not in report


def test_sampled_summary_reports_pass_at_k_per_task_and_tier():
    from agent_lightning.evaluate import summarize, task_successes

    def episode(task, tier, ok):
        return {"task_id": task, "tier": tier, "template": None, "outcome": Outcome(success=ok), "rewards": {}}

    rows = ([episode("a", 1, ok) for ok in (True, False, False, False)] +      # 1 of 4
            [episode("b", 1, ok) for ok in (False, False, False, False)] +     # 0 of 4
            [episode("c", 2, ok) for ok in (True, True, True, True)])          # 4 of 4
    report = summarize(rows, {}, samples=4)
    assert report["n"] == 3 and report["success_rate"] == pytest.approx(5 / 12)
    assert report["pass_at_k"]["1"] == pytest.approx(5 / 12)
    assert report["pass_at_k"]["2"] == pytest.approx((0.5 + 0 + 1) / 3)  # a: 1 - C(3,2)/C(4,2) = 1/2
    assert report["pass_at_k"]["4"] == pytest.approx(2 / 3)
    assert report["by_tier"]["1"]["pass_at_k"]["4"] == 0.5 and report["by_tier"]["2"]["n"] == 1
    assert task_successes(report) == {"a": 0.25, "b": 0.0, "c": 1.0}


@pytest.mark.slow
def test_a_missing_adapter_is_one_line():
    result = run_cli("eval", "--config", "configs/tiny.yaml", "--adapter", "/nonexistent/adapter", "--limit", "1")
    assert result.returncode == 2 and "--adapter /nonexistent/adapter: no adapter_config.json" in result.stderr


pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def test_evaluating_the_training_model_merges_its_adapter_and_leaves_it_as_it_was(tiny_policy):
    """eval at the end of a stage folds a LoRA adapter into the weights for speed; afterwards the model must
    compute exactly what it did before (adapter unmerged, base weights restored, training mode back)."""
    import copy

    import torch

    from agent_lightning.evaluate import evaluate

    model, tokenizer = tiny_policy
    model = copy.deepcopy(model)
    torch.manual_seed(0)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)  # a trained-looking adapter: merging changes the weights
    probe = torch.tensor([tokenizer("[INST] Create the file a.txt [/INST]", add_special_tokens=False)["input_ids"]])
    model.eval()
    with torch.no_grad():
        before = model(input_ids=probe).logits
    model.train()
    cfg = load_config("configs/tiny.yaml", ["env.name=filesystem", "env.max_turns=1", "eval.max_new_tokens=4"])
    report = evaluate(cfg, "test", limit=2, model=model, tokenizer=tokenizer)
    assert report["tasks"] == 2
    assert model.training and not any(getattr(m, "merged", False) for m in model.modules())
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=probe).logits, before, atol=1e-4)


@pytest.mark.slow
def test_sampled_eval_reports_pass_at_k_and_pairs_with_an_earlier_report(tmp_path):
    greedy = run_cli("eval", "--config", "tiny", "--limit", "4", "--json")
    assert greedy.returncode == 0, greedy.stderr[-2000:]
    (tmp_path / "greedy.json").write_text(greedy.stdout)
    sampled = run_cli("eval", "--config", "tiny", "--limit", "4", "--samples", "2", "--temperature", "1.0",
                      "--compare", str(tmp_path / "greedy.json"), "--json")
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    report = json.loads(sampled.stdout)
    assert report["samples"] == 2 and report["temperature"] == 1.0 and set(report["pass_at_k"]) == {"1", "2"}
    assert [t["samples"] for t in report["per_task"]] == [2] * 4
    assert report["vs_compare"]["n"] == 4
    assert report["pass_at_k"]["2"] >= report["pass_at_k"]["1"] == report["success_rate"]


def test_the_dev_split_is_the_environments_own_or_training_tasks_that_training_never_uses():
    from agent_lightning.config import load_config
    from agent_lightning.envs import environment_class
    from agent_lightning.evaluate import dev_source, split_tasks
    from agent_lightning.registry import discover

    discover()
    cfg = load_config("default", ["env.train_size=300", "env.dev_size=60"])
    assert dev_source(environment_class(cfg), cfg) == "held_out"  # what an eval report records as its dev_source
    tiny = load_config("tiny")
    assert dev_source(environment_class(tiny), tiny) == "train"  # arithmetic has no dev split of its own
    env_cls = environment_class(cfg)
    train, dev, test = (split_tasks(env_cls, cfg, s) for s in ("train", "dev", "test"))
    assert env_cls.has_dev_split and len(dev) == 60 and dev == env_cls.tasks("dev", 60, cfg.env.seed)
    assert {t["tier"] for t in dev} == {1, 2, 3}  # dev mirrors test's tiers
    assert all(t["task_id"].startswith("fs-dev-") for t in dev)

    old = load_config("default", ["env.train_size=300", "env.dev_size=60", "env.dev_source=train"])
    train, dev, test = (split_tasks(env_cls, old, s) for s in ("train", "dev", "test"))
    ids = [{t["task_id"] for t in rows} for rows in (train, dev, test)]
    assert len(ids[1]) == 60 and not ids[0] & ids[1] and not ids[1] & ids[2]
    assert {t["tier"] for t in train} == {1, 2} and {t["tier"] for t in dev} == {1, 2, 3}
    assert all(t["task_id"].startswith("fs-train-") for t in dev)
    with pytest.raises(UserError, match="not one of train, dev, test"):
        split_tasks(env_cls, cfg, "valid")
    with pytest.raises(UserError, match="env.dev_source"):
        load_config("default", ["env.dev_source=fresh"])
