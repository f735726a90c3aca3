"""Agent Lightning entry point: `python main_agent_lightning.py --algo grpo` (see README and agent_lightning.cli).

On Linux the process first re-executes itself once with glibc malloc tunables (unless GLIBC_TUNABLES is already
set): freed tensor memory stays in the heap and is backed by transparent huge pages, instead of being returned to
the kernel and faulted back in page by page at every step. On 2 CPU cores that removed ~23 M page faults and 108 s
of kernel time from three SFT steps (benchmarks/malloc_tunables.py). Set GLIBC_TUNABLES yourself (even to an empty
string) to opt out.
"""

import os
import sys
from pathlib import Path

MALLOC_TUNABLES = ("glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=4294967296:"
                   "glibc.malloc.trim_threshold=17179869184")

if __name__ == "__main__" and sys.platform == "linux" and "GLIBC_TUNABLES" not in os.environ:
    os.environ["GLIBC_TUNABLES"] = MALLOC_TUNABLES  # read by malloc at start-up only, hence the re-exec
    os.execv(sys.executable, [sys.executable, *sys.argv])

try:
    from agent_lightning.cli import main
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from agent_lightning.cli import main

if __name__ == "__main__":
    sys.exit(main())
