"""SFT demonstrations: verified reference trajectories from the environments, local JSONL, and a weighted mixture.

    demos = environment_demonstrations(env_cls, "train", size=300, seed=0)   # only verified successes
    extra = load_jsonl("my_chats.jsonl", source="chat")                      # `messages` or instruction/response
    data = mix({"filesystem": (demos, 0.6), "chat": (extra, 0.4)}, size=400, seed=0)
    train, held_out = split_held_out(data, fraction=0.1, seed=0)

Every example is `{"messages": [...], "tools": [json schema, ...] or None, "source": name, "task_id": ...}`:
TRL's conversational SFT format, rendered by the policy's own chat template (with its tool-call format) at
training time, so one trajectory format serves SFT and GRPO. An environment demonstration is its reference
solver's `solution` (`calls`, optionally grouped into assistant turns by `turns`, with `notes` the text an
assistant turn says before its calls, and a `final` message) replayed through the same wrapped tools in a fresh
sandbox (tool results are the real outputs) and verified; a trajectory that fails verification is dropped and
counted. Single-turn environments give (prompt, answer) pairs.

Mixture: each example is drawn from source i with probability w_i / sum(w); within a source, examples are used
in a seeded random order and reused only once the source is exhausted. Not covered: the training itself
(train/sft.py), token-level masking (TRL's assistant_only_loss with the templates' generation markers).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

from agent_lightning.chat.prompt import prefix_messages
from agent_lightning.envs import environment_factory, tasks_in_tiers
from agent_lightning.errors import UserError

log = logging.getLogger(__name__)


def tool_schemas(env: Any) -> list[dict[str, Any]] | None:
    from transformers.utils import get_json_schema

    names = env.tool_names()
    return [get_json_schema(getattr(env, name)) for name in names] or None


def demonstration(env_cls: type, task: dict[str, Any], system: str | list[dict[str, Any]] | None,
                  memory: Any = None) -> dict[str, Any] | None:
    """The task's reference trajectory replayed in a fresh sandbox, or None if it does not verify. `system` is the
    prompt's prefix: a system prompt, or messages (envs.prompt_prefix). The user message is the task's prompt plus
    what `reset` returns, as rollouts and evaluation build it (with `memory` and `memory.inject`: retrieved SOPs
    and code)."""
    env = environment_factory(env_cls, memory)()
    observation = env.reset(**task)
    prompt = [*prefix_messages(system), {"role": "user", "content": task["prompt"] + (observation or "")}]
    completion: list[dict[str, Any]] = []
    if task.get("solution"):
        solution = json.loads(task["solution"])
        calls = solution["calls"]
        sizes = solution.get("turns") or [1] * len(calls)  # calls per assistant turn; one each unless grouped
        notes = solution.get("notes") or [""] * len(sizes)  # what the assistant says before a turn's calls
        if sum(sizes) != len(calls) or len(notes) != len(sizes):
            raise UserError(f"env '{env_cls.env_name}': task {task.get('task_id')}: solution `turns` {sizes} does not "
                            f"add up to its {len(calls)} calls, or its `notes` are not one per turn.")
        for size, note in zip(sizes, notes):
            turn, calls = calls[:size], calls[size:]
            results = []
            for call in turn:
                try:
                    results.append({"role": "tool", "name": call["name"],
                                    "content": str(getattr(env, call["name"])(**call["arguments"]))})
                except Exception as exc:  # noqa: BLE001 - a demonstration whose tool fails is not a demonstration
                    log.debug("dropping %s: %s", task.get("task_id"), exc)
                    return None
            completion += [{"role": "assistant", "content": note,
                            "tool_calls": [{"type": "function", "function": call} for call in turn]}, *results]
        completion.append({"role": "assistant", "content": solution["final"]})
    elif task.get("answer") is not None:
        completion.append({"role": "assistant", "content": str(task["answer"])})
    else:
        raise UserError(f"env '{env_cls.env_name}': task {task.get('task_id')} has neither `solution` nor `answer`; "
                        "its environment cannot produce demonstrations.")
    if not env._finish_episode(completion).success:
        return None
    return {"messages": prompt + completion, "tools": tool_schemas(env), "source": env_cls.env_name,
            "task_id": task.get("task_id")}


def environment_demonstrations(env_cls: type, split: str, size: int, seed: int,
                               system: str | list[dict[str, Any]] | None = None,
                               tiers: list[int] | None = None, memory: Any = None) -> list[dict[str, Any]]:
    """Verified demonstrations for `size` tasks of `split`, only from `tiers` when given (fewer if some do not
    verify; logged); `memory` as in `demonstration`."""
    system = system if system is not None else env_cls.system_prompt
    tasks = tasks_in_tiers(env_cls, split, size, seed, tiers)
    demos = [d for d in (demonstration(env_cls, t, system, memory) for t in tasks) if d]
    if len(demos) < size:
        log.warning("%s: %d of %d reference trajectories did not verify and were dropped",
                    env_cls.env_name, size - len(demos), size)
    return demos


def load_jsonl(path: str | Path, source: str | None = None) -> list[dict[str, Any]]:
    """Local examples: each line `{"messages": [...]}` (optionally `tools`) or `{"instruction", "response"}`
    (optionally `system`); either may carry a `task_id` (default: source:line)."""
    path = Path(path)
    source = source or path.stem
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UserError(f"SFT data {path}: {exc.strerror}.") from None
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UserError(f"{path}:{number}: not JSON ({exc.msg}); expected one example per line.") from None
        example = _messages(row, f"{path}:{number}")  # a row's own task_id keeps its task's rows on one side of
        examples.append({**example, "source": source,  # the held-out split (e.g. several RFT samples of one task)
                         "task_id": str(row.get("task_id") or f"{source}:{number}")})
    if not examples:
        raise UserError(f"SFT data {path}: no examples in it.")
    return examples


def _messages(row: Any, where: str) -> dict[str, Any]:
    if isinstance(row, dict) and isinstance(row.get("messages"), list):
        messages = row["messages"]
        if not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
            raise UserError(f"{where}: `messages` must be a list of {{\"role\": ..., \"content\": ...}} objects.")
        if messages[-1]["role"] != "assistant":
            raise UserError(f"{where}: the last message must be the assistant's (it is what SFT teaches).")
        return {"messages": messages, "tools": row.get("tools")}
    if isinstance(row, dict) and isinstance(row.get("instruction"), str) and isinstance(row.get("response"), str):
        system = [{"role": "system", "content": row["system"]}] if row.get("system") else []
        return {"messages": system + [{"role": "user", "content": row["instruction"]},
                                      {"role": "assistant", "content": row["response"]}], "tools": None}
    raise UserError(f"{where}: expected {{\"messages\": [...]}} or {{\"instruction\": ..., \"response\": ...}}.")


def mix(sources: dict[str, tuple[list[dict[str, Any]], float]], size: int, seed: int) -> list[dict[str, Any]]:
    """`size` examples drawn from the sources with probability proportional to their weights (see docstring)."""
    live = {name: (examples, weight) for name, (examples, weight) in sources.items() if examples and weight > 0}
    if not live:
        raise UserError("SFT mixture: no source has both examples and a positive weight.")
    rng = random.Random(seed)
    orders = {name: rng.sample(examples, len(examples)) for name, (examples, _) in live.items()}
    cursors = dict.fromkeys(live, 0)
    names = sorted(live)
    weights = [live[n][1] for n in names]
    out = []
    for _ in range(size):
        name = rng.choices(names, weights)[0]
        order = orders[name]
        if cursors[name] == len(order):  # exhausted: a new pass in a new order
            orders[name] = order = rng.sample(order, len(order))
            cursors[name] = 0
        out.append(order[cursors[name]])
        cursors[name] += 1
    return out


def split_held_out(examples: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list, list]:
    """(train, held out): a seeded split by task id, so copies of one example never straddle it."""
    if not 0 <= fraction < 1:
        raise UserError(f"held-out fraction must be in [0, 1), got {fraction}.")
    ids = sorted({e["task_id"] for e in examples}, key=str)
    held = set(random.Random(seed).sample(ids, round(len(ids) * fraction)))
    return [e for e in examples if e["task_id"] not in held], [e for e in examples if e["task_id"] in held]
