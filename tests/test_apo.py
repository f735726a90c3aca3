"""APO (train/apo.py) and the prompt it writes (chat/prompt.py): prompt.yaml, what every command reads from it, the
search's outputs and resume, chains with weight-updating stages, the critic paths, and that the search finds a
better prompt for the real pretrained policy on dev tasks."""

import json

import pytest

from conftest import run_cli

from agent_lightning.chat.prompt import Prompt
from agent_lightning.errors import UserError

DEMO = [{"role": "user", "content": "What is 3 + 4?"}, {"role": "assistant", "content": "7"}]


def test_prompt_yaml_round_trip_and_the_messages_it_puts_first(tmp_path):
    prompt = Prompt("Reply with only the answer.", [DEMO], {"dev_score": 0.5})
    path = prompt.save(tmp_path / "prompt.yaml")
    loaded = Prompt.load(tmp_path)  # a run folder works too
    assert loaded == prompt and loaded.fingerprint == prompt.fingerprint
    assert loaded.messages() == [{"role": "system", "content": "Reply with only the answer."}, *DEMO]
    assert Prompt(None, [DEMO]).messages("Env's own.")[0] == {"role": "system", "content": "Env's own."}
    assert Prompt("x", []).fingerprint != Prompt("x", [DEMO]).fingerprint  # the fingerprint names the whole prompt
    assert path.read_text().startswith("instructions: Reply with only the answer.")


@pytest.mark.parametrize("body, culprit", [
    ("instructions: [1, 2]", "`instructions` must be text"),
    ("demonstrations: [[{role: system, content: x}]]", "demonstration 1"),
    ("demonstrations: [[{role: assistant, content: '7'}]]", "starts with the user's task"),
    ("just text", "expected a mapping"),
    ("instructions: 'a\n  b: [", "not YAML"),
])
def test_a_bad_prompt_file_is_one_line_naming_it(tmp_path, body, culprit):
    path = tmp_path / "prompt.yaml"
    path.write_text(body)
    with pytest.raises(UserError, match=culprit) as error:
        Prompt.load(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_every_command_reads_the_prompt_the_same_way(tmp_path):
    """eval, sft, grpo and rft build conversations from envs.prompt_prefix; episodes put it before the task."""
    from agent_lightning.config import load_config
    from agent_lightning.envs import environment_class, prompt_prefix
    from agent_lightning.registry import discover
    from agent_lightning.train.grpo import task_dataset
    from agent_lightning.train.sft import sft_examples

    discover()
    Prompt("Be brief.", [DEMO]).save(tmp_path / "prompt.yaml")
    cfg = load_config("tiny", overrides=[f"policy.prompt={tmp_path / 'prompt.yaml'}", "sft.demonstrations=4",
                                         "sft.held_out_fraction=0"])
    env_cls = environment_class(cfg)
    prefix = prompt_prefix(cfg, env_cls)
    assert prefix == [{"role": "system", "content": "Be brief."}, *DEMO]
    assert task_dataset(env_cls, cfg)[0]["prompt"][:3] == prefix  # GRPO's prompts
    train, _ = sft_examples(cfg, env_cls)
    assert train[0]["messages"][:3] == prefix  # SFT trains on what it will be prompted with
    plain = load_config("tiny")
    assert prompt_prefix(plain, env_cls) == [{"role": "system", "content": env_cls.system_prompt}]


def test_episodes_play_each_task_after_its_own_prefix(tiny_policy):
    from agent_lightning.config import load_config
    from agent_lightning.envs import environment_class
    from agent_lightning.evaluate import split_tasks
    from agent_lightning.registry import discover
    from agent_lightning.rollout.episodes import play_episodes

    discover()
    model, tokenizer = tiny_policy
    cfg = load_config("tiny")
    env_cls = environment_class(cfg)
    tasks = split_tasks(env_cls, cfg, "dev")[:2]
    heads = [[{"role": "system", "content": "A."}], [{"role": "system", "content": "B."}, *DEMO]]
    episodes = play_episodes(model, tokenizer, env_cls, tasks, "ignored", max_new_tokens=2, max_turns=1,
                             prefixes=heads)
    assert [e.prompt[:-1] for e in episodes] == heads
    assert episodes[1].prompt_ids == tokenizer(tokenizer.apply_chat_template(
        [*heads[1], {"role": "user", "content": tasks[1]["prompt"]}], add_generation_prompt=True, tokenize=False),
        add_special_tokens=False)["input_ids"]


SMALL = ["--set", "apo.candidates=3", "--set", "apo.dev_tasks=6", "--set", "apo.minibatch=3", "--set", "apo.pool=4",
         "--set", "apo.bootstrap=3", "--set", "env.dev_size=6", "--set", "eval.limit=4"]


@pytest.mark.slow
def test_apo_writes_its_prompt_report_and_plot_and_resumes(tmp_path):
    run_dir = tmp_path / "apo"
    first = run_cli("--algo", "apo", "--config", "tiny", "--output-dir", str(run_dir), "--set", "apo.rounds=1", *SMALL)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algo"] == "apo" and summary["steps"] == 2 and summary["dev_tasks"] == 6
    assert summary["eval"]["prompt"].endswith(f"({summary['prompt_fingerprint']})")  # the report names the prompt
    assert summary["paired"]["n"] == 4 and summary["eval_start"]["prompt"] is None
    assert "starting prompt" in first.stdout and "on the same test tasks" in first.stdout
    prompt = Prompt.load(run_dir / "prompt.yaml")
    assert prompt.fingerprint == summary["prompt_fingerprint"] and prompt.meta["dev_tasks"] == 6
    rows = [json.loads(line) for line in (run_dir / "candidates.jsonl").read_text().splitlines()]
    assert rows[0]["origin"] == "start" and {r["round"] for r in rows} == {0, 1}
    assert all(0 <= r["dev_score"] <= 1 and 1 <= r["dev_tasks"] <= 6 for r in rows)
    assert (run_dir / "apo.png").stat().st_size > 0
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-0", "checkpoint-1"]

    again = run_cli("--algo", "apo", "--config", "tiny", "--output-dir", str(run_dir), "--resume",
                    "--set", "apo.rounds=2", *SMALL)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming after round 1" in again.stderr
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["steps"] == 3 and resumed["episodes_played"] > summary["episodes_played"]
    rounds = {json.loads(line)["round"] for line in (run_dir / "candidates.jsonl").read_text().splitlines()}
    assert rounds == {0, 1, 2}
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]


@pytest.mark.slow
def test_apo_then_grpo_trains_with_the_optimized_prompt(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("--algo", "apo+grpo", "--config", "tiny", "--output-dir", str(run_dir), "--set", "apo.rounds=0",
                     "--set", "grpo.max_steps=1", *SMALL)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary["stages"]) == ["apo", "grpo"]
    assert [r["policy"] for r in summary["comparison"]] == ["base", "after APO", "after APO+GRPO"]
    prompt = Prompt.load(run_dir / "prompt.yaml")  # published beside the final adapter
    assert prompt == Prompt.load(run_dir / "apo" / "prompt.yaml")
    assert summary["prompt"] == str(run_dir / "prompt.yaml") and (run_dir / "adapter" / "adapter_config.json").is_file()
    traces = [json.loads(line) for f in sorted((run_dir / "grpo" / "traces").glob("*.jsonl"))
              for line in f.read_text().splitlines()]
    prefix = prompt.messages("Answer the question. Reply with only the answer.")
    assert traces and all(t["prompt"][:len(prefix)] == prefix for t in traces)
    assert summary["stages"]["grpo"]["eval"]["prompt"].startswith(str(run_dir / "apo" / "prompt.yaml"))


@pytest.mark.slow
def test_sft_then_apo_searches_prompts_for_the_sft_adapter(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("--algo", "sft+apo", "--config", "tiny", "--output-dir", str(run_dir), "--set", "apo.rounds=0",
                     *SMALL)
    assert result.returncode == 0, result.stderr[-3000:]
    apo = json.loads((run_dir / "apo" / "summary.json").read_text())
    assert apo["adapter"] == str(run_dir / "sft" / "adapter")
    sft_eval = json.loads((run_dir / "sft" / "summary.json").read_text())["eval"]
    assert apo["eval_start"] == sft_eval  # the starting prompt's test report is the SFT stage's, not played again
    assert (run_dir / "adapter" / "adapter_config.json").is_file() and (run_dir / "prompt.yaml").is_file()


@pytest.mark.slow
def test_a_local_hf_critic_rewrites_instructions_from_failed_traces(tmp_path):
    """The critic path end to end with a local HF chat model folder (the tiny random Mistral: its rewrites are
    noise, but each is proposed, scored and reported like any candidate)."""
    from agent_lightning.config import PolicySection
    from agent_lightning.policy import resolve_source

    folder = resolve_source(PolicySection(source="tiny-mistral"))
    run_dir = tmp_path / "apo"
    result = run_cli("--algo", "apo", "--config", "tiny", "--output-dir", str(run_dir), "--set", "apo.rounds=1",
                     "--set", f"apo.critic={folder}", "--set", "apo.critic_max_tokens=12", *SMALL)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "candidates.jsonl").read_text().splitlines()]
    assert any(r["origin"] == "critic rewrite" and r["round"] == 1 for r in rows), rows
    assert json.loads((run_dir / "summary.json").read_text())["critic"] == str(folder)


def test_a_critic_that_is_neither_a_url_nor_a_model_is_one_line(tmp_path):
    result = run_cli("--algo", "apo", "--config", "tiny", "--output-dir", str(tmp_path / "r"),
                     "--set", f"apo.critic={tmp_path / 'missing'}", "--set", "eval.at_end=false", *SMALL)
    assert result.returncode == 2
    assert "apo.critic" in result.stderr and str(tmp_path / "missing") in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_apo_finds_a_better_prompt_for_the_pretrained_policy_on_dev():
    """SmolLM2-135M rambles past the 16-token answer budget on arithmetic; demonstrations and instructions that
    show the format fix most of that, so the search's best dev score must beat the shipped prompt's."""
    from agent_lightning.config import load_config
    from agent_lightning.envs import environment_class
    from agent_lightning.registry import discover
    from agent_lightning.train.algorithm import Stage
    from agent_lightning.train.apo import PromptSearch

    import tempfile
    from pathlib import Path

    discover()
    cfg = load_config("arithmetic", overrides=["apo.rounds=0", "apo.candidates=4", "apo.dev_tasks=16",
                                               "apo.minibatch=8", "apo.pool=8", "apo.bootstrap=0",
                                               "eval.at_end=false"])
    with tempfile.TemporaryDirectory() as tmp:
        search = PromptSearch(Stage("apo", cfg, Path(tmp), environment_class(cfg)))
        search.run()
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    assert summary["dev_score"] >= summary["start_dev_score"] + 0.2, summary


@pytest.mark.slow
def test_the_critic_runs_against_a_real_openai_compatible_server(tmp_path, tiny_policy):
    """`apo.critic=http://...`: the official openai client against the project's own gateway on the loopback,
    serving the tiny policy; the search's subprocess calls it for critiques and rewrites."""
    from agent_lightning.serve.app import create_app
    from agent_lightning.serve.server import BackgroundServer

    from agent_lightning.chat.tool_format import prepare_for_tools

    model, tokenizer = tiny_policy
    prepare_for_tools(tokenizer)  # what `serve` does after loading the policy
    server = BackgroundServer(create_app(model, tokenizer, "tiny-critic", default_max_tokens=12)).start()
    try:
        run_dir = tmp_path / "apo"
        result = run_cli("--algo", "apo", "--config", "tiny", "--output-dir", str(run_dir), "--set", "apo.rounds=1",
                         "--set", f"apo.critic={server.url}", "--set", "apo.critic_max_tokens=12", *SMALL)
        assert result.returncode == 0, result.stderr[-3000:]
        import httpx

        served = httpx.get(server.url + "/stats").json()["requests"]
    finally:
        server.stop()
    rows = [json.loads(line) for line in (run_dir / "candidates.jsonl").read_text().splitlines()]
    assert any(r["origin"] == "critic rewrite" for r in rows), rows
    assert json.loads((run_dir / "summary.json").read_text())["critic"].startswith(server.url)
    assert served >= 2  # a critique and a rewrite per rewritten prompt
