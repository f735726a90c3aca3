"""Training and evaluating your own agent program through the gateway (env.name=agent), end to end.

The real gateway on the loopback, the real `openai` client inside the real example agent
(examples/openai_agent/agent.py) and a misbehaving test agent (tests/assets/agents/flaky_agent.py) as subprocesses,
TRL's real GRPO trainer; nothing is mocked. The policy is the tiny random Mistral (configs/tiny.yaml): its replies
are garbage, so rewards are 0 and what is checked is the mechanics: the run finishes with metrics and traces, the
tokens TRL trained on are the ones the gateway recorded, failures (crash, timeout, no reward, no call) stay with
their rollout and are counted, and `eval` runs the agent greedily.

Run: pytest -q tests/test_agent_env.py   (~70 s on 2 cores; `-m "not slow"` keeps the task-file and unit checks)
"""

from __future__ import annotations

import json
import sys

import pytest

from agent_lightning.config import load_config
from agent_lightning.errors import UserError
from agent_lightning.serve.agent_process import ProcessResult, failure_reason, printed_reward
from agent_lightning.serve.schema import ForcedSampling, parse_chat_request

from conftest import REPO, run_cli

EXAMPLE = REPO / "examples" / "openai_agent"
FLAKY = REPO / "tests" / "assets" / "agents" / "flaky_agent.py"


def agent_config(tmp_path, command: str, tasks, *overrides: str):
    """The tiny config with env.name=agent on `tasks` (a path, or rows written to a file)."""
    if not isinstance(tasks, (str, type(REPO))):
        path = tmp_path / "tasks.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in tasks))
        tasks = path
    return load_config("tiny", ["env.name=agent", f"agent.command={command}", f"agent.tasks={tasks}",
                                "agent.concurrency=4", "grpo.max_completion_length=64", "eval.limit=4",
                                "grpo.report_to=none", *overrides])


def bound(cfg):
    from agent_lightning.envs import environment_class
    from agent_lightning.registry import discover

    discover()
    return environment_class(cfg)


# ---------------------------------------------------------------------------------------------- the task file
def test_task_file_splits_by_content_and_never_shares_it(tmp_path):
    from agent_lightning.environments.agent import load_tasks, split_of

    rows = [{"prompt": f"q{i}", "answer": str(i)} for i in range(200)]
    rows += [{"prompt": "q3", "answer": "3", "task_id": "dup"},  # same content as line 4: kept once
             {"prompt": "fixed", "split": "test"}, {"prompt": "moved", "split": "train"},
             {"prompt": "moved", "split": "test", "task_id": "moved-test"}]  # named test later: test wins
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    tasks = load_tasks(path)
    train, test = tasks["train"], tasks["test"]
    assert len(train) + len(test) == 202 and 20 < len(test) < 70
    assert {r["prompt"] for r in train}.isdisjoint({r["prompt"] for r in test})
    assert all(split_of({"prompt": r["prompt"], "answer": r["answer"]}) == "train" for r in train if r["answer"])
    assert "fixed" in {r["prompt"] for r in test} and "moved" not in {r["prompt"] for r in train}
    assert train[0]["task_id"] == "line-1" or test[0]["task_id"] == "line-1"
    assert json.loads(train[0]["task"])["prompt"] == train[0]["prompt"]  # the agent gets the whole line
    assert load_tasks(path) == tasks  # deterministic


@pytest.mark.parametrize("text, needle", [
    ('{"prompt": "a"}\n{"prompt": "b"\n', "t.jsonl:2: not valid JSON"),
    ('{"prompt": "a"}\n["x"]\n', "t.jsonl:2: expected a JSON object"),
    ('{"answer": "1"}\n', "t.jsonl:1: `prompt` must be a non-empty string"),
    ('{"prompt": "a", "split": "dev"}\n', "t.jsonl:1: `split` must be 'train' or 'test'"),
    ('{"prompt": "a", "task_id": "x"}\n{"prompt": "b", "task_id": "x"}\n', "t.jsonl:2: task_id 'x' is used"),
])
def test_malformed_task_files_are_one_line_errors(tmp_path, text, needle):
    from agent_lightning.environments.agent import load_tasks

    (tmp_path / "t.jsonl").write_text(text)
    with pytest.raises(UserError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_tasks(tmp_path / "t.jsonl")


def test_missing_command_or_task_file_fails_before_loading_weights(tmp_path):
    from agent_lightning.train.pipeline import run_training

    tasks = EXAMPLE / "tasks.jsonl"
    for cfg, needle in ((load_config("tiny", ["env.name=agent", f"agent.tasks={tasks}"]), "needs agent.command"),
                        (load_config("tiny", ["env.name=agent", "agent.command=python x.py"]), "needs agent.tasks"),
                        (load_config("tiny", ["env.name=agent", "agent.command=no-such-agent-program",
                                              f"agent.tasks={tasks}"]), "program 'no-such-agent-program' not found"),
                        (load_config("tiny", ["env.name=agent", "agent.command=python x.py",
                                              f"agent.tasks={tmp_path / 'none.jsonl'}"]), "no task file at")):
        with pytest.raises(UserError, match=needle):
            run_training(cfg, "grpo", output_dir=str(tmp_path / "run"))
    with pytest.raises(UserError, match="sft, rft and apo do not run agent programs"):
        run_training(load_config("tiny", ["env.name=agent", "agent.command=python x.py", f"agent.tasks={tasks}"]),
                     "sft+grpo", output_dir=str(tmp_path / "run"))
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    with pytest.raises(UserError, match="reads its tasks from the file agent.tasks"):
        ENVIRONMENTS.get("agent").obj.tasks("train", 1, 0)


def test_example_tasks_are_what_the_generator_writes(tmp_path):
    import subprocess

    out = tmp_path / "tasks.jsonl"
    subprocess.run([sys.executable, str(EXAMPLE / "make_tasks.py"), "--out", str(out)], check=True,
                   capture_output=True)
    assert out.read_text() == (EXAMPLE / "tasks.jsonl").read_text()
    cfg = agent_config(tmp_path, "python examples/openai_agent/agent.py", EXAMPLE / "tasks.jsonl")
    env_cls = bound(cfg)
    assert len(env_cls.tasks("train", 10_000, 0)) >= 200 and len(env_cls.tasks("test", 10_000, 0)) >= 40


# ---------------------------------------------------------------------------------------------- small pieces
def test_printed_reward_and_failure_reasons():
    assert printed_reward('log\n{"reward": 0.25}\n\n') == 0.25
    assert printed_reward('{"reward": 1}\nlater line') is None
    assert printed_reward('{"reward": NaN}') is None and printed_reward('{"reward": true}') is None
    assert failure_reason(ProcessResult(0)) is None
    crashed = failure_reason(ProcessResult(2, stderr_tail="Traceback\n  File x\nValueError: bad\n"))
    assert crashed.startswith("the agent exited with code 2") and "ValueError: bad" in crashed and "\n" not in crashed
    assert "timed out" in failure_reason(ProcessResult(None, timed_out=True, seconds=3.0), 3)


def test_forced_sampling_replaces_what_the_agent_asks():
    request = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1.5,
                                  "top_p": 0.5, "seed": 3, "max_tokens": 900}, "m")
    forced = ForcedSampling(temperature=0.8, top_p=1.0, max_tokens=64).apply(request)
    assert (forced.temperature, forced.top_p, forced.seed, forced.max_tokens) == (0.8, 1.0, None, 64)
    assert ForcedSampling(0.0, max_tokens=64).apply(parse_chat_request(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}, "m")).max_tokens == 5


# ---------------------------------------------------------------------------------------------- real agents
@pytest.fixture(scope="module")
def tiny_eval_policy():
    from agent_lightning.chat.tool_format import prepare_for_tools
    from agent_lightning.evaluate import load_for_eval

    model, tokenizer = load_for_eval(load_config("tiny"), None)
    prepare_for_tools(tokenizer)
    return model, tokenizer


@pytest.mark.slow
def test_crash_timeout_and_missing_reward_stay_with_their_rollout(tmp_path, tiny_eval_policy):
    from agent_lightning.config import RewardSpec
    from agent_lightning.rewarding import RewardSuite
    from agent_lightning.serve.agents import play_agents, round_counts

    behaviours = ["ok", "crash", "hang", "silent", "silent", "nocall"]
    rows = [{"prompt": f"task {i}", "behaviour": b, "split": "test", **({"answer": "42"} if i == 3 else {})}
            for i, b in enumerate(behaviours)]
    cfg = agent_config(tmp_path, f"python {FLAKY}", rows, "agent.timeout_s=120", "agent.concurrency=6",
                       "env.max_failure_share=1.0")
    env_cls = bound(cfg)
    impatient = bound(agent_config(tmp_path, f"python {FLAKY}", rows, "agent.timeout_s=1.5"))  # for `hang` alone
    model, tokenizer = tiny_eval_policy
    tasks = env_cls.tasks("test", 10, 0)
    rest = play_agents(model, tokenizer, env_cls, tasks[:2] + tasks[3:], max_new_tokens=8)
    episodes = rest[:2] + play_agents(model, tokenizer, impatient, tasks[2:3], max_new_tokens=8) + rest[2:]
    counts = round_counts(episodes)
    assert (counts["rollouts"], counts["crashed"], counts["timed_out"], counts["no_calls"]) == (6, 1, 1, 2)
    assert counts["no_reward"] == 4 and counts["failed"] == 3
    runs = [e.run for e in episodes]
    assert runs[0].process.printed_reward == 0.5 and runs[0].reward == 0.5
    assert runs[2].process.timed_out and runs[2].process.seconds < 15
    call = runs[0].calls[0]  # the agent asked for temperature 1.3, seed 7, 500 tokens: evaluation is greedy
    assert (call.sampling["temperature"], call.sampling["seed"], call.sampling["max_tokens"]) == (0.0, None, 8)
    assert len(episodes[0].completion_ids) == len(call.completion_ids) == sum(episodes[0].generated_mask)
    assert episodes[5].completion_ids == [tokenizer.eos_token_id] and episodes[5].generated_mask == [0]

    suite = RewardSuite.from_config([RewardSpec(name="task_success"), RewardSpec(name="agent_reward")], env_cls,
                                    cfg.env)
    envs = [e.env for e in episodes]
    scores = [fn(prompts=[e.prompt for e in episodes], completions=[e.messages for e in episodes],
                 completion_ids=None, environments=envs) for fn in suite.functions]
    assert scores[1] == [0.5, None, None, None, None, None]  # agent_reward: only the reported one
    assert scores[0] == [0.0] * 6  # 0.5 < agent.success_reward; failures score env.on_failure=zero
    failures = [env.failure for env in envs]
    assert failures[0] is None and "exited with code 3" in failures[1] and "boom" in failures[1]
    assert "timed out" in failures[2]
    assert failures[3] is None and envs[3].outcome.checks == {"answer": False}  # checked against its answer
    assert "reported no reward" in failures[4]  # no answer to check either
    assert "no model call" in failures[5]
    assert "boom" in envs[1].outcome.detail  # the stderr tail stays in the outcome
    assert suite.env_failures == {"agent": 4}


@pytest.mark.slow
def test_grpo_trains_on_exactly_the_tokens_the_gateway_recorded(tmp_path):
    from agent_lightning.config import RewardSpec
    from agent_lightning.policy import load_policy
    from agent_lightning.rewarding import RewardSuite
    from agent_lightning.train.grpo import build_grpo_trainer

    cfg = agent_config(tmp_path, "python examples/openai_agent/agent.py", EXAMPLE / "tasks.jsonl",
                       "grpo.max_steps=1", "grpo.temperature=0.9", "grpo.max_turn_tokens=24")
    env_cls = bound(cfg)
    model, tokenizer = load_policy(cfg.policy)
    suite = RewardSuite.from_config([RewardSpec(name="task_success")], env_cls, cfg.env)
    trainer = build_grpo_trainer(cfg, tmp_path / "run", model, tokenizer, env_cls, suite, [])
    trainer.train()
    episodes = trainer.rollout_func.last
    assert len(episodes) == cfg.grpo.per_device_batch_size and all(e.run.calls for e in episodes)
    assert {c.sampling["temperature"] for e in episodes for c in e.run.calls} == {0.9}  # the trainer's, not 0.7
    assert all(c.sampling["max_tokens"] == 24 for e in episodes for c in e.run.calls)
    recorded = sorted((tuple(e.prompt_ids), tuple(e.completion_ids), tuple(e.generated_mask)) for e in episodes)
    assert all(e.run.sample().completion_ids[:64] == e.completion_ids for e in episodes)
    batch = trainer._buffered_inputs[0]  # what TRL computed the loss on (rows shuffled)
    trained = []
    for row in range(batch["prompt_ids"].shape[0]):
        prompt = batch["prompt_ids"][row][batch["prompt_mask"][row].bool()].tolist()
        keep = batch["completion_mask"][row].bool()
        completion = batch["completion_ids"][row][keep].tolist()
        mask = batch["tool_mask"][row][keep].tolist() if "tool_mask" in batch else [1] * len(completion)
        trained.append((tuple(prompt), tuple(completion), tuple(mask)))
    assert sorted(trained) == recorded


@pytest.mark.slow
def test_grpo_run_trains_the_example_agent_and_counts_failures(tmp_path):
    """The issue's command, in process: 2 GRPO steps on the tiny policy, the example agent behind a wrapper that
    crashes one rollout per round, then the end-of-stage evaluation through the gateway."""
    from agent_lightning.train.pipeline import run_training

    cfg = agent_config(tmp_path, f"python {FLAKY} --crash-index 1", EXAMPLE / "tasks.jsonl", "grpo.max_steps=2",
                       "grpo.warm_start_sft=true", "eval.limit=2")
    run_dir = run_training(cfg, "grpo", output_dir=str(tmp_path / "run"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["env"] == "agent"
    assert summary["env_failures"] == {"agent": 2}  # one crash per round, isolated
    assert summary["eval"]["env"] == "agent" and summary["eval"]["tasks"] == 2 and summary["eval"]["temperature"] == 0
    assert not (run_dir / "sft").exists()  # no warm start for an agent: nothing to imitate
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "agent/rollouts" in m]
    assert len(steps) == 2 and all(m["agent/rollouts"] == 4 and m["agent/crashed"] == 1 for m in steps)
    assert all(m["agent/model_calls"] >= 3 for m in steps)
    traces = [json.loads(line) for path in sorted((run_dir / "traces").glob("*.jsonl"))
              for line in path.read_text().splitlines()]
    assert len(traces) == 8
    crashed = [t for t in traces if "exited with code 3" in t["outcome"]["detail"]]
    reported = [t for t in traces if t["outcome"]["reward"] is not None]
    assert len(crashed) == 2 and len(reported) == 6 and all(t["outcome"]["reward"] == 0.0 for t in reported)
    assert all(t["completion"] and t["completion"][-1]["role"] == "assistant" for t in reported)


@pytest.mark.slow
def test_eval_command_runs_the_agent_greedily(tmp_path):
    result = run_cli("eval", "--config", "tiny", "--set", "env.name=agent", "--set",
                     "agent.command=python examples/openai_agent/agent.py", "--set",
                     f"agent.tasks={EXAMPLE / 'tasks.jsonl'}", "--set", "eval.max_new_tokens=16", "--limit", "3",
                     "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["env"] == "agent" and report["tasks"] == 3 and report["temperature"] == 0.0
    assert report["success_rate"] == 0.0 and report["rewards"]["exact_answer"] == 0.0
    assert "agent rollouts" not in result.stderr  # no rollout failed
