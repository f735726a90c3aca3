"""Agent programs played against an in-process gateway serving the policy: one round of rollouts -> episodes.

    episodes = play_agents(model, tokenizer, env_cls, tasks, max_new_tokens=96)          # greedy (evaluation)
    episodes = play_agents(model, tokenizer, env_cls, tasks, max_new_tokens=96, completion_budget=512,
                           sampling=Sampling(0.8, 1.0, generator))                        # sampled (GRPO)
    episodes[i].prompt_ids, .completion_ids, .generated_mask, .logprobs   # the recorded trajectory, for TRL
    episodes[i].env                                                        # the agent environment, its run recorded
    episodes[i].run                                                        # AgentRun: process, calls, samples, reward

`env_cls` is the run's bound agent environment (environments/agent.py: its `agent` section and task file); `tokenizer`
is prepared for the policy's tool format (chat.tool_format.prepare_for_tools). A round:
  1. starts the gateway (serve/app.py) on a free loopback port, serving `model` as it is (callers that train merge
     the adapter around the round with rollout.episodes.generation_weights; the gateway's worker does so itself
     otherwise), with every request sampled the round's way whatever the agent asks (schema.ForcedSampling:
     `sampling`'s temperature and top_p, greedy without it; `max_tokens` capped at `max_new_tokens`);
  2. runs the agent command once per task (serve/agent_process.py: OPENAI_BASE_URL = the rollout's URL, the task
     on stdin and in AGENT_TASK), `agent.concurrency` at a time, in task order (a GRPO group's rollouts together),
     their model calls batched by the gateway's worker, which waits (up to 2 s) until every running agent has a
     request queued, so agents that start or finish their tools at different moments are generated together;
  3. reads each rollout's recording (serve/recording.py): the reward it POSTed (else the one it printed), and its
     training sample: of the samples its calls merge into, the one with the most generated tokens (the whole
     conversation when each call extends the previous one; side calls that rewrite the history are left out),
     cut at `completion_budget` tokens after the prompt;
  4. stops the gateway and returns one episode per task, in order.

Failures stay with their rollout: a crash, a timeout, a rollout without a model call or without a reward is
recorded in its environment (its `failure`, scored by `env.on_failure` and counted by the reward suite) and
counted by `round_counts`; a rollout without a call gets a one-token placeholder completion with no loss (mask 0).

Not covered: keeping the gateway up between rounds (each round starts one: about 0.2 s to start and stop),
training on the side calls left out in step 3, per-call rewards (`{"rewards": [...]}` stays in the recording,
unused), turn limits (the agent decides when to stop; `agent.timeout_s` bounds it).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from agent_lightning.chat.messages import content_text
from agent_lightning.environments.agent import agent_argv
from agent_lightning.rollout.episodes import Episode
from agent_lightning.serve.agent_process import ProcessResult, failure_reason, run_agent_process
from agent_lightning.serve.app import create_app
from agent_lightning.serve.recording import Call, Sample, merge_calls
from agent_lightning.serve.schema import ForcedSampling, to_template_messages
from agent_lightning.serve.server import BackgroundServer

log = logging.getLogger(__name__)

MODEL_NAME = "policy"  # the served name (OPENAI_MODEL); any name an agent sends is answered


@dataclass
class AgentRun:
    """One rollout of the agent program: how its process ended and what the gateway recorded."""

    rollout_id: str
    task: dict[str, Any]
    process: ProcessResult
    calls: list[Call] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    posted_reward: float | None = None

    @property
    def reward(self) -> float | None:
        """The reward the agent reported: POSTed to its rollout, else printed as its last stdout line."""
        return self.posted_reward if self.posted_reward is not None else self.process.printed_reward

    def failure(self, timeout_s: float | None = None) -> str | None:
        """Why this rollout cannot be trained on as it is (crash, timeout, no model call), or None."""
        reason = failure_reason(self.process, timeout_s)
        if reason is None and not self.calls:
            reason = "the agent made no model call through the gateway (does it read OPENAI_BASE_URL?)"
        return reason

    def sample(self) -> Sample | None:
        """The training sample: the one covering the most generated tokens (the first of equals)."""
        return max(self.samples, key=lambda s: sum(s.generated_mask), default=None)

    def last_reply(self) -> str | None:
        """The text of the last reply the policy gave the agent (None without calls)."""
        return content_text(self.calls[-1].response.get("content")) if self.calls else None


@dataclass
class AgentEpisode(Episode):
    """An episode played by the agent program: Episode's fields plus the sampling logprobs and the run itself."""

    logprobs: list[float] = field(default_factory=list)
    run: AgentRun | None = None
    truncated: bool = False  # cut at the completion budget


def agent_task(row: dict[str, Any]) -> dict[str, Any]:
    """What the agent gets for a task row: the task file's line (`task`, JSON) or, for rows without one, the row."""
    if isinstance(row.get("task"), str):
        return json.loads(row["task"])
    return {k: v for k, v in row.items() if k not in ("question",) and v is not None}


class Running:
    """How many agent processes are running (a context manager per process); the gateway's batcher waits for
    requests from all of them before generating (batcher.Batcher's `gather`), as the in-process loop generates a
    round's turns together."""

    def __init__(self) -> None:
        self._count, self._lock = 0, threading.Lock()

    def __enter__(self) -> "Running":
        with self._lock:
            self._count += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._count -= 1

    def __call__(self) -> int:
        with self._lock:
            return self._count


def run_agents(model: Any, tokenizer: Any, section: Any, tasks: list[dict[str, Any]], *, temperature: float,
               top_p: float = 1.0, max_tokens: int, seed: int = 0, label: str = "ro") -> list[AgentRun]:
    """Steps 1, 2 and the recording of step 3 of the module docstring: one AgentRun per task row, in order."""
    argv = agent_argv(section.command)
    forced = ForcedSampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
    running = Running()
    app = create_app(model, tokenizer, MODEL_NAME, max_batch_size=section.concurrency, default_max_tokens=max_tokens,
                     seed=seed, forced=forced, gather=running)
    gateway = app.state.gateway
    server = BackgroundServer(app).start()
    prefix = f"{label}-{uuid.uuid4().hex[:8]}"

    def one(item: tuple[int, dict[str, Any]]) -> AgentRun:
        index, row = item
        rollout_id = f"{prefix}-{index:04d}"
        gateway.store.open(rollout_id)
        task = agent_task(row)
        with running:
            process = run_agent_process(argv, task, base_url=f"{server.url}/rollouts/{rollout_id}/v1",
                                        reward_url=f"{server.url}/rollouts/{rollout_id}/reward",
                                        rollout_id=rollout_id, model=MODEL_NAME, timeout_s=section.timeout_s)
        rollout = gateway.store.finish(rollout_id)
        gateway.store.delete(rollout_id)
        return AgentRun(rollout_id, task, process, list(rollout.calls), merge_calls(rollout.calls, rollout.reward),
                        rollout.reward)

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(section.concurrency, len(tasks))),
                                thread_name_prefix="agent") as pool:
            return list(pool.map(one, enumerate(tasks)))
    finally:
        server.stop()
        gateway.close()


def play_agents(model: Any, tokenizer: Any, env_cls: type, tasks: list[dict[str, Any]], system: Any = None, *,
                max_new_tokens: int, sampling: Any = None, completion_budget: int | None = None,
                seed: int | None = None, label: str = "eval", **_: Any) -> list[AgentEpisode]:
    """Play one round of `tasks` with the agent program (see the module docstring). The signature is
    rollout.episodes.play_episodes' (what `evaluate` calls): `system`, `max_turns`, `memory` and the like are the
    agent's business and ignored. Greedy unless `sampling` (temperature, top_p, generator) is given."""
    section = env_cls.agent
    if section is None:
        raise ValueError("play_agents needs the run's bound agent environment (envs.environment_class(cfg))")
    temperature, top_p = (sampling.temperature, sampling.top_p) if sampling is not None else (0.0, 1.0)
    if seed is None:  # the gateway's sampling seed: drawn from the caller's generator, so rounds differ
        import torch

        generator = getattr(sampling, "generator", None)
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator)) if generator is not None else 0
    runs = run_agents(model, tokenizer, section, tasks, temperature=temperature, top_p=top_p,
                      max_tokens=max_new_tokens, seed=seed, label=label)
    episodes = [episode_of(run, row, env_cls, tokenizer, completion_budget) for run, row in zip(runs, tasks)]
    counts = round_counts(episodes)
    if counts["failed"]:
        first = next(e.env.failure for e in episodes if e.env.failure)
        log.warning("agent rollouts: %d of %d failed (crashed %d, timed out %d, no model call %d); first: %s",
                    counts["failed"], len(episodes), counts["crashed"], counts["timed_out"], counts["no_calls"], first)
    return episodes


def episode_of(run: AgentRun, row: dict[str, Any], env_cls: type, tokenizer: Any,
               budget: int | None = None) -> AgentEpisode:
    """The episode of one run: its environment (reset with the task row, the run recorded) and its sample."""
    env = env_cls()
    env.reset(**row)
    episode = AgentEpisode(env, run=run)
    sample = run.sample()
    if sample is None:  # no model call: a placeholder the loss ignores (mask 0)
        episode.prompt = [{"role": "user", "content": str(row.get("prompt", ""))}]
        text = tokenizer.apply_chat_template(episode.prompt, add_generation_prompt=True, tokenize=False)
        episode.prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        episode.completion_ids, episode.generated_mask, episode.logprobs = [tokenizer.eos_token_id], [0], [0.0]
    else:
        last = run.calls[sample.calls[-1]]
        conversation = [*last.messages, _template_reply(last.response)]
        head = next((i for i, m in enumerate(conversation) if m.get("role") not in ("system", "user")),
                    len(conversation))
        episode.prompt, episode.messages = conversation[:head], conversation[head:]
        episode.prompt_ids = list(sample.prompt_ids)
        episode.completion_ids, episode.generated_mask = list(sample.completion_ids), list(sample.generated_mask)
        episode.logprobs = list(sample.logprobs)
        if budget is not None and len(episode.completion_ids) > budget:
            episode.truncated = True
            for name in ("completion_ids", "generated_mask", "logprobs"):
                setattr(episode, name, getattr(episode, name)[:budget])
    calls = [{"name": call["function"]["name"], "arguments": call["function"]["arguments"]}
             for message in episode.messages if message.get("role") == "assistant"
             for call in message.get("tool_calls") or []]
    timeout = getattr(env_cls.agent, "timeout_s", None)
    env._record(reward=run.reward, failure=run.failure(timeout), final_text=run.last_reply(), tool_calls=calls)
    return episode


def _template_reply(response: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI assistant message the gateway returned, in the chat templates' form (arguments as objects)."""
    try:
        return to_template_messages([response])[0]
    except Exception:  # noqa: BLE001 - a reply the gateway wrote always converts; keep its text if not
        return {"role": "assistant", "content": content_text(response.get("content"))}


def round_counts(episodes: list[AgentEpisode]) -> Counter:
    """Counts of a round: rollouts, failed (crashed, timed out or no model call), crashed (non-zero exit or could not
    start), timed_out, no_calls, reported (a reward), no_reward, truncated, model_calls, tool_calls."""
    counts: Counter = Counter()
    for episode in episodes:
        run, process = episode.run, episode.run.process
        counts["rollouts"] += 1
        counts["failed"] += bool(run.failure())
        counts["crashed"] += bool(process.exit_code or process.start_error)
        counts["timed_out"] += process.timed_out
        counts["no_calls"] += not run.calls
        counts["reported"] += run.reward is not None
        counts["no_reward"] += run.reward is None
        counts["truncated"] += episode.truncated
        counts["model_calls"] += len(run.calls)
        counts["tool_calls"] += len(episode.env.calls)
    return counts
