"""Claim: the gateway serves concurrent agents faster by generating their requests together than one at a time.

    .venv/bin/python benchmarks/gateway_batching.py [--config configs/default.yaml] [--adapter DIR]
                                                   [--agents 8] [--turns 3] [--max-tokens 48] [--repeats 1]
                                                   [--batch-wait-ms MS]

One policy (the config's, `eval`'s way of loading it) is served twice, side by side in this process, by the same
gateway app on two loopback ports: with `max_batch_size` = the number of agents (batched) and with 1 (one request
at a time). Each agent is a thread with its own unmodified `openai` client under its own rollout: it sends the
environment's system prompt, a test task and the environment's tools (as JSON schemas), then `--turns` calls in
all, appending each reply and answering each tool call with a fixed result (or, after a reply without calls, with
"Continue."). Greedy decoding with a fixed max_tokens, so both servers generate exactly the same tokens and do the
same work; the servers are warmed up with one call each, then measured one after the other (`--repeats`
alternates them). Prints each server's wall
time, calls/s, generated tokens/s, generation steps and mean batch, the throughput ratio and the command that
reproduces it. Not covered: sampled requests (they batch the same way when unseeded), prompts shared between
requests (each request reads its whole prompt), GPUs, agents whose tools take time (that would leave fewer
requests waiting together).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def agent(url: str, model: str, rollout: str, messages: list[dict], tools: list[dict], turns: int, max_tokens: int,
          start: threading.Barrier, usage: list[int]) -> None:
    """One agent: `turns` chat calls of a growing conversation; adds [calls, completion tokens] to `usage`."""
    import openai

    client = openai.OpenAI(base_url=f"{url}/rollouts/{rollout}/v1", api_key="unused", max_retries=0, timeout=600)
    start.wait()
    for _ in range(turns):
        reply = client.chat.completions.create(model=model, messages=messages, tools=tools, temperature=0,
                                               max_tokens=max_tokens)
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if message.tool_calls:
            messages += [{"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in message.tool_calls]
        else:
            messages.append({"role": "user", "content": "Continue."})
        usage[0] += 1
        usage[1] += reply.usage.completion_tokens


def measure(url: str, model: str, conversations: list[list[dict]], tools: list[dict], turns: int, max_tokens: int,
            tag: str) -> tuple[float, int, int]:
    """Seconds, calls and generated tokens of all agents running at once against the server at `url`."""
    usages = [[0, 0] for _ in conversations]
    start = threading.Barrier(len(conversations) + 1)
    threads = [threading.Thread(target=agent, args=(url, model, f"{tag}-{i}", [dict(m) for m in c], tools, turns,
                                                     max_tokens, start, usages[i]))
               for i, c in enumerate(conversations)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    return seconds, sum(u[0] for u in usages), sum(u[1] for u in usages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--adapter", help="Serve base + this adapter (default: the base policy).")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=1, help="Measure each server this many times, alternating.")
    parser.add_argument("--batch-wait-ms", type=float, help="The batched server's gather window (serve "
                                                            "--batch-wait-ms; default: the gateway's).")
    args = parser.parse_args()

    import httpx
    from transformers.utils import get_json_schema

    from agent_lightning.chat.tool_format import prepare_for_tools
    from agent_lightning.config import load_config
    from agent_lightning.envs import environment_class, prompt_prefix
    from agent_lightning.evaluate import load_for_eval
    from agent_lightning.registry import discover
    from agent_lightning.serve.app import create_app
    from agent_lightning.serve.server import BackgroundServer

    discover()
    cfg = load_config(args.config)
    env_cls = environment_class(cfg)
    model, tokenizer = load_for_eval(cfg, args.adapter)
    prepare_for_tools(tokenizer, cfg.policy.tool_prompt)
    env = env_cls()
    tools = [get_json_schema(getattr(env, name)) for name in env_cls.tool_names()]
    prefix = [dict(m) for m in prompt_prefix(cfg, env_cls)]
    tasks = env_cls.tasks("test", cfg.env.test_size, cfg.env.seed)[: args.agents]
    conversations = [prefix + [{"role": "user", "content": t["prompt"]}] for t in tasks]
    name = cfg.policy.source
    wait = {} if args.batch_wait_ms is None else {"batch_wait_s": args.batch_wait_ms / 1000}
    servers = {label: BackgroundServer(create_app(model, tokenizer, name, max_batch_size=size, **wait)).start()
               for label, size in (("batched", len(conversations)), ("one at a time", 1))}
    print(f"{len(conversations)} agents x {args.turns} calls, max_tokens {args.max_tokens}, greedy; policy "
          f"{cfg.policy.source}{' + ' + args.adapter if args.adapter else ''}, {torch_threads()} torch threads",
          flush=True)
    totals = {label: [0.0, 0, 0] for label in servers}
    try:
        for server in servers.values():  # warm-up, not measured: first-call allocations and kernel choices
            measure(server.url, name, conversations[:1], tools, 1, 2, "warm-up")
        before = {label: httpx.get(f"{server.url}/stats").json() for label, server in servers.items()}
        for repeat in range(args.repeats):
            order = list(servers) if repeat % 2 == 0 else list(servers)[::-1]
            for label in order:
                seconds, calls, tokens = measure(servers[label].url, name, conversations, tools, args.turns,
                                                 args.max_tokens, f"r{repeat}")
                totals[label] = [totals[label][0] + seconds, totals[label][1] + calls, totals[label][2] + tokens]
                print(f"  {label:14s} run {repeat + 1}: {seconds:6.1f} s", flush=True)
        after = {label: httpx.get(f"{server.url}/stats").json() for label, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
    print(f"\n| server | wall time | calls/s | generated tokens/s | generation steps | mean batch |")
    print("|---|---|---|---|---|---|")
    for label, (seconds, calls, tokens) in totals.items():
        generate_calls = after[label]["generate_calls"] - before[label]["generate_calls"]
        requests = after[label]["requests"] - before[label]["requests"]
        print(f"| {label} (max batch {after[label]['max_batch_size']}) | {seconds:.1f} s | {calls / seconds:.2f} | "
              f"{tokens / seconds:.1f} | {generate_calls} | {requests / generate_calls:.2f} |")
    batched, alone = totals["batched"], totals["one at a time"]
    print(f"\nthroughput, batched / one at a time: {(batched[1] / batched[0]) / (alone[1] / alone[0]):.2f}x calls/s "
          f"({batched[2]} and {alone[2]} tokens generated)")
    print("reproduce: .venv/bin/python benchmarks/gateway_batching.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    sys.exit(main())
