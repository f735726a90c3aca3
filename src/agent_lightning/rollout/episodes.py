"""Multi-turn tool episodes played by the policy: the one rollout loop that evaluation and GRPO share.

    episodes = play_episodes(model, tokenizer, env_cls, tasks, system, max_new_tokens=192, max_turns=6)
    episodes[0].env.outcome, episodes[0].messages         # after `env._finish_episode(messages)`: verified
    episodes[0].prompt_ids, episodes[0].completion_ids     # every token the policy read, as it read it
    episodes[0].generated_mask                             # 1 where a completion token was generated

    with generation_weights(model):  # a LoRA-wrapped model decodes with the adapter merged, unmerged afterwards
        ...

Each task is played like TRL's tool loop plays it: the prompt with the environment's system prompt and tools
(rendered in the policy's own tool-call format, chat/tool_format.py), a reply, its tool calls parsed by the same
tolerant parser and run by the same wrapped tools in a fresh workspace, the results appended, until the policy
answers without a call, `max_turns` rounds are used, the completion budget is spent, or `max_failed_turns` turns
in a row had only failing calls. Tasks are played together, each row keeping its KV cache from turn to turn
(cached_generation.CachedSession): a turn reads only the new tool results, not the whole conversation again.

Tokens: the prompt is rendered once; each later turn's input is the template text the conversation grows by (the
tool results and the next assistant header), tokenized on its own. `prompt_ids + completion_ids` is therefore
exactly the sequence the policy was conditioned on while it generated, which GRPO's loss needs, and
`generated_mask` marks the policy's own tokens (tool results and template text are 0, as TRL's `env_mask`).

Budget (`completion_budget`, GRPO's `max_completion_length`): completion tokens, tool results included. A turn
may generate at most what is left; tool results that would not fit end the episode before they are read (the
calls did run; TRL's loop does the same).

Not covered: environments without tools other than one-turn text (their single reply is the episode); pass@k.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agent_lightning.chat.prompt import prefix_messages
from agent_lightning.rollout.generation import CachedSession, Sampling
from agent_lightning.envs import environment_factory, tool_message
from agent_lightning.errors import UserError


@dataclass
class Episode:
    """One played task: its environment (not yet verified) and what the policy read and wrote."""

    env: Any
    prompt: list[dict[str, Any]] = field(default_factory=list)  # system + user, with what `env.reset` added
    messages: list[dict[str, Any]] = field(default_factory=list)  # the completion: replies and tool results
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    generated_mask: list[int] = field(default_factory=list)


def play_episodes(model: Any, tokenizer: Any, env_cls: type, tasks: list[dict[str, Any]],
                  system: str | list[dict[str, Any]] | None, *,
                  max_new_tokens: int, max_turns: int, max_failed_turns: int = 0,
                  completion_budget: int | None = None, sampling: Sampling | None = None,
                  memory: Any = None, prefixes: list[list[dict[str, Any]]] | None = None) -> list[Episode]:
    """Play `tasks` (environment task rows, `prompt` being the user text) together; see the module docstring.
    `system` is the conversation's prefix: a system prompt, or messages (envs.prompt_prefix: instructions and
    few-shot demonstrations); `prefixes`, one per task, overrides it task by task (prompt search scores several
    prompts in one batch). Greedy unless `sampling` is given. Environments are built with the run's `memory` (envs.environment_factory),
    reset here and left for the caller to verify."""
    make_env = environment_factory(env_cls, memory)
    prefix = prefix_messages(system)
    episodes = [Episode(make_env()) for _ in tasks]
    conversations = []
    if prefixes is not None and len(prefixes) != len(tasks):
        raise ValueError(f"play_episodes: {len(prefixes)} prefixes for {len(tasks)} tasks")
    for i, (episode, task) in enumerate(zip(episodes, tasks)):
        observation = episode.env.reset(**task)
        user = task["prompt"] + (observation or "")
        head = prefix if prefixes is None else prefixes[i]
        conversations.append([*(dict(m) for m in head), {"role": "user", "content": user}])
        episode.prompt = list(conversations[-1])
    tools = [_tools(e.env) for e in episodes] if env_cls.tool_names() else None
    session = CachedSession(model, tokenizer, sampling)
    segments = {}
    for i, episode in enumerate(episodes):
        episode.prompt_ids = _encode(tokenizer, _render(tokenizer, conversations[i], tools, i))
        segments[i] = episode.prompt_ids
    failed_turns = [0] * len(tasks)
    for _ in range(max_turns + 1 if tools else 1):
        if not segments:
            break
        limits = {i: _room(episodes[i], max_new_tokens, completion_budget) for i in segments}
        replies = session.generate(segments, limits)
        segments = {}
        for i, (ids, stopped) in replies.items():
            episode = episodes[i]
            episode.completion_ids += ids
            episode.generated_mask += [1] * len(ids)
            reply = tokenizer.parse_response(ids, tools=tools[i]) if tools else \
                {"role": "assistant", "content": tokenizer.decode(ids, skip_special_tokens=True)}
            conversations[i].append(reply)
            episode.messages.append(reply)
            calls = reply.get("tool_calls") or []
            functions = [call.get("function", {}) for call in calls]
            results = [tool_message(episode.env, f.get("name"), f.get("arguments", {})) for f in functions]
            all_failed = bool(calls) and all(r["content"].startswith("{'error'") for r in results)
            failed_turns[i] = failed_turns[i] + 1 if all_failed else 0
            if not calls:
                continue
            following = _encode(tokenizer, _next_segment(tokenizer, conversations[i], results, tools, i, stopped))
            if completion_budget is not None and \
                    len(episode.completion_ids) + len(following) >= completion_budget:
                continue  # the results do not fit: the episode ends without reading them
            episode.messages.extend(results)
            if max_failed_turns and failed_turns[i] >= max_failed_turns:
                continue
            episode.completion_ids += following
            episode.generated_mask += [0] * len(following)
            segments[i] = following
    return episodes


def _room(episode: Episode, max_new_tokens: int, budget: int | None) -> int:
    return max_new_tokens if budget is None else min(max_new_tokens, budget - len(episode.completion_ids))


def _encode(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _next_segment(tokenizer: Any, conversation: list[dict], results: list[dict], tools: list[list] | None, i: int,
                  stopped: bool) -> str:
    """Append the tool `results` to `conversation` (which ends with the reply) and return the text the template
    adds after the reply: the results and the next assistant header, the next turn's only new input."""
    before = _render(tokenizer, conversation, tools, i, generation_prompt=False)
    conversation.extend(results)
    after = _render(tokenizer, conversation, tools, i)
    if not after.startswith(before):
        raise UserError("the chat template is not prefix-preserving (a rendered conversation changed when tool "
                        "results were appended); rollouts need one that is, as TRL's tool loop does.")
    # the reply's own tokens end at its end-of-turn token (added here if generation was cut off); the rendered
    # reply may end with a newline after it
    return ("" if stopped else tokenizer.eos_token) + "\n" * before.endswith("\n") + after[len(before):]


def _render(tokenizer: Any, conversation: list[dict], tools: list[list] | None, i: int,
            generation_prompt: bool = True) -> str:
    return tokenizer.apply_chat_template(conversation, tools=tools[i] if tools else None,
                                         add_generation_prompt=generation_prompt, tokenize=False)


def _tools(env: Any) -> list[Any]:
    return [getattr(env, name) for name in env.tool_names()]


def can_merge(model: Any) -> bool:
    """A LoRA-wrapped model whose base weights are not quantized (merging into 4-bit weights would round them)."""
    if not hasattr(model, "merge_adapter"):
        return False
    inner = model.get_base_model()
    return (getattr(inner.config, "quantization_config", None) is None
            and not getattr(inner, "is_loaded_in_4bit", False) and not getattr(inner, "is_loaded_in_8bit", False))


def adapter_merged(model: Any) -> bool:
    """Whether a LoRA-wrapped model's adapter is folded into its weights right now."""
    return any(getattr(m, "merged", False) for m in model.modules() if hasattr(m, "merged_adapters"))


@contextlib.contextmanager
def generation_weights(model: Any) -> Iterator[None]:
    """Eval mode, with a mergeable LoRA adapter folded into the weights (no per-layer adapter work at every
    generated token); on exit the adapter is unfolded and the previous mode restored. Nested (the gateway's
    generation worker inside a rollout round or an evaluation that already merged), it leaves the weights as they
    are: merged once, unmerged once."""
    was_training = getattr(model, "training", False)
    model.eval()
    merged = can_merge(model) and not adapter_merged(model)
    if merged:
        model.merge_adapter()
    try:
        yield
    finally:
        if merged:
            model.unmerge_adapter()
        if was_training:
            model.train()
