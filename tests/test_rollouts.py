"""rollouts.play_episodes: the multi-turn loop evaluation and GRPO share. The tokens it records must be exactly the
conversation the policy read and wrote, its mask must mark only the policy's own tokens, and the completion budget
and the failed-turn cut must end episodes the way the docstring says."""

import json

import pytest

from agent_lightning.rollout import episodes as rollouts
from agent_lightning.chat.tool_format import prepare_for_tools


@pytest.fixture()
def filesystem(tiny_policy):
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    _, tokenizer = tiny_policy
    prepare_for_tools(tokenizer)
    return ENVIRONMENTS.get("filesystem").obj, tokenizer


class ReferenceReplies:
    """A generation session that answers each task with its reference turns, then its final answer."""

    def __init__(self, model, tokenizer, sampling=None):
        self.tokenizer, self.turn, self.limits = tokenizer, {}, []

    def generate(self, segments, max_new_tokens):
        self.limits.append(max_new_tokens)
        replies = {}
        for i in segments:
            solution = json.loads(self.tasks[i]["solution"])
            done, sizes = self.turn.get(i, 0), solution["turns"]
            if done < len(sizes):
                calls = solution["calls"][sum(sizes[:done]):sum(sizes[:done + 1])]
                text = f"[TOOL_CALLS] {json.dumps(calls)}"
            else:
                text = solution["final"]
            self.turn[i] = done + 1
            replies[i] = (self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id],
                          True)
        return replies


def _play(monkeypatch, env_cls, tokenizer, tasks, **kwargs):
    session = {}

    def make(model, tok, sampling=None):
        session["it"] = ReferenceReplies(model, tok, sampling)
        session["it"].tasks = tasks
        return session["it"]

    monkeypatch.setattr(rollouts, "CachedSession", make)
    episodes = rollouts.play_episodes(None, tokenizer, env_cls, tasks, "You work with files.", max_new_tokens=64,
                                      max_turns=6, **kwargs)
    return episodes, session["it"]


def test_recorded_tokens_are_the_rendered_conversation_and_the_mask_marks_the_replies(filesystem, monkeypatch):
    env_cls, tokenizer = filesystem
    tasks = [t for t in env_cls.tasks("test", 12, 0) if len(json.loads(t["solution"])["turns"]) >= 2][:2]
    assert tasks, "the test split should hold multi-turn tasks"
    episodes, _ = _play(monkeypatch, env_cls, tokenizer, tasks)
    for episode, task in zip(episodes, tasks):
        episode.env._finish_episode(episode.messages)
        assert episode.env.outcome.success  # the reference calls really ran in the workspace
        conversation = [{"role": "system", "content": "You work with files."},
                        {"role": "user", "content": task["prompt"]}] + episode.messages
        tools = [getattr(episode.env, n) for n in env_cls.tool_names()]
        rendered = tokenizer.apply_chat_template(conversation, tools=tools, tokenize=False)
        assert tokenizer.decode(episode.prompt_ids + episode.completion_ids) == tokenizer.decode(
            tokenizer(rendered, add_special_tokens=False)["input_ids"])
        generated = [t for t, m in zip(episode.completion_ids, episode.generated_mask) if m]
        replies = [m for m in episode.messages if m["role"] == "assistant"]
        assert generated.count(tokenizer.eos_token_id) == len(replies)  # every reply and only replies
        assert len(episode.generated_mask) == len(episode.completion_ids)
        tool_text = tokenizer.decode([t for t, m in zip(episode.completion_ids, episode.generated_mask) if not m])
        assert all(json.dumps(m["content"]) in tool_text for m in episode.messages if m["role"] == "tool")


def test_the_completion_budget_limits_replies_and_drops_results_that_do_not_fit(filesystem, monkeypatch):
    env_cls, tokenizer = filesystem
    task = next(t for t in env_cls.tasks("test", 12, 0) if len(json.loads(t["solution"])["turns"]) >= 2)
    full, _ = _play(monkeypatch, env_cls, tokenizer, [task])
    first_reply = full[0].generated_mask.index(0)  # tokens of the first reply
    budget = first_reply + 3  # room for the first reply, not for the tool results that follow it
    episodes, session = _play(monkeypatch, env_cls, tokenizer, [task], completion_budget=budget)
    episode = episodes[0]
    assert session.limits[0] == {0: min(64, budget)}
    assert episode.completion_ids == full[0].completion_ids[:first_reply]
    assert [m["role"] for m in episode.messages] == ["assistant"]  # the results were not read: not in the episode
    assert len(episode.env.calls) == json.loads(task["solution"])["turns"][0]  # the first turn's calls did run


def test_an_episode_ends_after_max_failed_turns_of_only_failing_calls(filesystem, monkeypatch):
    """A policy that keeps calling a tool that fails stops after `max_failed_turns` such turns (0: only
    max_turns stops it)."""
    env_cls, tokenizer = filesystem
    call = tokenizer('[TOOL_CALLS] [{"name": "read_file", "arguments": {"path": "no/such/file.txt"}}]',
                     add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    class AlwaysFails:
        def __init__(self, model, tokenizer, sampling=None):
            pass

        def generate(self, segments, max_new_tokens):
            return {i: (call, True) for i in segments}

    monkeypatch.setattr(rollouts, "CachedSession", AlwaysFails)
    tasks = env_cls.tasks("test", 2, 0)
    for limit, turns in ((2, 2), (0, 4)):
        episodes = rollouts.play_episodes(None, tokenizer, env_cls, tasks, None, max_new_tokens=32, max_turns=3,
                                          max_failed_turns=limit)
        assert [sum(m["role"] == "assistant" for m in e.messages) for e in episodes] == [turns, turns]
        assert all(m["content"].startswith("{'error'") for e in episodes for m in e.messages if m["role"] == "tool")
