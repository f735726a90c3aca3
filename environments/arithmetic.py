"""`arithmetic`: single-turn questions with one exact, verifiable answer (arithmetic and string puzzles).

The fast fixture of the training spine: no tools, no sandbox. Three tiers:
  1. one operation on small numbers ("What is 7 + 5?")
  2. two-digit products, word reversal, upper-casing, letter counting
  3. two operations ("What is (4 + 9) * 3?"), the largest of a list

`tasks("train"|"test", size, seed)` is deterministic; a question's split is fixed by its hash, so no test
question is ever a train question, whatever the sizes and seeds.
The completion is verified by `final_answer()`: the last number in the reply for numeric answers, the last
non-empty line (minus an "Answer:" prefix, quotes and trailing punctuation) otherwise, compared exactly.
"""

from __future__ import annotations

import random
import re
import zlib
from typing import Any

from agent_lightning import environment
from agent_lightning.envs import Environment, Outcome, check_split

WORDS = (
    "apple river stone cloud maple tiger lemon piano rocket garden silver candle planet forest window "
    "yellow orange purple violet copper marble spider dragon rabbit falcon winter summer autumn spring "
    "harbor island valley meadow canyon desert glacier breeze thunder shadow mirror ladder basket pencil"
).split()

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _tier1(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(0, 20), rng.randint(0, 20)
    if rng.random() < 0.5:
        return f"What is {a} + {b}?", str(a + b)
    a, b = max(a, b), min(a, b)
    return f"What is {a} - {b}?", str(a - b)


def _tier2(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(4)
    word = rng.choice(WORDS)
    if kind == 0:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return f"What is {a} * {b}?", str(a * b)
    if kind == 1:
        return f"Write the word '{word}' backwards.", word[::-1]
    if kind == 2:
        return f"Write the word '{word}' in capital letters.", word.upper()
    letter = rng.choice(sorted(set(word)))
    return f"How many times does the letter '{letter}' appear in '{word}'?", str(word.count(letter))


def _tier3(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        a, b, c = rng.randint(1, 12), rng.randint(1, 12), rng.randint(2, 5)
        return f"What is ({a} + {b}) * {c}?", str((a + b) * c)
    values = rng.sample(range(1, 100), 4)
    return f"Which is the largest number in {values}?", str(max(values))


TIERS = {1: _tier1, 2: _tier2, 3: _tier3}


def split_of(question: str) -> str:
    """Disjoint splits by construction: a question belongs to `test` iff its hash falls in one bucket of five."""
    return "test" if zlib.crc32(question.encode()) % 5 == 0 else "train"


def final_answer(text: str, numeric: bool) -> str:
    """The answer a reply commits to (see module docstring)."""
    if numeric:
        numbers = NUMBER.findall(text)
        return numbers[-1] if numbers else ""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    last = re.sub(r"^(final\s+)?answer\s*[:=]\s*", "", last, flags=re.IGNORECASE)
    return last.strip().strip("\"'`*").rstrip(".!").strip()


@environment("arithmetic")
class ArithmeticEnv(Environment):
    """Single-turn arithmetic and string questions with an exact answer (no tools)."""

    system_prompt = "Answer the question. Reply with only the answer."

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        check_split(split)
        rng = random.Random(f"arithmetic:{split}:{seed}")
        rows, seen = [], set()
        for _ in range(200 * size):
            if len(rows) == size:
                break
            tier = rng.choice((1, 1, 2, 2, 3))
            question, answer = TIERS[tier](rng)
            if question in seen or split_of(question) != split:
                continue
            seen.add(question)
            rows.append({"task_id": f"{split}-{len(rows):05d}", "prompt": question, "answer": answer, "tier": tier})
        return rows

    def _finish(self, completion_text: str) -> Outcome:
        expected = str(self.task["answer"])
        numeric = bool(NUMBER.fullmatch(expected))
        answer = final_answer(completion_text, numeric)
        ok = answer == expected if numeric else answer.lower() == expected.lower()
        self.outcome = Outcome(
            success=ok, checks={"answer": ok}, answer=answer, expected=expected, turns=1, verified=True
        )
        return self.outcome
