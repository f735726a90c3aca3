"""Long-run health: a long GRPO run in a tool environment keeps its memory flat and leaves nothing behind.

    .venv/bin/python benchmarks/soak.py [--steps 200] [--env filesystem] [--config configs/tiny.yaml]

A child process trains `--steps` GRPO steps (the real CLI pipeline: sandboxed workspaces per rollout, reward
suite, traces, metrics, checkpoints) and records its resident memory (RSS) after every step. The parent gives it
a private temporary folder and its own session, then reports: RSS at step 10 and at the last step and the growth
between them (target: under 10%), and what is left once the child has exited: workspace folders
(agent-lightning-ws-*), sandbox uid lock files, and live processes of the child's session or of sandbox uids
(target: zero of each). It also reports what was still open inside the child when training returned (live
workspaces, child processes), before interpreter exit cleaned up.

With `--memory`, a code store is indexed first (this project's sandbox package and the shipped SOPs) and every
episode's reset() retrieves code chunks and SOPs into its prompt (memory.inject), so retrieval is soaked too.

Not covered: GPU memory, tool execution beyond what the tiny random policy attempts (it rarely emits a
well-formed call; every rollout still builds, resets and removes its workspace).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SANDBOX_UIDS = range(3_000_000, 13_000_000)  # sandbox/process.py: SANDBOX_IDS .. + SANDBOX_ID_COUNT


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(args: argparse.Namespace) -> None:
    """Train in this process; write per-step RSS and what is still open at the end to args.out."""
    from transformers import TrainerCallback

    from agent_lightning.cli import _quiet_libraries
    from agent_lightning.config import load_config
    from agent_lightning.sandbox import workspace
    from agent_lightning.train.pipeline import run_training

    _quiet_libraries(verbose=False)
    out = Path(args.out)

    class Rss(TrainerCallback):
        def on_step_end(self, a, state, control, **kwargs):
            with open(out / "rss.jsonl", "a") as fh:
                fh.write(json.dumps({"step": state.global_step, "rss": rss_bytes()}) + "\n")

    if args.memory:
        args.set = [f"memory.store={out / 'memory'}", "memory.inject=true", "memory.code_k=2", "memory.sop_k=1",
                    "memory.reranker=", *args.set]
    overrides = [f"env.name={args.env}", f"grpo.max_steps={args.steps}", "grpo.save_steps=50", "eval.at_end=false",
                 f"grpo.max_completion_length={args.completion_tokens}", f"grpo.per_device_batch_size={args.batch}",
                 *args.set]
    cfg = load_config(args.config, overrides)
    run_training(cfg, "grpo", str(out / "run"), callbacks=[Rss()])
    base = workspace._BASE
    open_workspaces = len(os.listdir(base)) if base and os.path.isdir(base) else 0
    children = [p for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == os.getpid()]
    (out / "end.json").write_text(json.dumps({"open_workspaces": open_workspaces, "child_processes": len(children)}))


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _session_and_uid(pid: int) -> tuple[int | None, int | None]:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            sid = int(fh.read().rsplit(")", 1)[1].split()[3])
        with open(f"/proc/{pid}/status") as fh:
            uid = next(int(line.split()[1]) for line in fh if line.startswith("Uid:"))
        return sid, uid
    except (OSError, StopIteration, IndexError, ValueError):
        return None, None


def leftovers(tmp: Path, session: int) -> dict[str, int]:
    """What the finished child left: workspace folders, uid lock files, processes of its session or sandbox uids."""
    workspaces = sum(1 for p in tmp.iterdir() if p.name.startswith("agent-lightning-ws"))
    workspaces += sum(1 for p in tmp.glob("agent-lightning-ws*/*"))
    locks_dir = tmp / "agent-lightning-uids"
    locks = len(list(locks_dir.iterdir())) if locks_dir.is_dir() else 0
    processes = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            sid, uid = _session_and_uid(int(entry))
            processes += sid == session or uid in SANDBOX_UIDS
    return {"workspace_dirs": workspaces, "uid_lock_files": locks, "processes": processes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--env", default="filesystem", help="A tool environment, so sandboxes are exercised.")
    parser.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    parser.add_argument("--completion-tokens", type=int, default=32, help="grpo.max_completion_length")
    parser.add_argument("--batch", type=int, default=2,
                        help="grpo.per_device_batch_size: rollouts (and workspaces) per step; with 2, 200 steps took "
                             "about 25 minutes on 2 shared cores (the tool prompt is long)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Extra config overrides.")
    parser.add_argument("--memory", action="store_true", help="Index a code store and inject retrieval into prompts.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        scratch = Path(scratch)
        tmp, out = scratch / "tmp", scratch / "out"
        tmp.mkdir()
        out.mkdir()
        cmd = [sys.executable, __file__, "--child", "--out", str(out), "--steps", str(args.steps), "--env", args.env,
               "--config", args.config, "--completion-tokens", str(args.completion_tokens), "--batch", str(args.batch),
               *[x for item in args.set for x in ("--set", item)]]
        if args.memory:
            cmd.append("--memory")
            for what in (["index", str(ROOT / "src" / "agent_lightning" / "sandbox")],
                         ["sop", "add", str(ROOT / "data" / "sops" / "sum_file.yaml")],
                         ["sop", "add", str(ROOT / "data" / "sops" / "move_into_folder.md")]):
                subprocess.run([sys.executable, str(ROOT / "main_agent_lightning.py"), "memory", *what,
                                "--store", str(out / "memory")], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                               env={**os.environ, "TMPDIR": str(tmp)})
        started = time.time()
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp)}, start_new_session=True)
        rc = proc.wait()
        wall = time.time() - started
        time.sleep(1.0)  # let anything the child orphaned show itself
        left = leftovers(tmp, proc.pid)
        if rc != 0:
            sys.exit(f"soak: the training child failed (exit {rc})")
        rss = {r["step"]: r["rss"] for r in map(json.loads, (out / "rss.jsonl").read_text().splitlines())}
        end = json.loads((out / "end.json").read_text())
        first, last = min(10, max(rss)), max(rss)
        growth = rss[last] / rss[first] - 1
        mib = 1 << 20
        print(f"soak: {last} GRPO steps x {args.batch} rollouts, env {args.env}, {Path(args.config).name}"
              f"{', memory retrieval injected' if args.memory else ''}, {wall:.0f} s wall")
        print(f"RSS at step {first}: {rss[first] / mib:.0f} MiB; at step {last}: {rss[last] / mib:.0f} MiB; "
              f"growth {growth:+.1%} (target < +10%); peak {max(rss.values()) / mib:.0f} MiB")
        for step in sorted(s for s in rss if s in (1, 50, 100, 150) and s < last):
            print(f"  RSS at step {step}: {rss[step] / mib:.0f} MiB")
        print(f"open when training returned: {end['open_workspaces']} workspaces, "
              f"{end['child_processes']} child processes")
        print(f"left after exit: {left['workspace_dirs']} workspace folders, {left['uid_lock_files']} uid lock files, "
              f"{left['processes']} processes (target: 0 each)")
        ok = growth < 0.10 and not any(left.values())
        print("PASS" if ok else "FAIL")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
