"""`tools`: a mixed environment that composes the filesystem environment with a calculator.

    python main_agent_lightning.py --algo grpo --set env.name=tools

It shows how environments compose: `ToolsEnvironment` subclasses `FilesystemEnvironment` (its six file tools,
its verifier and its tasks) and adds one tool, `calculator`. Half of the tasks are filesystem tasks; the other
half need both kinds of tool:
  - sum_file:     add up the numbers in a file and write the total to another file;
  - order_total:  answer with the total cost of an order file (lines "item,quantity,unit price");
  - evaluate:     evaluate an expression and write the result to a file.
They use the filesystem split's word pools for names (train and test share no file names) and are verified the
same way (expected tree, plus the answer for questions). `search_code(query)` searches the configured code memory
(the run's memory context, `env.memory`: `memory.store`, filled by `memory index PATH`); without one it answers with a clear error.

The calculator evaluates arithmetic with Python's `ast` (numbers, + - * / // % **, parentheses, abs, round,
min, max, sqrt), never `eval`: exponents and operand sizes are bounded, and anything else is a clear error.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import random
from typing import Any

from agent_lightning import environment
from agent_lightning.envs import ToolError, check_split
from agent_lightning.environments import filesystem as fs

# ----------------------------------------------------------------------------- the calculator
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {"abs": abs, "round": round, "min": min, "max": max, "sqrt": math.sqrt}
MAX_MAGNITUDE = 1e15


def calculate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely (see module docstring); ToolError on anything else."""
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("calculator: give an expression, e.g. \"(3 + 4) * 2\"")
    if len(expression) > 300:
        raise ToolError("calculator: the expression is longer than 300 characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ToolError(f"calculator: cannot parse {expression!r}; use numbers, + - * / // % **, parentheses") from None
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise ToolError("calculator: division by zero") from None
    except (OverflowError, ValueError) as exc:
        raise ToolError(f"calculator: {exc}") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < MAX_MAGNITUDE:
        return int(value)
    return round(value, 10) if isinstance(value, float) else value


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
            raise ValueError("exponent or base too large")
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        return _bounded(_FUNCTIONS[node.func.id](*[_eval(a) for a in node.args]))
    raise ValueError(f"unsupported element {ast.unparse(node)!r}; use numbers, + - * / // % **, abs, round, min, max, sqrt")


def _bounded(value: Any) -> int | float:
    if isinstance(value, complex) or abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"result out of range (|x| > {MAX_MAGNITUDE:g})")
    return value


def _fmt(value: int | float) -> str:
    return str(value)


# ----------------------------------------------------------------------------- tasks that need both tools
def _numbers(d: Any, n: int) -> list[int]:
    return [d.rng.randint(2, 999) for _ in range(n)]


def _sum_file(d: Any) -> tuple[str, dict[str, str], dict[str, str], str | None, dict]:
    files: dict[str, str] = {}
    d.distractors(files, 0, 3)
    src, dst = d.file(d.folder()), d.file("", ".txt")
    nums = _numbers(d, d.rng.randint(3, 6))
    files[src] = "\n".join(map(str, nums)) + "\n"
    total = _fmt(calculate(" + ".join(map(str, nums))))
    prompt = f"Add up the numbers in {src} (one per line) and write the total to {dst}."
    solution = {"calls": [{"name": "read_file", "arguments": {"path": src}},
                          {"name": "calculator", "arguments": {"expression": " + ".join(map(str, nums))}},
                          {"name": "write_file", "arguments": {"path": dst, "content": total}}],
                "final": f"Wrote the total {total} to {dst}."}
    return prompt, files, fs.changed(files, add={dst: total}), None, solution


def _order_total(d: Any) -> tuple[str, dict[str, str], dict[str, str], str | None, dict]:
    files: dict[str, str] = {}
    d.distractors(files, 0, 3)
    src = d.file(d.folder(), ".csv")
    rows = [(d.word(), d.rng.randint(1, 9), d.rng.randint(1, 99)) for _ in range(d.rng.randint(2, 4))]
    files[src] = "".join(f"{item},{qty},{price}\n" for item, qty, price in rows)
    expression = " + ".join(f"{qty} * {price}" for _, qty, price in rows)
    total = _fmt(calculate(expression))
    prompt = (f"Each line of {src} is item,quantity,unit price. What is the total cost of the order? "
              "Answer with the number only.")
    solution = {"calls": [{"name": "read_file", "arguments": {"path": src}},
                          {"name": "calculator", "arguments": {"expression": expression}}],
                "final": f"The total cost is:\n{total}"}
    return prompt, files, fs.changed(files), total, solution


def _evaluate(d: Any) -> tuple[str, dict[str, str], dict[str, str], str | None, dict]:
    files: dict[str, str] = {}
    d.distractors(files, 0, 3)
    a, b, c = _numbers(d, 3)
    expression = d.rng.choice([f"({a} + {b}) * {c}", f"{a} * {b} - {c}", f"({a} - {b}) * ({c} + {a})", f"{a} * {b} * {c}"])
    dst = d.file(d.folder())
    value = _fmt(calculate(expression))
    prompt = f"Compute {expression} and write the result to {dst}."
    solution = {"calls": [{"name": "calculator", "arguments": {"expression": expression}},
                          {"name": "write_file", "arguments": {"path": dst, "content": value}}],
                "final": f"{expression} = {value}, written to {dst}."}
    return prompt, files, fs.changed(files, add={dst: value}), None, solution


CALC_TEMPLATES = {"sum_file": _sum_file, "order_total": _order_total, "evaluate": _evaluate}


@environment("tools")
class ToolsEnvironment(fs.FilesystemEnvironment):
    """Filesystem tools plus a calculator: file tasks and tasks that need both (environments compose)."""

    system_prompt = (
        "You work in a workspace folder through the tools read_file, write_file, list_dir, make_dir, move, delete "
        "and calculator; paths are relative to the workspace. Use the calculator for arithmetic. Do exactly what "
        "the user asks, then finish with a short final message. When asked a question, put only the answer on "
        "the last line."
    )

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        """Even positions: filesystem tasks; odd positions: calculator tasks (rotating templates)."""
        check_split(split)
        file_tasks = fs.FilesystemEnvironment.tasks(split, (size + 1) // 2, seed)
        names = list(CALC_TEMPLATES)
        rows = []
        for i in range(size):
            if i % 2 == 0:
                row = dict(file_tasks[i // 2])
            else:
                name = names[(i // 2 + seed) % len(names)]
                draw = fs.Draw(random.Random(f"tools:{split}:{seed}:{i}"), fs.POOLS[split])
                prompt, files, tree, answer, solution = CALC_TEMPLATES[name](draw)
                expected = {"tree": dict(sorted(tree.items())), **({"answer": answer} if answer is not None else {})}
                row = {"prompt": prompt, "files": json.dumps(dict(sorted(files.items()))), "tier": 2,
                       "template": name, "expected": json.dumps(expected), "solution": json.dumps(solution)}
            row["task_id"] = f"tools-{split}-{i:05d}"
            rows.append(row)
        return rows

    def calculator(self, expression: str) -> str:
        """Evaluate an arithmetic expression exactly, e.g. "(12 + 30) * 4 / 7".

        Args:
            expression: Numbers with + - * / // % ** and parentheses; abs, round, min, max, sqrt.
        """
        return _fmt(calculate(expression))

    def search_code(self, query: str) -> str:
        """Search the indexed code memory; returns the best-matching code chunks with file and lines.

        Args:
            query: What to look for, e.g. "where tool calls are parsed".
        """
        from agent_lightning.memory.retriever import format_hits

        memory = self.memory
        if memory is None:
            raise ToolError("search_code: no code memory is configured for this run")
        if not isinstance(query, str) or not query.strip():
            raise ToolError('search_code: give a query, e.g. "where tool calls are parsed"')
        hits = memory.search_code(query, max(memory.section.code_k, 1))
        return format_hits(hits) if hits else "no matching code in memory"
