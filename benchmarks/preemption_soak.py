"""Soak: preempt a tiny GRPO run with SIGTERM at random moments, resume it each time, and check nothing is lost.

    .venv/bin/python benchmarks/preemption_soak.py [--preemptions 10] [--steps 30] [--seed 0] [--keep DIR]

Starts `--algo grpo --config tiny` (a tiny random Mistral: seconds per step), sends SIGTERM after a random number
of logged steps, expects exit code 143 and the line naming the checkpoint, then runs the same command with
--resume; `--preemptions` times in a row, then once more to the end. Passes when metrics.jsonl holds every step
from 1 to `--steps` exactly once, each trace step exists once, and the run's summary says `--steps` steps. Prints
each preemption (step signalled, checkpoint saved) and the command that reproduces it. Not covered: SIGKILL
(tests/test_resume.py kills after a checkpoint) and several processes.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def steps_logged(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    out = []
    for line in (path.read_text().splitlines() if path.is_file() else []):
        try:
            out.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            pass  # a line being written
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preemptions", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="Write the run here (default: a temporary folder).")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        run_dir = Path(args.keep or tmp) / "run"
        command = [sys.executable, str(ROOT / "main_agent_lightning.py"), "--algo", "grpo", "--config", "tiny",
                   "--max-steps", str(args.steps), "--save-steps", "1000", "--set", "eval.at_end=false",
                   "--output-dir", str(run_dir)]
        started = time.time()
        for i in range(args.preemptions):
            resume = ["--resume"] if i else []
            before = max(steps_logged(run_dir), default=0)
            target = before + rng.randint(1, max(1, (args.steps - before) // (args.preemptions - i + 1)))
            proc = subprocess.Popen(command + resume, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
            while proc.poll() is None and max(steps_logged(run_dir), default=0) < target:
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=600)
            last = err.strip().splitlines()[-1] if err.strip() else ""
            print(f"preemption {i + 1}: SIGTERM after step {target}, exit {proc.returncode}: {last}")
            if proc.returncode not in (143, 0):
                print(err[-3000:], file=sys.stderr)
                return 1
        final = subprocess.run(command + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
        if final.returncode != 0:
            print(final.stderr[-3000:], file=sys.stderr)
            return 1
        logged = steps_logged(run_dir)
        traces = sorted(int(p.name[5:10]) for p in (run_dir / "traces").glob("step-*.jsonl"))
        summary = json.loads((run_dir / "summary.json").read_text())
        ok = logged == list(range(1, args.steps + 1)) and traces == logged and summary["steps"] == args.steps
        print(f"{args.preemptions} preemptions, {time.time() - started:.0f} s: metrics steps "
              f"{'1..' + str(args.steps) + ' each once' if ok else logged}, traces {len(traces)}, "
              f"summary steps {summary['steps']}: {'PASS' if ok else 'FAIL'}")
        print("reproduce: .venv/bin/python benchmarks/preemption_soak.py " + " ".join(map(shlex.quote, sys.argv[1:])))
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
