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
    lines = done.stdout.splitlines()
    off_row = next(line for line in lines if line.startswith("| adapter, off |"))
    on_row = next(line for line in lines if line.startswith("| adapter, on (SOP in the prompt) |"))
    assert off_row.endswith("| 0 of 4 |") and on_row.endswith("| 4 of 4 |") and "(n=4" in on_row
    assert "1 SOPs in the store; the same 4 test tasks in every row" in done.stdout
