"""Reward registry overhead: what `RewardSuite` adds per batch over calling the reward functions directly.

    .venv/bin/python benchmarks/rewards.py [--rounds 15] [--batches 40] [--batch-size 64]

The batch is `--batch-size` realistic filesystem-environment rollouts (message lists with reasoning text, tool
calls, tool results and a final message), played once through real `FilesystemEnvironment` instances and verified
once (`_finish_episode`), a quarter each: the reference solution; the reference solution after a failed call; the
first reference call then a premature "done"; no call and a repetitive answer. Four library rewards score it:
task_success, partial_progress, tool_error_penalty and repetition_penalty (with their declared weights).

Timed, per batch, with the keyword arguments TRL passes (prompts, completions, completion_ids, trainer_state,
log_extra, log_metric, environments and the dataset columns):
  direct  the four raw functions from the registry, called in turn;
  suite   the four `RewardSuite.from_config(...).functions` (trace_dir None, diagnostics set: as in training):
          argument filtering, the suite's environment check, validation of every value, record() and
          SignalDiagnostics.observe.
Each suite batch is timed next to a direct one (the order alternates), and the overhead is the median of those
paired differences: on a shared, loaded machine the rewards' own run time drifts by more than the overhead, and
pairing cancels the drift. A second row isolates the wrapper: the same suite around functions with the library's
signature that only return the precomputed scores.
Each batch is a fresh list object (TRL builds one per step), so the suite's once-per-batch path runs every batch.
What is measured is the wrapper, not verification: every outcome is already verified, so the suite's
`environments_for` only checks `outcome.verified` and calls no `_finish_episode` (asserted: every env keeps the
identical outcome object through the run), and the raw rewards read the same outcomes.
Not measured: verification itself, tracing (trace_dir set), async or timed rewards (their event loop / thread).

Prints the median per-batch time of each side, the median overhead (suite - direct) in ms and the ratio
suite/direct, for the library rewards and for the isolated wrapper. Target: overhead <= 1 ms per batch of 64
completions.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

REWARDS = ("task_success", "partial_progress", "tool_error_penalty", "repetition_penalty")
TARGET_MS = 1.0


def chatml(call: dict) -> str:
    return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"


def play(env_cls, task: dict, turns: list[str]):
    """One episode as TRL's tool loop runs it (parse, execute, append results), verified once at the end."""
    from agent_lightning.chat.segmenter import parse_response_text
    from agent_lightning.chat.tool_format import to_message

    env = env_cls()
    env.reset(**task)
    names = env.tool_names()
    messages = []
    for text in turns:
        message = to_message(parse_response_text(text, names), names)
        messages.append(message)
        if not message.get("tool_calls"):
            break
        for call in message["tool_calls"]:
            name, arguments = call["function"]["name"], call["function"]["arguments"]
            try:
                result = getattr(env, name)(**arguments)
            except Exception as exc:  # noqa: BLE001 - what TRL does with a failing tool
                result = {"error": str(exc)}
            messages.append({"role": "tool", "name": name, "content": str(result)})
    env._finish_episode(messages)
    return messages, env


def episode_turns(task: dict, kind: int) -> list[str]:
    solution = json.loads(task["solution"])
    calls = solution["calls"]
    think = "Let me look at what the task needs and do it step by step.\n"
    if kind == 0:  # the reference solution
        return [think + chatml(c) for c in calls] + [solution["final"]]
    if kind == 1:  # a failed call first, then the solution
        missing = {"name": "read_file", "arguments": {"path": "no/such/file.txt"}}
        return [think + chatml(missing)] + [chatml(c) for c in calls] + ["Done. " + solution["final"]]
    if kind == 2:  # one call, then a premature finish
        return [think + chatml(calls[0]), "I have finished the task."]
    return ["I think the task is done. I think the task is done. I think the task is done, the files are fine."]


def build_batch(size: int):
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    env_cls = ENVIRONMENTS.get("filesystem").obj
    tasks = env_cls.tasks("train", size, 0)
    completions, envs = [], []
    for i, task in enumerate(tasks):
        messages, env = play(env_cls, task, episode_turns(task, i % 4))
        completions.append(messages)
        envs.append(env)
    assert all(env.outcome.verified for env in envs)
    columns = {k: [t[k] for t in tasks] for k in tasks[0] if k != "prompt"}
    prompts = [[{"role": "user", "content": t["prompt"]}] for t in tasks]
    return env_cls, prompts, completions, envs, columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batches", type=int, default=40, help="batches per side per round")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    print(f"command: .venv/bin/python benchmarks/rewards.py --rounds {args.rounds} --batches {args.batches} "
          f"--batch-size {args.batch_size}")

    from transformers import TrainerState

    from agent_lightning.config import RewardSpec
    from agent_lightning.registry import REWARDS as REGISTRY
    from agent_lightning.rewarding import RewardSuite
    from agent_lightning.observe.diagnostics import SignalDiagnostics

    start = time.perf_counter()
    env_cls, prompts, completions, envs, columns = build_batch(args.batch_size)
    outcomes = [id(env.outcome) for env in envs]
    successes = sum(env.outcome.success for env in envs)
    errors = sum(env.outcome.tool_errors for env in envs)
    print(f"batch: {len(completions)} filesystem rollouts built and verified in {time.perf_counter() - start:.2f} s "
          f"({successes} successes, {errors} failed tool calls, "
          f"{sum(len(c) for c in completions) / len(completions):.1f} messages per completion)")

    raw = [REGISTRY.get(name).obj for name in REWARDS]
    suite = RewardSuite.from_config([RewardSpec(name=name) for name in REWARDS], env_cls)
    suite.trace_dir = None
    suite.diagnostics = SignalDiagnostics(window=5)
    state = TrainerState()
    kwargs = dict(columns, trainer_state=state, log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None,
                  environments=envs)
    ids = [[0] * 40 for _ in completions]

    def batch_of(functions):
        def run(batch):
            return [fn(prompts=prompts, completions=batch, completion_ids=ids, **kwargs) for fn in functions]
        return run

    sides = {"direct": batch_of(raw), "suite": batch_of(suite.functions)}
    expected = sides["direct"](list(completions))
    assert sides["suite"](list(completions)) == expected, "the suite scores differently from the raw functions"
    print("rewards: " + ", ".join(f"{n} (weight {w:g}, mean {statistics.fmean(v):+.3f})"
                                  for n, w, v in zip(suite.names, suite.weights, expected)))

    def replaying(values):
        def replay(completions, environments=None, **kwargs):  # a library reward's signature, no work
            return list(values)
        return replay

    bare = RewardSuite(env_cls)
    bare.diagnostics = SignalDiagnostics(window=5)
    for name, weight, values in zip(suite.names, suite.weights, expected):
        bare.add(name, replaying(values), weight)
    replays = [replaying(values) for values in expected]
    pairs = {"library rewards": (sides["direct"], sides["suite"]),
             "replayed scores": (batch_of(replays), batch_of(bare.functions))}

    results = {label: {"direct": [], "suite": [], "overhead": []} for label in pairs}
    for r in range(args.rounds):
        for label, (direct_fn, suite_fn) in pairs.items():
            row = results[label]
            batches = [list(completions) for _ in range(2 * args.batches)]  # a fresh list per batch, as TRL's
            gc.collect()
            for b in range(args.batches):  # each suite batch is paired with a direct one; the order alternates
                took = {}
                for side in (("direct", "suite") if (r + b) % 2 == 0 else ("suite", "direct")):
                    batch = batches[2 * b + (side == "suite")]
                    begin = time.perf_counter_ns()
                    (direct_fn if side == "direct" else suite_fn)(batch)
                    took[side] = (time.perf_counter_ns() - begin) / 1e6
                    row[side].append(took[side])
                row["overhead"].append(took["suite"] - took["direct"])
        lib, rep = results["library rewards"], results["replayed scores"]
        last = {k: statistics.median(v[-args.batches:]) for k, v in lib.items()}
        print(f"  round {r + 1:2d}: library rewards direct {last['direct']:.3f} ms, suite {last['suite']:.3f} ms, "
              f"overhead {last['overhead']:+.3f} ms; replayed scores overhead "
              f"{statistics.median(rep['overhead'][-args.batches:]):+.3f} ms")

    assert [id(env.outcome) for env in envs] == outcomes, "an outcome was re-verified during the run"
    assert not suite.error_counts and not bare.error_counts, (dict(suite.error_counts), dict(bare.error_counts))
    n = args.rounds * args.batches
    print(f"per batch of {args.batch_size} completions x {len(REWARDS)} rewards, medians of {n} paired batches:")
    print(f"  {'':16s} {'direct (ms)':>12s} {'suite (ms)':>11s} {'overhead (ms)':>14s} {'ratio':>6s}")
    for label, row in results.items():
        direct, wrapped = statistics.median(row["direct"]), statistics.median(row["suite"])
        print(f"  {label:16s} {direct:12.3f} {wrapped:11.3f} {statistics.median(row['overhead']):+14.3f} "
              f"{wrapped / direct:6.2f}")
    overhead = statistics.median(results["library rewards"]["overhead"])
    isolated = statistics.median(results["replayed scores"]["overhead"])
    print(f"registry overhead per batch: {overhead:.3f} ms with the library rewards, {isolated:.3f} ms isolated "
          f"(rewards replaying their scores: {isolated / args.batch_size * 1e3:.1f} us per completion); "
          f"target <= {TARGET_MS:g} ms: {'met' if max(overhead, isolated) <= TARGET_MS else 'NOT met'}")
    print("no re-verification: every environment kept its verified outcome object")


if __name__ == "__main__":
    main()
