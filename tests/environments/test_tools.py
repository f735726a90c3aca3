"""The `tools` environment: filesystem + calculator composed; its tasks solved through the policy's parse path."""

import json

import pytest

from agent_lightning.chat.segmenter import parse_response_text
from agent_lightning.envs import ToolError
from agent_lightning.registry import ENVIRONMENTS, discover


@pytest.fixture(scope="module")
def tools_cls():
    discover()
    return ENVIRONMENTS.get("tools").obj


def test_it_composes_the_filesystem_environment(tools_cls):
    fs_cls = ENVIRONMENTS.get("filesystem").obj
    assert issubclass(tools_cls, fs_cls)
    assert set(tools_cls.tool_names()) == set(fs_cls.tool_names()) | {"calculator", "search_code"}


def test_reference_solver_solves_every_test_task_through_the_parser(tools_cls):
    rows = tools_cls.tasks("test", 100, seed=0)
    assert {r["template"] for r in rows} >= {"sum_file", "order_total", "evaluate"}
    env = tools_cls()
    for row in rows:
        env.reset(**row)
        solution = json.loads(row["solution"])
        messages = []
        for call in solution["calls"]:
            text = "<tool_call>\n" + json.dumps(call) + "\n</tool_call>"
            (parsed,) = parse_response_text(text, tools_cls.tool_names()).calls
            assert parsed.error is None
            result = getattr(env, parsed.name)(**parsed.arguments)
            messages += [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]},
                         {"role": "tool", "name": parsed.name, "content": result}]
        outcome = env._finish_episode(messages + [{"role": "assistant", "content": solution["final"]}])
        assert outcome.success and outcome.tool_errors == 0, (row["task_id"], outcome)


def test_calculator_is_exact_and_refuses_anything_but_arithmetic(tools_cls):
    env = tools_cls()
    env.reset(**tools_cls.tasks("test", 2, 0)[1])
    assert env.calculator(expression="(12 + 30) * 4 / 7") == "24"
    assert env.calculator(expression="sqrt(2)") == "1.4142135624"
    for hostile in ("__import__('os').system('id')", "9**9**9", "2**1000", "'a' * 10**9", "1/0", "x", "",
                    "(lambda: 1)()", "[1] * 10**9", "1e308 * 10"):
        with pytest.raises(ToolError, match="calculator"):
            env.calculator(expression=hostile)
    assert env.outcome.tool_errors == 0 and sum(not c["ok"] for c in env.calls) == 10
