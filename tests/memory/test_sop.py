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


DISTILLED = [  # as `memory sop distill` writes them from file-task successes: placeholders, tool-call steps
    SOP("Rename the file to", "Rename the file <src> to <dst>.", ["move(src=<src>, dst=<dst>)"], uses=7, successes=7),
    SOP("Add the line `bundle maple coral` at the",
        "Add the line `bundle maple coral` at the end of <path>, keeping its current lines.",
        ["read_file(path=<path>)", "write_file(path=<path>, content=<result of step 1>)",
         "write_file(path=<path>, content=<content>)"], uses=1, successes=1),
    SOP("Delete the file", "Delete the file <path>.", ["delete(path=<path>)"], uses=21, successes=21),
    SOP("Create the file containing exactly", "Create the file <path> containing exactly: <content>",
        ["write_file(path=<path>, content=<content>)"], uses=90, successes=44),
]
RENAME_TASK = "Rename the file fountain/condor.log to fountain/silk.log."


def test_a_task_finds_its_own_procedure_not_the_one_whose_steps_look_alike(tmp_path):
    store = SopStore(tmp_path / "store")
    store.add(DISTILLED)
    assert [s.name for s, _ in store.query(RENAME_TASK, k=2)][0] == "Rename the file to"
    assert store.query("Delete the file otter/plum.txt.", k=1)[0][0].name == "Delete the file"
    assert "<" not in DISTILLED[0].search_text() and "move(" not in DISTILLED[0].search_text()


def test_sops_stored_with_an_older_search_text_rank_by_the_new_one_until_the_next_add_embeds_them_again(tmp_path):
    store = SopStore(tmp_path / "store")
    store.add(DISTILLED)
    old_text = [f"{s.name}\n{s.applicability}\n" + "\n".join(s.steps) for s in DISTILLED]  # the text before
    store.collection.upsert(ids=[s.id for s in DISTILLED], documents=old_text, embeddings=store.embedder.embed(old_text))
    reopened = SopStore(tmp_path / "store")
    best, score = reopened.query(RENAME_TASK, k=1)[0]
    assert best.name == "Rename the file to" and 0 < score <= 1 and reopened._stale
    extra = SOP("Copy the file to", "Copy the file <path> to <path2>.", ["read_file(path=<path>)"], uses=1, successes=1)
    assert [s.name for s in reopened.add([extra])] == ["Copy the file to"]  # what was added, not re-embedded
    documents = reopened.collection.get(include=["documents", "metadatas"])
    assert sorted(documents["documents"]) == sorted(s.search_text() for s in [*DISTILLED, extra])
    assert {json.loads(m["json"])["uses"] for m in documents["metadatas"]} == {7, 1, 21, 90}  # counts untouched
    assert SopStore(tmp_path / "store").query(RENAME_TASK, k=1)[0][0].name == "Rename the file to"
