"""benchmarks/code_memory_effect.py end to end on the tiny config: real corpora, real Chroma stores, two folds of
real `code` evaluations with and without code in the prompt, paired."""

import json
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow  # two stores and eight evaluations in subprocesses: about a minute
def test_code_memory_effect_pairs_every_problem_with_and_without_code_from_the_other_fold(tmp_path):
    work = tmp_path / "work"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "code_memory_effect.py"), "--config",
                           "configs/tiny.yaml", "--limit", "2", "--work", str(work), "--no-write"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    # each fold's corpus is the other split's solved problems: no problem can retrieve its own solution
    test_corpus = {p.stem for p in (work / "test-solutions").iterdir()}
    train_corpus = {p.stem for p in (work / "train-solutions").iterdir()}
    assert len(test_corpus) + len(train_corpus) == 164 and not test_corpus & train_corpus
    for split in ("test", "train"):
        off, on = (json.loads((work / name).read_text()) for name in (f"{split}-off.json", f"{split}-on-k2.json"))
        assert (off["episodes_with_memory"], on["episodes_with_memory"]) == (0, 2)
        assert [t["task_id"] for t in off["per_task"]] == [t["task_id"] for t in on["per_task"]]
        corpus = train_corpus if split == "test" else test_corpus
        assert all(t["task_id"].replace("/", "_").lower() not in corpus for t in on["per_task"])
    row = next(line for line in done.stdout.splitlines() if line.startswith("| both folds (4) |"))
    assert "(n=4" in row
