"""The OpenAI-compatible gateway: a FastAPI app that serves the policy and records rollouts for training.

    app = create_app(model, tokenizer, "smollm2", max_batch_size=8)   # tokenizer after prepare_for_tools
    app = create_app(None, None, "smollm2"); app.state.gateway.attach(model, tokenizer)   # 503 until attached
    server = BackgroundServer(app, port=0).start(); server.url; server.stop()          # serve/server.py

Endpoints (any unmodified OpenAI client works with base_url=http://HOST:PORT/v1, or /rollouts/<id>/v1 to record):
    GET  /v1/models, /v1/models/{model}           the served model, in OpenAI's list / model format
    POST /v1/chat/completions                     messages, tools, tool_choice, temperature, top_p, max_tokens
                                                  (max_completion_tokens), seed, stop, logprobs, stream
                                                  (stream_options.include_usage); n=1 only
    *    /rollouts/{rollout_id}/v1/...            the same API; each call is recorded under the rollout (the
                                                  first call opens it)
    POST /rollouts                                open a rollout: {"rollout_id": optional} -> {rollout_id, base_url}
    GET  /rollouts, /rollouts/{id}                summaries; one rollout's calls and training samples
    POST /rollouts/{id}/reward                    {"reward": number} and/or {"rewards": [number|null per call]}
    POST /rollouts/{id}/finish                    no more calls; DELETE /rollouts/{id} forgets it
    GET  /health, /stats                          readiness (503 while loading); the worker's counters

Errors use OpenAI's format {"error": {"message", "type", "param", "code"}}: 400 for a malformed body, 404 for an
unknown model, rollout or route, 409 for a call under a finished rollout, 503 while the model loads, 500 when
generation fails; the server keeps serving after any of them. Requests run in the server's thread pool: each
renders its prompt (serve/schema.py), waits for the generation worker (serve/batcher.py) that batches concurrent
requests, converts the reply and, under a rollout, records it (serve/recording.py).

With `forced` (schema.ForcedSampling), every request is sampled with the server's settings instead of its own
(temperature, top_p, no seed, max_tokens capped) and any model name is answered: how serve/agents.py trains and
evaluates an agent program.

A streamed request (stream=true) gets server-sent `chat.completion.chunk` events once its reply is generated
(schema.completion_chunks): a failure before that is an ordinary JSON error with its status.

Not covered: token-by-token streaming (the reply streams whole, after generation), authentication (any API key is
accepted: bind to a trusted interface), the legacy /v1/completions and embeddings endpoints, prompts longer than the
model's context (400).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent_lightning.serve.batcher import BATCH_WAIT_S, Batcher
from agent_lightning.serve.recording import BadRollout, Call, RolloutClosed, RolloutStore, UnknownRollout, \
    check_rollout_id
from agent_lightning.serve.schema import ApiError, ForcedSampling, ReplyFormat, bad, completion_body, \
    completion_chunks, logprobs_body, parse_chat_request, parse_json

log = logging.getLogger(__name__)


class Gateway:
    """The served policy (once attached), its generation worker and the rollout store."""

    def __init__(self, model_name: str, max_batch_size: int = 8, batch_wait_s: float = BATCH_WAIT_S,
                 default_max_tokens: int = 256, seed: int = 0, forced: ForcedSampling | None = None,
                 gather: Any = None) -> None:
        self.model_name, self.default_max_tokens, self.forced = model_name, default_max_tokens, forced
        self.gather = gather  # batcher.Batcher's `gather`: how many clients may still send a request
        self.max_batch_size, self.batch_wait_s, self.seed = max_batch_size, batch_wait_s, seed
        self.created = int(time.time())
        self.store = RolloutStore()
        self.batcher: Batcher | None = None
        self.format: ReplyFormat | None = None
        self.context: int | None = None
        self._tokenizer_lock = threading.Lock()  # one thread at a time renders, encodes and decodes

    @property
    def ready(self) -> bool:
        return self.batcher is not None

    def attach(self, model: Any, tokenizer: Any) -> None:
        """Serve `model` from now on (its tokenizer prepared by chat.tool_format.prepare_for_tools)."""
        fmt = ReplyFormat(tokenizer)
        self.context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        batcher = Batcher(model, tokenizer, self.max_batch_size, self.batch_wait_s, self.seed, self.gather)
        batcher.start()
        self.format, self.batcher = fmt, batcher

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()

    def model_card(self) -> dict[str, Any]:
        return {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "agent-lightning"}

    def chat(self, body: Any, rollout_id: str | None = None) -> dict[str, Any] | StreamingResponse:
        """Answer one chat-completion request body (recorded under `rollout_id` when given): the completion, or its
        event stream when the request streams."""
        if rollout_id is not None:
            _store_call(self.store.check_open, rollout_id)
        if not self.ready:
            raise ApiError(503, "the model is loading; retry in a few seconds.", type="server_error",
                           code="model_loading")
        served = self.model_name
        if self.forced is not None and self.forced.any_model and isinstance(body, dict) \
                and isinstance(body.get("model"), str) and body["model"]:
            served = body["model"]
        request = parse_chat_request(body, served)
        if self.forced is not None:
            request = self.forced.apply(request)
        fmt = self.format
        with self._tokenizer_lock:
            try:
                prompt_ids = fmt.encode(fmt.prompt_text(request.messages, request))
            except Exception as exc:  # noqa: BLE001 - the template refused this conversation: the client's to fix
                raise bad(f"messages: the policy's chat template cannot render this conversation "
                          f"({type(exc).__name__}: {exc}).", "messages") from None
        room = (self.context - len(prompt_ids)) if self.context else None
        if room is not None and room < 1:
            raise bad(f"the prompt is {len(prompt_ids)} tokens; the model's context is {self.context}.", "messages",
                      code="context_length_exceeded")
        max_new = request.max_tokens or self.default_max_tokens
        max_new = min(max_new, room) if room is not None else max_new
        generated = self.batcher.submit(prompt_ids, max_new, request.temperature, request.top_p,
                                        request.seed).result()
        with self._tokenizer_lock:
            message, finish_reason = fmt.reply(generated.ids, generated.ended, request)
            logprobs = logprobs_body(fmt.tokenizer, generated.ids, generated.logprobs) if request.logprobs else None
        if rollout_id is not None:
            call = Call(prompt_ids, generated.ids, generated.logprobs, request.messages, message, finish_reason,
                        request.tools, request.sampling())
            _store_call(self.store.add_call, rollout_id, call)
        completion = completion_body(self.model_name, message, finish_reason, len(prompt_ids), len(generated.ids),
                                     logprobs)
        if request.stream:
            return _event_stream(completion_chunks(completion, request.include_usage))
        return completion


def _event_stream(chunks: list[dict[str, Any]]) -> StreamingResponse:
    """Server-sent events as OpenAI streams them: one `data:` line per chunk, then `data: [DONE]`."""
    events = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks] + ["data: [DONE]\n\n"]
    return StreamingResponse(iter(events), media_type="text/event-stream")


def _store_call(fn: Any, *args: Any) -> Any:
    """Call a RolloutStore method, its errors as API errors."""
    try:
        return fn(*args)
    except UnknownRollout as exc:
        raise ApiError(404, exc.args[0], param="rollout_id", code="rollout_not_found") from None
    except RolloutClosed as exc:
        raise ApiError(409, str(exc), param="rollout_id", code="rollout_finished") from None
    except BadRollout as exc:
        raise bad(str(exc)) from None


async def _body(request: Request, optional: bool = False) -> Any:
    raw = await request.body()
    if optional and not raw.strip():
        return {}
    return parse_json(raw)


def create_app(model: Any, tokenizer: Any, model_name: str, *, max_batch_size: int = 8,
               batch_wait_s: float = BATCH_WAIT_S,
               default_max_tokens: int = 256, seed: int = 0, forced: ForcedSampling | None = None,
               gather: Any = None) -> FastAPI:
    """The gateway app serving `model` as `model_name` (None: loading, 503 until `app.state.gateway.attach`);
    `forced`: sampling imposed on every request (schema.ForcedSampling: training and evaluating an agent);
    `gather`: how many clients may still send a request (batcher.Batcher waits for them to batch together)."""
    gateway = Gateway(model_name, max_batch_size, batch_wait_s, default_max_tokens, seed, forced, gather)
    if model is not None:
        gateway.attach(model, tokenizer)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        gateway.close()

    app = FastAPI(title="Agent Lightning gateway", lifespan=lifespan)
    app.state.gateway = gateway
    _add_error_handlers(app)

    def models() -> dict[str, Any]:
        return {"object": "list", "data": [gateway.model_card()]}

    def model(model: str) -> dict[str, Any]:
        if model != gateway.model_name:
            raise ApiError(404, f"The model '{model}' does not exist; this server serves '{gateway.model_name}'.",
                           param="model", code="model_not_found")
        return gateway.model_card()

    async def chat(request: Request) -> Any:  # the completion, or its event stream
        return await run_in_threadpool(gateway.chat, await _body(request))

    def rollout_models(rollout_id: str) -> dict[str, Any]:
        _store_call(check_rollout_id, rollout_id)
        return models()

    def rollout_model(rollout_id: str, model_id: str) -> dict[str, Any]:
        _store_call(check_rollout_id, rollout_id)
        return model(model_id)

    async def rollout_chat(rollout_id: str, request: Request) -> Any:
        return await run_in_threadpool(gateway.chat, await _body(request), rollout_id)

    async def open_rollout(request: Request) -> dict[str, Any]:
        body = await _body(request, optional=True)
        if not isinstance(body, dict):
            raise bad('the request body must be a JSON object, e.g. {"rollout_id": "my-run-0"} or {}.')
        rollout = _store_call(gateway.store.open, body.get("rollout_id"))
        return {"rollout_id": rollout.rollout_id, "base_url": f"{str(request.base_url).rstrip('/')}/rollouts/"
                                                              f"{rollout.rollout_id}/v1"}

    def list_rollouts() -> dict[str, Any]:
        return {"object": "list", "data": gateway.store.summaries()}

    def get_rollout(rollout_id: str) -> dict[str, Any]:
        return _store_call(gateway.store.get, rollout_id).to_dict()

    async def reward(rollout_id: str, request: Request) -> dict[str, Any]:
        body = await _body(request)
        if not isinstance(body, dict):
            raise bad('the request body must be a JSON object: {"reward": number} or {"rewards": [...]}.')
        return _store_call(gateway.store.set_reward, rollout_id, body.get("reward"), body.get("rewards")).summary()

    def finish(rollout_id: str) -> dict[str, Any]:
        return _store_call(gateway.store.finish, rollout_id).summary()

    def delete(rollout_id: str) -> dict[str, Any]:
        _store_call(gateway.store.delete, rollout_id)
        return {"rollout_id": rollout_id, "deleted": True}

    def health() -> Any:
        if not gateway.ready:
            return JSONResponse({"status": "loading", "model": gateway.model_name}, status_code=503)
        return {"status": "ok", "model": gateway.model_name}

    def stats() -> dict[str, Any]:
        counters = gateway.batcher.stats() if gateway.batcher else {}
        return {**counters, "rollouts": len(gateway.store.ids()), "max_batch_size": gateway.max_batch_size}

    app.get("/v1/models")(models)
    app.get("/v1/models/{model}")(model)
    app.post("/v1/chat/completions")(chat)
    app.get("/rollouts/{rollout_id}/v1/models")(rollout_models)
    app.get("/rollouts/{rollout_id}/v1/models/{model_id}")(rollout_model)
    app.post("/rollouts/{rollout_id}/v1/chat/completions")(rollout_chat)
    app.post("/rollouts")(open_rollout)
    app.get("/rollouts")(list_rollouts)
    app.get("/rollouts/{rollout_id}")(get_rollout)
    app.post("/rollouts/{rollout_id}/reward")(reward)
    app.post("/rollouts/{rollout_id}/finish")(finish)
    app.delete("/rollouts/{rollout_id}")(delete)
    app.get("/health")(health)
    app.get("/stats")(stats)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error in OpenAI's format."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(bad(f"invalid request: {exc.errors()}"[:500]).body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = ApiError(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}",
                         code="not_found" if exc.status_code == 404 else None)
        return JSONResponse(error.body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("request %s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        error = ApiError(500, f"internal error ({type(exc).__name__}: {exc})"[:500], type="server_error")
        return JSONResponse(error.body(), status_code=500)
