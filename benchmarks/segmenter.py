"""How the tolerant output parser scales: pathological inputs at n and 2n characters, and a typical reply.

    .venv/bin/python benchmarks/segmenter.py [--scale 1.0]

Each pathological input (what makes naive regexes or repeated repairs quadratic) is segmented at its base size and
at twice that size; the ratio of the two times is ~2 for linear work and ~4 for quadratic. A typical tool-call
reply is parsed 2,000 times for its mean time. The correctness of the same inputs is tested in
tests/chat/test_segmenter.py; this script holds the timing claim (each pathological input well under 1 s, ratios
near 2, a typical reply well under 1 ms). Not covered: memory use.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from agent_lightning.chat import segmenter  # noqa: E402
from agent_lightning.chat.segmenter import parse_response_text  # noqa: E402

TOOLS = ["write_file", "read_file", "list_dir", "run_python", "search"]
PATHOLOGICAL = {  # name -> text of about n units
    "open_brackets": lambda n: "[" * (50 * n),
    "deep_objects": lambda n: "<tool_call>" + '{"a": ' * (5 * n),
    "spaces": lambda n: " " * (50 * n),
    "broken_bare_lines": lambda n: '{"type": [1,\n' * (4 * n),
    "call_like_bare_lines": lambda n: '{"name": "a", "arguments": {\n' * (2 * n),
    "many_tags": lambda n: "<tool_call>" * (5 * n),
    "many_fences": lambda n: "```\n" * (12 * n),
    "backslashes": lambda n: '<tool_call>{"a": "' + "\\" * (50 * n),
    "long_mistral_name": lambda n: "[TOOL_CALLS]" + "a" * (50 * n),
}
TYPICAL = ('I will create the file now.\n<tool_call>\n{"name": "write_file", "arguments": {"path": "hello.py", '
           '"content": "print(\\"hi\\")"}}\n</tool_call>')


def seconds(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="base size in thousands of units (default 1)")
    args = parser.parse_args()
    n = max(1, int(1000 * args.scale))
    print(f"{'input':<22}{'chars n':>10}{'s at n':>10}{'s at 2n':>10}{'ratio':>8}")
    worst = 0.0
    for name, make in PATHOLOGICAL.items():
        small, large = make(n), make(2 * n)
        t1 = seconds(lambda: segmenter._segment(small))
        t2 = seconds(lambda: segmenter._segment(large))
        worst = max(worst, t2)
        print(f"{name:<22}{len(small):>10}{t1:>10.4f}{t2:>10.4f}{t2 / max(t1, 1e-9):>8.2f}")
    parse_response_text(TYPICAL, TOOLS)
    typical = seconds(lambda: [parse_response_text(TYPICAL, TOOLS) for _ in range(2000)], repeat=1) / 2000
    print(f"slowest pathological input at 2n: {worst:.3f} s; typical reply: {typical * 1e6:.1f} us per parse")
    print("reproduce: .venv/bin/python benchmarks/segmenter.py" + (f" --scale {args.scale}" if args.scale != 1 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
