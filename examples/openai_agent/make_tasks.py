"""Write tasks.jsonl: small arithmetic and word puzzles that the example agent's tools solve, with their answers.

    python examples/openai_agent/make_tasks.py [--count 300] [--seed 0] [--out examples/openai_agent/tasks.jsonl]

Three tiers, as the built-in `arithmetic` environment has (so `env.train_tiers` works on them):
  1. one operation on small numbers ("What is 17 + 5?")
  2. two-digit products, reversing a word, counting a letter
  3. two operations ("What is (4 + 9) * 3?", "What is 12 * 7 - 15?")
Each line is {"task_id", "prompt", "answer", "tier"}; no `split`, so Agent Lightning splits them by a hash of their
content (about one in five to test). The output is the same for the same --count and --seed.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

WORDS = ("apple river stone cloud maple tiger lemon piano rocket garden silver candle planet forest window yellow "
         "orange purple copper marble spider dragon rabbit falcon winter summer autumn harbor island valley meadow "
         "canyon desert glacier breeze thunder shadow mirror ladder basket pencil banana cherry").split()


def tier1(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(2, 60), rng.randint(2, 60)
    if rng.random() < 0.5:
        return f"What is {a} + {b}?", str(a + b)
    a, b = max(a, b), min(a, b)
    return f"What is {a} - {b}?", str(a - b)


def tier2(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(3)
    word = rng.choice(WORDS)
    if kind == 0:
        a, b = rng.randint(11, 99), rng.randint(11, 99)
        return f"What is {a} * {b}?", str(a * b)
    if kind == 1:
        return f"Write the word '{word}' backwards.", word[::-1]
    letter = rng.choice(sorted(set(word)))
    return f"How many times does the letter '{letter}' appear in '{word}'?", str(word.count(letter))


def tier3(rng: random.Random) -> tuple[str, str]:
    a, b, c = rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 9)
    if rng.random() < 0.5:
        return f"What is ({a} + {b}) * {c}?", str((a + b) * c)
    return f"What is {a} * {c} - {b}?", str(a * c - b)


def make_tasks(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    tasks, seen = [], set()
    while len(tasks) < count:
        tier = rng.choice((1, 2, 2, 3))
        prompt, answer = (tier1, tier2, tier3)[tier - 1](rng)
        if prompt in seen:
            continue
        seen.add(prompt)
        tasks.append({"task_id": f"t-{len(tasks):04d}", "prompt": prompt, "answer": answer, "tier": tier})
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).with_name("tasks.jsonl")))
    args = parser.parse_args()
    tasks = make_tasks(args.count, args.seed)
    with open(args.out, "w") as fh:
        for task in tasks:
            fh.write(json.dumps(task) + "\n")
    print(f"wrote {len(tasks)} tasks to {args.out}")


if __name__ == "__main__":
    main()
