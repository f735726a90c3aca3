"""model_files: where a configured model is on disk, found with file-system calls only; idle cores for batches."""

from agent_lightning.memory.model_files import DEFAULT_EMBEDDER, cached_hub_snapshot, local_model_dir
from agent_lightning.memory.onnx_embedder import idle_cores, usable_cores


def test_default_folder_and_local_folders(tmp_path):
    default = local_model_dir(None)
    assert default is not None and (default / "config.json").is_file() and local_model_dir(DEFAULT_EMBEDDER) == default
    assert local_model_dir(str(tmp_path)) == tmp_path
    (tmp_path / "file.txt").write_text("x")
    assert local_model_dir(str(tmp_path / "file.txt")) is None
    assert local_model_dir(str(tmp_path / "missing")) is None


def test_hub_ids_are_found_in_the_hub_cache_at_the_snapshot_main_names(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--cross-encoder"
    assert cached_hub_snapshot("org/cross-encoder") is None
    for commit in ("aaa", "bbb"):
        (repo / "snapshots" / commit).mkdir(parents=True)
    assert cached_hub_snapshot("org/cross-encoder") is None          # two snapshots, no ref: ambiguous
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("bbb\n")
    assert local_model_dir("org/cross-encoder") == repo / "snapshots" / "bbb"
    assert local_model_dir("org/other") is None and cached_hub_snapshot("no-slash") is None


def test_idle_cores_are_the_usable_cores_minus_the_load(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert usable_cores() == 4
    for load, idle in ((0.0, 4), (1.2, 3), (2.6, 1), (9.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert idle_cores() == idle, load


def test_idle_cores_now_counts_the_busy_share_of_the_usable_cores_only(monkeypatch):
    import os

    import psutil

    from agent_lightning.memory.onnx_embedder import idle_cores_now

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1, 2})
    for shares, idle in (([0, 0, 0, 0], 2), ([100, 0, 0, 100], 2), ([0, 90, 10, 0], 1), ([0, 100, 100, 0], 1),
                         ([0, 40, 0, 0], 2)):
        monkeypatch.setattr(psutil, "cpu_percent", lambda interval, percpu, shares=shares: [float(x) for x in shares])
        assert idle_cores_now() == idle, shares
