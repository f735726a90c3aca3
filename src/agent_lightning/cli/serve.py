"""`serve`: the OpenAI-compatible gateway in front of the policy (base, or base + a run's adapter).

    python main_agent_lightning.py serve [--config FILE] [--set key=value ...] [--adapter RUN_DIR/adapter]
                                         [--host 127.0.0.1] [--port 8000] [--model-name NAME]
                                         [--max-batch-size 8] [--batch-wait-ms 25] [--max-tokens N]

The port is opened at once and the URL printed; the policy loads in the background (requests get 503 until it is
ready, then a second line says so). The policy is loaded as `eval` loads it (evaluate.load_for_eval: a mergeable
adapter is merged) and its tokenizer gets the run's tool format (`policy.tool_prompt`), so the gateway renders
prompts and parses tool calls exactly as training and evaluation do. `--model-name` defaults to the policy source
(and the adapter's run folder): the name clients pass as `model`. `--max-tokens` is the completion limit of a
request that sets none (default: eval.max_new_tokens, else grpo.max_completion_length). Ctrl+C stops it.

A mistake (bad config, a missing adapter, a port in use) is one line and exit code 2. Not covered: several worker
processes, TLS, authentication (bind to a trusted interface). The app itself: agent_lightning/serve/.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_lightning.errors import UserError


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `serve` to the top-level subparsers; `common` adds --config/--set/--plugin-dir."""
    p = sub.add_parser("serve", help="OpenAI-compatible gateway (/v1/chat/completions with tools) that records "
                                     "rollouts (/rollouts/<id>/v1) for training.")
    p.add_argument("--adapter", help="A PEFT adapter folder (e.g. RUN_DIR/adapter); default: the base policy.")
    p.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default 127.0.0.1: this machine only).")
    p.add_argument("--port", type=int, default=8000, help="Port (default 8000; 0: any free port).")
    p.add_argument("--model-name", help="The model name clients send (default: the policy source, with the "
                                        "adapter's run folder).")
    p.add_argument("--max-batch-size", type=int, default=8,
                   help="Concurrent requests generated together (default 8; 1: one at a time).")
    p.add_argument("--batch-wait-ms", type=float, default=25.0,
                   help="How long the generation worker waits for one more request to batch (default 25).")
    p.add_argument("--max-tokens", type=int, help="Completion limit of a request without max_tokens (default: "
                                                  "eval.max_new_tokens, else grpo.max_completion_length).")
    common(p)


def model_name(source: str, adapter: str | None) -> str:
    """`smollm2`, a folder's name, or a hub id; `+<run folder>` (or `+<adapter folder>`) with an adapter."""
    path = Path(source).expanduser()
    name = path.name if path.exists() or source.startswith((".", "/", "~")) else source
    if adapter:
        folder = Path(adapter).expanduser().resolve()
        name += "+" + (folder.parent.name if folder.name == "adapter" else folder.name)
    return name


def run(args: argparse.Namespace) -> int:
    from agent_lightning.config import load_config

    cfg = load_config(args.config, args.overrides)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: expected 0-65535 (0: any free port).")
    if args.max_batch_size < 1:
        raise UserError(f"--max-batch-size {args.max_batch_size}: expected 1 or more.")
    if not 0 <= args.batch_wait_ms <= 10_000:
        raise UserError(f"--batch-wait-ms {args.batch_wait_ms}: expected 0-10000 milliseconds.")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise UserError(f"--max-tokens {args.max_tokens}: expected 1 or more.")
    if args.adapter and not (Path(args.adapter) / "adapter_config.json").is_file():
        raise UserError(f"--adapter {args.adapter}: no adapter_config.json there (expected a run's adapter/ folder).")
    from agent_lightning.serve.app import create_app
    from agent_lightning.serve.server import bind, make_server, run as run_server, url_of

    name = args.model_name or model_name(cfg.policy.source, args.adapter)
    max_tokens = args.max_tokens or cfg.eval.max_new_tokens or cfg.grpo.max_completion_length
    app = create_app(None, None, name, max_batch_size=args.max_batch_size, batch_wait_s=args.batch_wait_ms / 1000,
                     seed=cfg.run.seed, default_max_tokens=max_tokens)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise UserError(f"--host {args.host} --port {args.port}: cannot listen there ({exc.strerror or exc}); "
                        "choose another port, or --port 0 for any free one.") from None
    url = url_of(sock)
    server = make_server(app)
    failed: list[BaseException] = []

    def load() -> None:
        try:
            from agent_lightning.chat.tool_format import prepare_for_tools
            from agent_lightning.evaluate import load_for_eval

            model, tokenizer = load_for_eval(cfg, args.adapter)
            prepare_for_tools(tokenizer, cfg.policy.tool_prompt)
            app.state.gateway.attach(model, tokenizer)
            print(f"ready: model '{name}' at {url}/v1 (record a rollout: {url}/rollouts/<id>/v1)", flush=True)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread once the server has stopped
            failed.append(exc)
            server.should_exit = True

    print(f"serving '{name}' at {url}/v1; loading the policy (requests get 503 until it is ready) ...", flush=True)
    threading.Thread(target=load, name="gateway-load", daemon=True).start()
    try:
        run_server(app, sock, server)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    if failed:
        raise failed[0]
    print("gateway stopped")
    return 0
