"""Claim: the glibc malloc tunables that main_agent_lightning.py sets make CPU training faster, by keeping freed
tensor memory in the process (on huge pages) instead of returning it to the kernel and faulting it back in.

    .venv/bin/python benchmarks/malloc_tunables.py [--steps 3] [--config configs/default.yaml]

Runs the same short SFT (`--algo sft --max-steps N`, no evaluation) twice, one after the other: with the tunables
(the default) and with GLIBC_TUNABLES set to an empty string (plain glibc malloc). Prints wall time, kernel (sys)
time and minor page faults of each from /usr/bin/time's counters (rusage of the child), and the ratio. Linux only.
Not covered: GRPO and evaluation (the same allocator effect, not measured here), other allocators (jemalloc,
tcmalloc), which are not installable from the package registry.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(steps: int, config: str, tunables: str | None, out: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    subprocess.run([sys.executable, "main_agent_lightning.py", "--algo", "sft", "--config", config,
                    "--max-steps", str(steps), "--set", "eval.at_end=false", "--output-dir", str(out)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": time.time() - started, "sys": after.ru_stime - before.ru_stime,
            "user": after.ru_utime - before.ru_utime, "faults": after.ru_minflt - before.ru_minflt}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--config", default="configs/default.yaml")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="malloc-") as tmp:
        for name, tunables in (("tuned", None), ("plain", "")):
            results[name] = r = run(args.steps, args.config, tunables, Path(tmp) / name)
            print(f"{name:6s} {r['wall']:7.1f} s wall  {r['user']:7.1f} s user  {r['sys']:6.1f} s sys  "
                  f"{r['faults'] / 1e6:6.2f} M minor faults", flush=True)
    tuned, plain = results["tuned"], results["plain"]
    print(f"plain / tuned: {plain['wall'] / tuned['wall']:.2f}x wall time, "
          f"{plain['faults'] / max(tuned['faults'], 1):.0f}x page faults")
    print("reproduce: .venv/bin/python benchmarks/malloc_tunables.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
