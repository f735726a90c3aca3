import pytest
"""`memory` from the command line as a user runs it, including a SIGKILL in the middle of indexing."""

import json
import os
import signal
import subprocess
import sys
import time

from agent_lightning.memory.store import CodeStore

from conftest import REPO, run_cli


def test_index_query_and_sops_through_the_cli(corpus, tmp_path, capsys):
    """In-process through cli.main (the model loads once); the error path below runs as a real process."""
    from agent_lightning.cli import main

    store = str(tmp_path / "store")
    assert main(["memory", "index", str(corpus), "--store", store]) == 0
    assert "4 files (4 indexed, 0 unchanged" in capsys.readouterr().out
    assert main(["memory", "query", "is n a prime number", "--store", store, "-k", "2", "--json",
                 "--set", "memory.reranker="]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2 and set(hits[0]) == {"path", "start_line", "end_line", "symbol", "score", "text",
                                               "reranked_by"}
    assert hits[0]["reranked_by"] is None  # memory.reranker='' : dense order
    assert (hits[0]["path"], hits[0]["symbol"], hits[0]["start_line"]) == ("pkg/mathy.py", "is_prime", 9)
    assert main(["memory", "query", "fibonacci", "--store", store, "--set", "memory.reranker="]) == 0
    assert capsys.readouterr().out.startswith("[1] (")
    assert main(["memory", "sop", "add", str(REPO / "data/sops/sum_file.yaml"), "--store", store]) == 0
    assert main(["memory", "sop", "list", "--json", "--store", store]) == 0
    out = capsys.readouterr().out
    listed = json.loads(out[out.index("["):])
    assert [s["name"] for s in listed] == ["Sum the numbers of a file into another file"]
    assert main(["memory", "sop", "query", "total of numbers in a file", "-k", "1", "--store", store]) == 0
    assert capsys.readouterr().out.startswith("[1] (")
    assert main(["memory", "query", "x", "-k", "0", "--store", store]) == 2
    assert capsys.readouterr().err.strip() == "error: -k 0: expected a number of chunks >= 1."


def test_user_mistakes_are_one_line_errors(tmp_path):
    bad_sop = tmp_path / "bad.yaml"
    bad_sop.write_text("name: x\n")
    for args, message in [
        (["memory", "index", str(tmp_path / "missing"), "--store", str(tmp_path / "s")], "does not exist"),
        (["memory", "query", "x", "--store", str(tmp_path / "empty")], "holds no code; run `memory index PATH"),
        (["memory", "sop", "add", str(bad_sop), "--store", str(tmp_path / "s")], "the SOP needs 'applicability'"),
    ]:
        result = run_cli(*args) if args[1] == "index" else _in_process(args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
        assert "Traceback" not in result.stderr


def _in_process(args):
    import contextlib
    import io

    from agent_lightning.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return subprocess.CompletedProcess(args, code, "", err.getvalue())


@pytest.mark.slow
def test_a_killed_index_run_is_finished_by_the_next_one_without_duplicates(tmp_path):
    root = tmp_path / "code"
    root.mkdir()
    for i in range(40):
        (root / f"mod_{i:02d}.py").write_text("".join(
            f"def func_{i}_{j}(x):\n    \"\"\"Function {j} of module {i}.\"\"\"\n    return x * {j} + {i}\n\n\n"
            for j in range(4)))
    store = tmp_path / "store"
    env = {**os.environ, "AGENT_LIGHTNING_INDEX_GROUP": "8"}
    proc = subprocess.Popen([sys.executable, str(REPO / "main_agent_lightning.py"), "memory", "index", str(root),
                             "--store", str(store)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    manifest = store / "manifest.json"
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            files = json.loads(manifest.read_text())["files"]
            done = sum(1 for f in files.values() if f["state"] == "done")
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the indexer finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files = json.loads(manifest.read_text())["files"]
    assert sum(f["state"] == "done" for f in files.values()) < 40  # killed mid-run
    resumed = CodeStore(store).index(root, progress=False)
    assert resumed.indexed + resumed.unchanged == 40 and resumed.unchanged >= 4
    clean = CodeStore(tmp_path / "clean").index(root, progress=False)
    ids, _, metas = CodeStore(store).all_chunks()
    assert len(ids) == len(set(ids)) == resumed.total_chunks == clean.total_chunks == 160
    assert len({(m["path"], m["start_line"], m["end_line"]) for m in metas}) == 160
    assert set(ids) == set(CodeStore(tmp_path / "clean").all_chunks()[0])


def test_a_damaged_store_is_one_line_with_the_rebuild_command(store, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(store.dir, broken)
    database = broken / "chroma" / "chroma.sqlite3"
    database.write_bytes(database.read_bytes()[: database.stat().st_size // 3])  # torn mid-write, a full disk
    result = _in_process(["memory", "query", "fibonacci", "--store", str(broken)])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: memory store {broken}: the Chroma index is damaged")
    assert f"rm -r {broken} && python main_agent_lightning.py memory index PATH --store {broken}" in line
