"""The sandbox: a per-rollout workspace folder and a jailed Python process. A security boundary: the policy is
assumed adversarial.

    from agent_lightning.sandbox import Workspace, Quota, Limits, run_python, sandbox_owner, SandboxError

Guarded
  - File tools (`Workspace`): every path stays inside the workspace. Refused: absolute paths, '..', '~', NUL and
    control characters, over-long paths and names, over-deep trees; symlinks anywhere on a path (folders are
    walked with O_NOFOLLOW descriptors, so a link created between two calls cannot redirect one); symlinked or
    hard-linked target files, FIFOs and devices (opened non-blocking and checked with fstat, never followed).
    No operation creates a link. Quotas: total bytes and entries in the workspace, bytes per file. Building,
    resetting, snapshotting and removing a workspace also go through descriptors only (tree.py), so links or
    deep trees planted by code cannot redirect them.
  - Code (`run_python`): a separate process under bubblewrap (read-only /usr, the workspace as the only
    writable folder, private /tmp, no network, no host /etc, /home, /root or /proc, empty environment, no
    capabilities, dies with its parent), as an unprivileged user, with rlimits (CPU seconds, address space,
    processes, file size, open files, no core) and a wall-clock timeout that kills the process group and the
    pid namespace. Output is bounded. Where bubblewrap cannot run, `unshare -rn` or rlimits alone are used and
    a loud warning says exactly what is no longer guarded (see process.py).

Not guarded
  - Hard CPU/memory isolation between many parallel sandboxes and the host (no cgroups): a sandbox can slow
    the machine down for its time limit. The process limit is shared by all sandboxes running as one user.
  - Kernel or bubblewrap vulnerabilities, timing side channels, and anything the template itself contains.
  - Disk used by code beyond the per-file limit until the caller checks the workspace against its quota
    (`run_python` rescans through descriptors, however deep the tree; `over_quota()` says why; environments
    report the overflow and reset).
  - In the weaker modes without root: processes that leave their process group outlive the run.
"""

from agent_lightning.sandbox.errors import SandboxError
from agent_lightning.sandbox.owners import sandbox_owner
from agent_lightning.sandbox.process import Limits, RunResult, isolation, run_python
from agent_lightning.sandbox.workspace import Quota, Workspace

__all__ = ["Limits", "Quota", "RunResult", "SandboxError", "Workspace", "isolation", "run_python", "sandbox_owner"]
