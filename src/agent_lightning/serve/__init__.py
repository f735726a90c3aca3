"""The OpenAI-compatible gateway and rollout recorder: an unchanged agent, in any framework, talks to the policy
through an OpenAI client, and what the policy read and wrote is recorded for training.

    python main_agent_lightning.py serve [--config FILE] [--set ...] [--adapter DIR] [--host H] [--port N]

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/rollouts/run-0/v1", api_key="unused")
    client.chat.completions.create(model=..., messages=[...], tools=[...])    # recorded under rollout run-0
    httpx.post(".../rollouts/run-0/reward", json={"reward": 1.0}); httpx.get(".../rollouts/run-0")

Modules, one job each: app.py (routes, errors, the Gateway), schema.py (OpenAI <-> chat-template messages and the
policy's tool format), batcher.py (the generation worker that batches concurrent requests), recording.py (rollouts
and the training samples their calls make; pure), server.py (uvicorn, foreground or background). The `serve`
command itself is cli/serve.py. docs/gateway.md describes the endpoints and the recording format.

    from agent_lightning.serve.app import create_app
    from agent_lightning.serve.server import BackgroundServer

(Nothing heavy is imported here, so the pure recording module loads without the web stack or torch;
`player_for` imports the gateway only for an agent environment.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def player_for(cfg: Any) -> Callable[..., list[Any]] | None:
    """`serve.agents.play_agents` when the run's environment is played by an agent program (env.name=agent), else
    None: what `evaluate(..., play=...)` takes (evaluate is below the gateway in the layers, so its callers choose).
    The gateway and its web stack are imported only for such an environment."""
    from agent_lightning.environments.agent import is_agent_env
    from agent_lightning.registry import ENVIRONMENTS, discover

    discover()
    if not is_agent_env(ENVIRONMENTS.get(cfg.env.name).obj):
        return None
    from agent_lightning.serve.agents import play_agents

    return play_agents
