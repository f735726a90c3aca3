"""benchmarks/memory_effect.py end to end on the tiny config: a real SOP store, two real evaluations, paired."""

import json
import sys

from conftest import REPO


def test_memory_effect_pairs_the_same_tasks_with_and_without_sops_in_the_prompt(tmp_path):
    import subprocess

    work = tmp_path / "work"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "memory_effect.py"), "--config",
                           "configs/tiny.yaml", "--sops", "data/sops/sum_file.yaml", "--limit", "4", "--work",
                           str(work), "--no-write"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    off, on = (json.loads((work / f"test-{mode}.json").read_text()) for mode in ("off", "on"))
    assert (off["episodes_with_memory"], on["episodes_with_memory"]) == (0, 4)
    assert [t["task_id"] for t in off["per_task"]] == [t["task_id"] for t in on["per_task"]]
    assert "| off |" in done.stdout and "On - off, all tasks:" in done.stdout and "(n=4" in done.stdout
    assert "1 SOPs in the store, 4 of 4 prompts got one" in done.stdout
