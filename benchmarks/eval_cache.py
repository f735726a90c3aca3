"""Claim: keeping each row's KV cache between turns makes multi-turn evaluation faster than re-reading the
whole conversation every turn, at the same success rate.

    .venv/bin/python benchmarks/eval_cache.py --adapter RUN_DIR/sft/adapter [--config configs/default.yaml]
                                              [--limit 50] [--batch-size 50]

Both variants play the same test tasks greedily with the same policy, tools, sandbox and verifier:
  - cached:    agent_lightning.rollout.episodes.play_episodes (what `eval` runs): each turn feeds only the new tool
               results; the context is the policy's own tokens;
  - re-prefill: each turn renders the whole conversation again through the chat template and generates from
               scratch (how evaluation worked before), the context being the re-rendered parsed replies.
Prints wall time, tokens fed to the model (prompt tokens processed) and success of each, and the speed-up.
Use a policy that makes tool calls (an SFT adapter): the base model mostly stops after one turn, where both are
the same. Success can differ by a task or two: the contexts differ where a re-rendered call is not
token-identical to what the policy wrote. Not covered: sampling, other batch sizes in one run.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def reprefill_rollouts(model: Any, tokenizer: Any, env_cls: type, tasks: list[dict], system: str,
                       max_new_tokens: int, max_turns: int) -> tuple[list[Any], list[list[dict]], int]:
    """The baseline: every turn re-renders and re-reads each active conversation from its first token."""
    from agent_lightning.envs import tool_message

    envs = [env_cls() for _ in tasks]
    conversations, completions, fed = [], [], 0
    for env, task in zip(envs, tasks):
        observation = env.reset(**task)
        conversations.append([{"role": "system", "content": system},
                              {"role": "user", "content": task["prompt"] + (observation or "")}])
        completions.append([])
    tools = [[getattr(env, n) for n in env.tool_names()] for env in envs]
    active = list(range(len(tasks)))
    tokenizer.padding_side = "left"
    for _ in range(max_turns + 1):
        if not active:
            break
        prompts = [tokenizer.apply_chat_template(conversations[i], tools=tools[i], add_generation_prompt=True,
                                                 tokenize=False) for i in active]
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        fed += int(batch["attention_mask"].sum())
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        still = []
        for i, ids in zip(active, out[:, batch["input_ids"].shape[1]:].tolist()):
            reply = tokenizer.parse_response(ids, tools=tools[i])
            conversations[i].append(reply)
            completions[i].append(reply)
            calls = reply.get("tool_calls") or []
            for call in calls:
                function = call.get("function", {})
                message = tool_message(envs[i], function.get("name"), function.get("arguments", {}))
                conversations[i].append(message)
                completions[i].append(message)
            if calls:
                still.append(i)
        active = still
    return envs, completions, fed


def main() -> int:
    from _eval_setup import load_eval_setup

    from agent_lightning.rollout.generation import CachedSession
    from agent_lightning.rollout.episodes import play_episodes

    setup = load_eval_setup(__doc__.splitlines()[0], default_limit=50)
    args, cfg, env_cls, tasks = setup.args, setup.cfg, setup.env_cls, setup.tasks
    model, tokenizer, system, max_new = setup.model, setup.tokenizer, setup.system, setup.max_new

    fed = {"cached": 0}
    original = CachedSession.generate

    def counting(self: Any, segments: dict[int, list[int]], n: Any) -> Any:
        fed["cached"] += sum(len(s) for s in segments.values())
        return original(self, segments, n)

    results = {}
    for name in ("cached", "re-prefill"):
        started, envs = time.time(), []
        for start in range(0, len(tasks), args.batch_size):
            chunk = tasks[start:start + args.batch_size]
            if name == "cached":
                CachedSession.generate = counting
                episodes = play_episodes(model, tokenizer, env_cls, chunk, system, max_new_tokens=max_new,
                                         max_turns=cfg.env.max_turns)
                done, completions = [e.env for e in episodes], [e.messages for e in episodes]
                CachedSession.generate = original
            else:
                done, completions, n = reprefill_rollouts(model, tokenizer, env_cls, chunk, system, max_new,
                                                          cfg.env.max_turns)
                fed["re-prefill"] = fed.get("re-prefill", 0) + n
            for env, completion in zip(done, completions):
                env._finish_episode(completion)  # verify the episode, as the reward functions do in `eval`
            envs += done
        results[name] = (time.time() - started, sum(e.outcome.success for e in envs))
        print(f"{name:10s}  {results[name][0]:7.1f} s   {fed[name]:8d} prompt tokens fed   "
              f"success {results[name][1]}/{len(tasks)}", flush=True)
    print(f"speed-up of the cache: {results['re-prefill'][0] / results['cached'][0]:.2f}x wall time, "
          f"{fed['re-prefill'] / max(fed['cached'], 1):.2f}x fewer prompt tokens")
    print("reproduce: .venv/bin/python benchmarks/eval_cache.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
