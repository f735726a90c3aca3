"""One run of an agent program: a subprocess with its rollout's gateway URL, its task, a deadline and its output.

    result = run_agent_process(["python", "agent.py"], task, base_url="http://127.0.0.1:PORT/rollouts/r-0/v1",
                               reward_url="http://127.0.0.1:PORT/rollouts/r-0/reward", model="policy", timeout_s=60)
    result.exit_code, result.timed_out, result.printed_reward, result.stderr_tail, failure_reason(result)

What the program gets (so that an agent written for OpenAI's API runs unchanged, the official `openai` client
reading its configuration from the environment):
  - OPENAI_BASE_URL: its rollout's base URL on the gateway (every call it makes is recorded under the rollout);
    OPENAI_API_KEY (any key is accepted); OPENAI_MODEL (the served model's name; any name is answered);
  - the task as one JSON object on stdin (then stdin is closed) and in AGENT_TASK;
  - AGENT_LIGHTNING_ROLLOUT_ID and AGENT_LIGHTNING_REWARD_URL (POST {"reward": x} there to report its reward);
  - NO_PROXY extended with the loopback, so a proxy configured for the outside does not catch the gateway.
It runs in the current directory, in a session of its own: at the deadline the whole process group is killed
(SIGKILL). Its stdout and stderr are read to the end; a final stdout line `{"reward": x}` is its printed reward.

Not covered: sandboxing the program (it runs with your permissions, like any command you run), interactive input,
output beyond memory (both streams are held until it exits; only their tails are kept).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

TAIL_CHARS = 2000  # of stdout and stderr kept per run
LOOPBACK = "127.0.0.1,localhost,::1"


@dataclass
class ProcessResult:
    """How one agent process ended."""

    exit_code: int | None  # None when it was killed at the deadline or could not start
    timed_out: bool = False
    seconds: float = 0.0
    stdout_tail: str = ""
    stderr_tail: str = ""
    printed_reward: float | None = None  # its last stdout line, when that is {"reward": <finite number>}
    start_error: str | None = None  # why it could not be started (program missing, not executable)


def agent_environment(task: dict[str, Any], base_url: str, reward_url: str, rollout_id: str,
                      model: str) -> dict[str, str]:
    """The process environment of one agent run (see the module docstring)."""
    env = dict(os.environ)
    no_proxy = ",".join(p for p in (env.get("NO_PROXY") or env.get("no_proxy") or "", LOOPBACK) if p)
    env.update({"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "agent-lightning", "OPENAI_MODEL": model,
                "AGENT_TASK": json.dumps(task, ensure_ascii=False), "AGENT_LIGHTNING_ROLLOUT_ID": rollout_id,
                "AGENT_LIGHTNING_REWARD_URL": reward_url, "NO_PROXY": no_proxy, "no_proxy": no_proxy})
    return env


def run_agent_process(argv: list[str], task: dict[str, Any], *, base_url: str, reward_url: str, rollout_id: str,
                      model: str, timeout_s: float, cwd: str | None = None) -> ProcessResult:
    """Run the agent once on `task` and wait for it (at most `timeout_s`); see the module docstring."""
    env = agent_environment(task, base_url, reward_url, rollout_id, model)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=cwd or os.getcwd(), start_new_session=True)
    except OSError as exc:
        return ProcessResult(None, start_error=f"{argv[0]}: {exc.strerror or exc}")
    timed_out = False
    stdin = (json.dumps(task, ensure_ascii=False) + "\n").encode()
    try:
        out, err = proc.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = proc.communicate()
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    return ProcessResult(None if timed_out else proc.returncode, timed_out, round(time.monotonic() - started, 3),
                         stdout[-TAIL_CHARS:], stderr[-TAIL_CHARS:], printed_reward(stdout))


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the agent's whole session (its own children too)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def printed_reward(stdout: str) -> float | None:
    """The reward of a last non-empty stdout line `{"reward": x}` (x a finite number), else None."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        value = json.loads(lines[-1])
    except ValueError:
        return None
    reward = value.get("reward") if isinstance(value, dict) else None
    if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward):
        return None
    return float(reward)


def failure_reason(result: ProcessResult, timeout_s: float | None = None) -> str | None:
    """One line saying why the run failed (could not start, timed out, non-zero exit; with the end of its stderr),
    or None when the process exited 0."""
    tail = _last_lines(result.stderr_tail)
    said = f"; stderr ends: {tail!r}" if tail else ""
    if result.start_error is not None:
        return f"the agent could not be started ({result.start_error})"
    if result.timed_out:
        limit = f" of agent.timeout_s={timeout_s:g}" if timeout_s is not None else ""
        return f"the agent timed out after {result.seconds:.1f} s (the limit{limit}) and was killed{said}"
    if result.exit_code:
        return f"the agent exited with code {result.exit_code}{said}"
    return None


def _last_lines(text: str, lines: int = 3, chars: int = 300) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-chars:]
