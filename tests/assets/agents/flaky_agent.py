"""A test agent that misbehaves on purpose, on the real `openai` client; otherwise it is the example agent.

    python tests/assets/agents/flaky_agent.py [--crash-index N]

The task's `behaviour` field says what to do:
  ok       one model call, then print {"reward": 0.5}
  crash    one model call, then exit 3 with a message on stderr
  hang     sleep at once (the runner's timeout kills it)
  silent   one model call and report nothing (the task's answer, if any, decides)
  nocall   no model call; print {"reward": 1.0}
  example  (default) run examples/openai_agent/agent.py unchanged
With --crash-index N, the rollout whose id ends in N (AGENT_LIGHTNING_ROLLOUT_ID) exits 3 before any call.
"""

import json
import os
import runpy
import sys
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "openai_agent" / "agent.py"


def one_call() -> None:
    import openai  # only where a call is made: `hang` and `nocall` start at once

    client = openai.OpenAI(max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}],
                                   temperature=1.3, max_tokens=500, seed=7)


def main() -> None:
    rollout = os.environ["AGENT_LIGHTNING_ROLLOUT_ID"]
    crash_index = int(sys.argv[sys.argv.index("--crash-index") + 1]) if "--crash-index" in sys.argv else None
    if crash_index is not None and int(rollout.rsplit("-", 1)[1]) == crash_index:
        print("crashing on purpose before any call", file=sys.stderr)
        sys.exit(3)
    task = json.loads(sys.stdin.read())
    behaviour = task.get("behaviour", "example")
    if behaviour == "example":
        os.environ["AGENT_TASK"] = json.dumps(task)
        sys.argv = [str(EXAMPLE)]
        runpy.run_path(str(EXAMPLE), run_name="__main__")
        return
    if behaviour == "nocall":
        print(json.dumps({"reward": 1.0}))
        return
    if behaviour == "hang":
        time.sleep(600)
    one_call()
    if behaviour == "crash":
        print("boom: the agent fell over", file=sys.stderr)
        sys.exit(3)
    if behaviour == "ok":
        print("some log line")
        print(json.dumps({"reward": 0.5}))


if __name__ == "__main__":
    main()
