"""Claim: a GRPO sampling round of an agent program played through the gateway costs at most 1.3x the same round
played in process by the built-in rollout loop.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gateway_overhead.py [--config configs/default.yaml] [--tasks 4]
        [--generations 8] [--concurrency 8] [--max-turn-tokens 192] [--temperature 0] [--repeats 1] [--main-thread]
        [--train]

The same policy (the config's, with a fresh LoRA as `--algo grpo` starts, merged for the round as training does),
the same training tasks (examples/openai_agent/tasks.jsonl), the same system prompt and the same tools, one round
of `--tasks` x `--generations` rollouts each, side by side in this process:
  - gateway: env.name=agent with the example agent (examples/openai_agent/agent.py), what train/agent_rollout.py
    plays: every rollout is a Python process with the `openai` client, its calls served by the gateway on the
    loopback (a fresh server per round, calls batched up to `--concurrency`, each call reading its whole prompt);
  - in process: an environment whose tools are the example agent's own functions and whose tool schemas are checked
    equal to the agent's JSON schemas, played by the cached multi-turn loop as rollout/trl_rollout.py plays GRPO
    rounds (all rollouts in one batch, each row's KV cache kept between turns).
Both allow 4 replies (the agent's MAX_TURNS; env.max_turns=3 tool rounds + the answer), at most `--max-turn-tokens`
per reply, no completion budget. Greedy by default (`--temperature 0`), so both play the same conversations and do
the same generation work (batched and unbatched greedy decoding can still part ways on near-ties: the generated
token counts say how far); with a temperature both sample. The update that follows a round (a forward and backward
pass over each rollout, the policy in training mode) is the same work for both sides; `--train` measures it once on
the in-process round's token sequences and also prints the whole round's ratio (sampling + update), with every
rollout trained on, as in a group with signal (a flat group's passes are skipped in training: then the sampling
ratio is the round's).

Threads: the gateway generates in its worker thread; the in-process round is played in a thread of its own too
(`--main-thread` adds a run in the main thread, as the training loop plays it). On a CPU shared with other jobs,
run it with OMP_NUM_THREADS=1: with torch's two intra-op threads contending with the other jobs, the same round's
time swung by 4-6x from one run to the next, far more than the gateway costs.

Prints each side's wall time, generated tokens, replies and tool calls, whether the first prompts are token for
token the same on both sides, the ratios (wall time, and per generated token) and the command that reproduces it.
Measured numbers: docs/gateway.md#train-your-own-agent. Not covered: GPUs, agents whose tools take time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
EXAMPLE = ROOT / "examples" / "openai_agent"


def example_agent() -> Any:
    """The example agent's module (its tools, schemas and system prompt), loaded from its file."""
    spec = importlib.util.spec_from_file_location("example_agent", EXAMPLE / "agent.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_process_env(agent: Any, tasks_of: type) -> type:
    """An environment with the example agent's tools, prompt and answer check, on the agent environment's tasks."""
    from agent_lightning.envs import Environment, Outcome

    class ExampleTools(Environment):
        system_prompt = agent.SYSTEM
        env_name = "example_tools"

        @classmethod
        def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
            return tasks_of.tasks(split, size, seed)

        def reset(self, **task: Any) -> str | None:
            super().reset(**task)
            self.notes: list[str] = []
            return None

        def calculator(self, expression: str):
            """Evaluate an arithmetic expression with + - * / and parentheses.

            Args:
                expression: The expression, e.g. (4 + 9) * 3.
            """
            return agent.run_tool("calculator", json.dumps({"expression": expression}), self.notes)

        def reverse(self, text: str):
            """Write a word backwards.

            Args:
                text: The word.
            """
            return agent.run_tool("reverse", json.dumps({"text": text}), self.notes)

        def count_letter(self, text: str, letter: str):
            """Count how many times a letter appears in a word.

            Args:
                text: The word.
                letter: The letter.
            """
            return agent.run_tool("count_letter", json.dumps({"text": text, "letter": letter}), self.notes)

        def note(self, text: str):
            """Write a note on the scratch pad; returns every note so far.

            Args:
                text: The note.
            """
            return agent.run_tool("note", json.dumps({"text": text}), self.notes)

        def _finish(self, final_text: str) -> Outcome:
            ok = agent.is_correct(final_text, self.task["answer"])
            return Outcome(success=ok, checks={"answer": ok}, answer=final_text, expected=self.task["answer"])

    return ExampleTools


def check_same_tools(agent: Any, env_cls: type) -> None:
    """The in-process tools render exactly as the agent's JSON schemas (else the two sides read different prompts)."""
    from transformers.utils import get_json_schema

    env = env_cls()
    ours = [get_json_schema(getattr(env, name)) for name in env_cls.tool_names()]
    if ours != agent.TOOLS:  # the same schemas in the same order
        raise SystemExit(f"tool schemas differ:\n{ours}\n{agent.TOOLS}")


def in_process_round(cfg: Any, env_cls: type, model: Any, tokenizer: Any, tasks: list[dict]) -> dict[str, float]:
    from agent_lightning.envs import prompt_prefix
    from agent_lightning.rollout.episodes import generation_weights
    from agent_lightning.rollout.trl_rollout import CachedRollouts

    rollouts = CachedRollouts(cfg, env_cls, prompt_prefix(cfg, env_cls))
    began = time.perf_counter()
    with generation_weights(model):
        episodes = rollouts.play(model, tokenizer, tasks)
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "generated": sum(sum(e.generated_mask) for e in episodes),
            "replies": sum(m.get("role") == "assistant" for e in episodes for m in e.messages),
            "tool_calls": sum(len(e.env.calls) for e in episodes), "prompts": [e.prompt_ids for e in episodes],
            "sequences": [(e.prompt_ids, e.completion_ids, e.generated_mask) for e in episodes]}


def update_seconds(model: Any, sequences: list[tuple[list[int], list[int], list[int]]]) -> float:
    """Wall time of a forward and backward pass over each rollout, one at a time (grpo.per_device_batch_size 1):
    the log-probabilities of its generated tokens summed into a loss, the policy in training mode."""
    import torch

    model.train()
    began = time.perf_counter()
    for prompt_ids, completion_ids, mask in sequences:
        ids = torch.tensor([prompt_ids + completion_ids])
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1]
        logprobs = torch.log_softmax(logits.float(), dim=-1).gather(1, ids[0, len(prompt_ids):, None])[:, 0]
        (-(logprobs * torch.tensor(mask, dtype=logprobs.dtype)).sum() / max(sum(mask), 1)).backward()
    seconds = time.perf_counter() - began
    model.zero_grad(set_to_none=True)
    model.eval()
    return seconds


def in_worker_thread(play: Any) -> Any:
    """`play` run in a thread of its own, as the gateway's generation worker runs (see the module docstring)."""
    import threading

    def run(*args: Any) -> dict[str, float]:
        box: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: box.update(result=play(*args)), name="in-process-round")
        thread.start()
        thread.join()
        return box["result"]

    return run


def gateway_round(cfg: Any, env_cls: type, model: Any, tokenizer: Any, tasks: list[dict]) -> dict[str, float]:
    import torch

    from agent_lightning.rollout.episodes import generation_weights
    from agent_lightning.rollout.generation import Sampling
    from agent_lightning.serve.agents import play_agents

    g = cfg.grpo
    began = time.perf_counter()
    with generation_weights(model):
        episodes = play_agents(model, tokenizer, env_cls, tasks, max_new_tokens=g.max_turn_tokens,
                               sampling=Sampling(g.temperature, g.top_p, torch.Generator().manual_seed(cfg.run.seed)),
                               label="bench")
    seconds = time.perf_counter() - began
    failed = [e.env.failure for e in episodes if e.env.failure]
    if failed:
        raise SystemExit(f"{len(failed)} agent rollouts failed; first: {failed[0]}")
    return {"seconds": seconds, "generated": sum(len(c.completion_ids) for e in episodes for c in e.run.calls),
            "replies": sum(len(e.run.calls) for e in episodes),
            "tool_calls": sum(len(e.env.calls) for e in episodes),
            "prompts": [e.run.calls[0].prompt_ids for e in episodes]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--tasks", type=int, default=4, help="Training tasks in the round.")
    parser.add_argument("--generations", type=int, default=8, help="Rollouts per task (the GRPO group).")
    parser.add_argument("--concurrency", type=int, default=8, help="agent.concurrency: agent processes at once.")
    parser.add_argument("--max-turn-tokens", type=int, default=192)
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy, both sides do the same work.")
    parser.add_argument("--repeats", type=int, default=1, help="Measure each side this many times, alternating.")
    parser.add_argument("--main-thread", action="store_true",
                        help="Also play the in-process round in the main thread, as the training loop does.")
    parser.add_argument("--train", action="store_true",
                        help="Also time the round's update (forward + backward per rollout) and print the whole "
                             "round's ratio.")
    args = parser.parse_args()

    from agent_lightning.chat.tool_format import prepare_for_tools
    from agent_lightning.config import load_config
    from agent_lightning.envs import environment_class
    from agent_lightning.policy import load_policy
    from agent_lightning.registry import discover

    discover()
    cfg = load_config(args.config, [
        "env.name=agent", "agent.command=python examples/openai_agent/agent.py",
        f"agent.tasks={EXAMPLE / 'tasks.jsonl'}", f"agent.concurrency={args.concurrency}", "env.max_turns=3",
        f"grpo.max_turn_tokens={args.max_turn_tokens}", "grpo.max_completion_length=100000",
        f"grpo.temperature={args.temperature}", "grpo.top_p=1.0", "policy.init_adapter=null"])
    agent = example_agent()
    agent_env = environment_class(cfg)
    local_env = in_process_env(agent, agent_env)
    check_same_tools(agent, local_env)
    model, tokenizer = load_policy(cfg.policy)
    prepare_for_tools(tokenizer, cfg.policy.tool_prompt)
    rows = agent_env.tasks("train", args.tasks, cfg.env.seed)
    tasks = [row for row in rows for _ in range(args.generations)]  # a GRPO round: each task's group side by side
    print(f"one round of {args.tasks} tasks x {args.generations} rollouts, <= {args.max_turn_tokens} tokens per reply, "
          f"<= 4 replies, temperature {args.temperature}; policy {cfg.policy.source}; agent.concurrency "
          f"{args.concurrency}", flush=True)
    sides = {"in process": (in_worker_thread(in_process_round), local_env), "gateway": (gateway_round, agent_env)}
    if args.main_thread:
        sides["in process, main thread"] = (in_process_round, local_env)
    results: dict[str, list[dict[str, float]]] = {label: [] for label in sides}
    for repeat in range(args.repeats):
        for label in (list(sides) if repeat % 2 == 0 else list(sides)[::-1]):
            play, env_cls = sides[label]
            result = play(cfg, env_cls, model, tokenizer, tasks)
            results[label].append(result)
            print(f"  {label:10s} run {repeat + 1}: {result['seconds']:6.1f} s, {result['generated']} generated "
                  "tokens, "
                  f"{result['replies']} replies, {result['tool_calls']} tool calls", flush=True)
    same = results["gateway"][0]["prompts"] == results["in process"][0]["prompts"]
    print(f"  first prompts token for token the same on both sides: {'yes' if same else 'NO'}")
    total = {label: {k: sum(r[k] for r in runs) for k in runs[0] if k not in ("prompts", "sequences")}
             for label, runs in results.items()}
    print("\n| round played | wall time | generated tokens | replies | tool calls | s per generated token |")
    print("|---|---|---|---|---|---|")
    for label, t in total.items():
        print(f"| {label} | {t['seconds']:.1f} s | {t['generated']:.0f} | {t['replies']:.0f} | {t['tool_calls']:.0f} | "
              f"{t['seconds'] / max(t['generated'], 1):.3f} |")
    gate, local = total["gateway"], total["in process"]  # like for like: both decode in a worker thread
    per_token = (gate["seconds"] / max(gate["generated"], 1)) / (local["seconds"] / max(local["generated"], 1))
    print(f"\ngateway / in process: {gate['seconds'] / local['seconds']:.2f}x the round's wall time, {per_token:.2f}x "
          "per generated token (target: <= 1.3x)")
    if args.train:
        update = update_seconds(model, results["in process"][0]["sequences"])
        gate_round, local_round = (side["seconds"] / args.repeats + update for side in (gate, local))
        print(f"the round's update (forward + backward of {len(tasks)} rollouts): {update:.1f} s; the whole round, "
              f"sampling + update: gateway {gate_round:.1f} s, in process {local_round:.1f} s, "
              f"{gate_round / local_round:.2f}x (target: <= 1.3x)")
    print("reproduce: .venv/bin/python benchmarks/gateway_overhead.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
