"""`env run-calls`: one JSON result line per input line, in one fresh sandbox."""

import json

from conftest import run_cli


def test_one_result_per_line_including_bad_lines(tmp_path):
    lines = [
        {"name": "write_file", "arguments": {"path": "notes/a.txt", "content": "hello"}},
        "this is not json",
        {"name": "read_file", "arguments": {"path": "notes/a.txt"}},
        {"name": "read_file", "arguments": {"path": "../../etc/passwd"}},
        {"name": "raed_file", "arguments": {"path": "notes/a.txt"}},
        {"name": "list_dir", "arguments": {}},
        ["not", "an", "object"],
        {"name": "write_file", "arguments": {"path": "b.txt"}},
    ]
    calls = tmp_path / "calls.jsonl"
    calls.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    result = run_cli("env", "run-calls", "--env", "filesystem", "--calls", str(calls))
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)
    assert [o["ok"] for o in out] == [True, False, True, False, False, True, False, False]
    assert out[2]["output"] == "hello"
    assert "not JSON" in out[1]["error"] and "'..'" in out[3]["error"]
    assert "Did you mean 'read_file'" in out[4]["error"]
    assert out[5]["output"] == "notes/"
    assert "content" in out[7]["error"] and "write_file(path, content)" in out[7]["error"]


def test_task_id_starts_from_the_task_workspace(tmp_path):
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    task = ENVIRONMENTS.get("filesystem").obj.tasks("test", 3, 0)[2]
    first = sorted(json.loads(task["files"]))[0]
    calls = tmp_path / "calls.jsonl"
    calls.write_text(json.dumps({"name": "read_file", "arguments": {"path": first}}) + "\n")
    result = run_cli("env", "run-calls", "--env", "filesystem", "--calls", str(calls), "--task-id", task["task_id"])
    assert json.loads(result.stdout) == {"ok": True, "output": json.loads(task["files"])[first]}
    unknown = run_cli("env", "run-calls", "--env", "filesystem", "--calls", str(calls), "--task-id", "nope")
    assert unknown.returncode == 2 and "--task-id nope" in unknown.stderr
    single_turn = run_cli("env", "run-calls", "--env", "arithmetic", "--calls", str(calls))
    assert single_turn.returncode == 2 and "no tools" in single_turn.stderr
