"""The `code` environment: HumanEval in the sandbox, per-test verdicts, the episode path, the reference solver."""

import importlib
import os
import json
import sys

import pytest

from agent_lightning.registry import ENVIRONMENTS, discover


@pytest.fixture(scope="module")
def code():
    discover()
    return importlib.import_module("agent_lightning.environments.code")


def test_all_164_canonical_solutions_pass_and_wrong_ones_fail(code):
    problems = list(code.problems().values())
    assert len(problems) == 164
    canonical = code.verify_many([(p, code.full_solution(p, p["canonical_solution"])) for p in problems])
    assert all(checks and all(checks.values()) for checks in canonical)
    wrong = code.verify_many([(p, code.full_solution(p, "    return None\n")) for p in problems])
    assert not any(all(checks.values()) for checks in wrong)
    fractions = [sum(c.values()) / len(c) for c in wrong]
    assert any(0 < f < 1 for f in fractions)  # partial credit exists: a per-test verdict, not one boolean


def test_verdicts_do_not_depend_on_machine_load(code):
    """Every core busy with another job (three spinning processes per core): the 164 canonical solutions still
    pass. A harness that read its secret.json half-written used to fail some of them under load (the batch driver
    now renames each file into place)."""
    import subprocess
    import sys

    spinners = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 120\n"
                                  "while time.time() < end: pass"]) for _ in range(3 * (os.cpu_count() or 2))]
    try:
        problems = list(code.problems().values())
        for _ in range(2):
            verdicts = code.verify_many([(p, code.full_solution(p, p["canonical_solution"])) for p in problems])
            failed = [p["task_id"] for p, checks in zip(problems, verdicts) if not (checks and all(checks.values()))]
            assert not failed, failed
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def test_partial_solution_scores_the_fraction_of_tests_passed(code):
    problem = code.problems()["HumanEval/0"]  # has_close_elements: 7 asserts, 4 expect True and 3 False
    checks = code.verify(problem, "def has_close_elements(numbers, threshold):\n    return True\n")
    assert len(checks) == 7 and sum(checks.values()) == 4


def test_hostile_solutions_score_zero(code):
    problem = code.problems()["HumanEval/0"]
    for solution in ("import os\nos._exit(0)", "while True: pass", "print('0000' + '[true]*7')",
                     "def has_close_elements(numbers, threshold):\n    raise SystemExit(0)"):
        checks = code.verify(problem, solution, code.Limits(wall_seconds=2, cpu_seconds=1))
        assert not any(checks.values()), solution


def test_solution_extraction(code):
    block = "def f(x):\n    return x\n"
    assert code.extract_solution(f"Here:\n```python\n{block}```\nDone.", "f", []) == block
    assert code.extract_solution(f"```python\n{block}```\n```python\nprint(f(1))\n```", "f", []) == block
    assert code.extract_solution("no code", "f", ["x = 1", block]) == block  # falls back to the last tried code
    assert code.extract_solution("no code", "f", []) is None
    assert code.extract_solution(block, "f", []) == block  # a bare function as the final message


def test_episode_through_the_tools_and_the_reference_solver(code):
    env_cls = ENVIRONMENTS.get("code").obj
    rows = env_cls.tasks("test", 200, seed=0)
    train = env_cls.tasks("train", 200, seed=0)
    assert len(rows) + len(train) == 164 and not {r["task_id"] for r in rows} & {r["task_id"] for r in train}
    env = env_cls()
    for row in rows[:5]:
        env.reset(**row)
        solution = json.loads(row["solution"])
        messages = []
        for call in solution["calls"]:
            result = getattr(env, call["name"])(**call["arguments"])
            assert "[exit code" not in result and "killed" not in result, result
            messages += [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]},
                         {"role": "tool", "name": call["name"], "content": result}]
        outcome = env._finish_episode(messages + [{"role": "assistant", "content": solution["final"]}])
        assert outcome.success and outcome.progress == 1.0 and outcome.tool_calls == 1 and outcome.turns == 2
    env.reset(**rows[0])
    assert env._finish_episode([{"role": "assistant", "content": "I give up."}]).progress == 0.0


@pytest.mark.slow
def test_run_python_tool_works_in_the_episode_workspace(code):
    env = ENVIRONMENTS.get("code").obj()
    env.reset(**ENVIRONMENTS.get("code").obj.tasks("test", 1, 0)[0])
    assert env.run_python(code="open('a.txt', 'w').write('hi')\nprint(open('a.txt').read())") == "hi"
    assert "a.txt" in env.ws.list_dir(".")
    assert "killed: wall-clock" in env.run_python(code="import time\ntime.sleep(60)")
