"""SOPs: YAML and Markdown files, the Chroma-backed store, distillation from a run's traces."""

import json

import pytest

from importlib import resources

SOPS = resources.files("agent_lightning.data") / "sops"
from agent_lightning.errors import UserError
from agent_lightning.memory.sop import SOP, SopStore, abstract, distill, load_sop_file
from agent_lightning.observe.traces import write_batch


def test_shipped_sop_files_load():
    yaml_sop, = load_sop_file(SOPS / "sum_file.yaml")
    assert yaml_sop.name == "Sum the numbers of a file into another file" and len(yaml_sop.steps) == 3
    assert yaml_sop.preconditions == ["the source file holds one number per line"]
    md_sop, = load_sop_file(SOPS / "move_into_folder.md")
    assert md_sop.applicability.startswith("Put one or more existing files") and md_sop.steps[1] == "make_dir(path=<folder>)"


@pytest.mark.parametrize("text, message", [
    ("name: x\napplicability: y\n", "needs 'steps'"),
    ("name: x\napplicability: y\nsteps: [a]\ncolour: red\n", "unknown SOP key 'colour'"),
    ("name: [unclosed\n", "not valid YAML"),
    ("- just a string\n", "expected a mapping"),
])
def test_bad_sop_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_sop_file(path)
    with pytest.raises(UserError, match="give an existing YAML or Markdown file"):
        load_sop_file(tmp_path / "missing.yaml")


def test_store_adds_lists_queries_and_merges_instead_of_duplicating(tmp_path):
    store = SopStore(tmp_path / "store")
    sops = load_sop_file(SOPS / "sum_file.yaml") + load_sop_file(SOPS / "move_into_folder.md")
    store.add(sops)
    store.add([SOP(**{**sops[0].__dict__, "uses": 3, "successes": 2, "source_trajectories": ["r#1"]})])
    listed = store.list()
    assert len(listed) == 2 and listed[0].name == sops[0].name and (listed[0].uses, listed[0].successes) == (3, 2)
    best, score = store.query("what is the total of the numbers in data.txt? save it in out.txt", k=1)[0]
    assert best.name == sops[0].name and score > 0.3
    assert store.query("move a.txt and b.txt into a new folder archive", k=1)[0][0].name == sops[1].name


def _record(task_id, prompt, calls, success):
    return {"step": 1, "task_id": task_id, "prompt": [{"role": "system", "content": "sys"},
                                                       {"role": "user", "content": prompt}],
            "completion": [], "outcome": {"success": success, "verified": True}, "calls": calls,
            "rewards": {}, "reward": float(success)}


def _sum_calls(src, dst, numbers, ok_write=True):
    expression = " + ".join(map(str, numbers))
    total = str(sum(numbers))
    return [{"name": "read_file", "arguments": {"path": src}, "ok": True, "result": "\n".join(map(str, numbers))},
            {"name": "calculator", "arguments": {"expression": expression}, "ok": True, "result": total},
            {"name": "write_file", "arguments": {"path": "oops/" if not ok_write else dst, "content": total},
             "ok": ok_write, "result": f"wrote {len(total)} bytes"}]


def test_distill_abstracts_verified_successes_and_counts_uses(tmp_path):
    run = tmp_path / "run"
    prompt = "Add up the numbers in {} (one per line) and write the total to {}."
    records = [
        _record("t1", prompt.format("data/a.txt", "sum.txt"), _sum_calls("data/a.txt", "sum.txt", [3, 4]), True),
        _record("t2", prompt.format("x/nums.txt", "total.txt"), _sum_calls("x/nums.txt", "total.txt", [10, 20, 5]), True),
        _record("t3", prompt.format("b.txt", "c.txt"), _sum_calls("b.txt", "c.txt", [1, 2]), False),  # verified failure
        _record("t4", "List the folder.", [{"name": "list_dir", "arguments": {"path": "."}, "ok": True,
                                            "result": "a.txt"}], False),  # never succeeded: dropped
    ]
    write_batch(run / "grpo" / "traces", 1, records[:2])
    write_batch(run / "grpo" / "traces", 2, records[2:])
    (sop,) = distill(run)
    assert sop.steps == ["read_file(path=<path>)", "calculator(expression=<expression>)",
                         "write_file(path=<path2>, content=<result of step 2>)"]
    assert sop.applicability == "Add up the numbers in <path> (one per line) and write the total to <path2>."
    assert (sop.uses, sop.successes) == (3, 2)
    assert sop.source_trajectories == ["grpo/traces/step-00001.jsonl#0 (t1)", "grpo/traces/step-00001.jsonl#1 (t2)"]
    store = SopStore(tmp_path / "store")
    store.add([sop])
    store.add(distill(run))  # distilling the same run again merges into the same SOP
    (stored,) = store.list()
    assert (stored.uses, stored.successes) == (6, 4)


def test_abstraction_keeps_repeated_values_as_one_placeholder():
    calls = [{"name": "make_dir", "arguments": {"path": "docs"}, "ok": True, "result": "created folder docs"},
             {"name": "move", "arguments": {"src": "a.md", "dst": "docs"}, "ok": True, "result": "moved"}]
    steps, applicability = abstract(calls, "Move a.md into a new folder docs.")
    assert steps == ["make_dir(path=<path>)", "move(src=<src>, dst=<path>)"]
    assert applicability == "Move <src> into a new folder <path>."


def test_distill_without_traces_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no traces/step-"):
        distill(tmp_path)
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "step-00001.jsonl").write_text("not json\n" + json.dumps(_record("t", "p", [], True)) + "\n")
    assert distill(tmp_path) == []  # unreadable lines and rollouts without tool calls are skipped
