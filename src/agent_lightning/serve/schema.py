"""OpenAI chat-completion requests and replies <-> the policy's chat-template messages and tool-call format.

    request = parse_chat_request(body, served_model)     # ApiError (400/404) for what cannot be served
    messages = to_template_messages(body["messages"])      # what tokenizer.apply_chat_template renders
    fmt = ReplyFormat(tokenizer)                           # after chat.tool_format.prepare_for_tools(tokenizer)
    text = fmt.prompt_text(messages, request)              # the rendered conversation (+ a forced call opening)
    message, finish_reason = fmt.reply(generated_ids, ended, request)   # the OpenAI assistant message

Incoming messages follow OpenAI's schema: `tool_calls[].function.arguments` is a JSON string and a `tool` message
names its call by `tool_call_id`. The chat templates want what the rollout loop (rollout/episodes.py) builds:
arguments as dicts, tool messages carrying the tool's `name`, no call ids (the policy writes its calls without
ids, so a conversation sent back as the gateway returned it renders token for token as the rollout loop renders
it). `developer` messages become `system` messages; content given as a list of text parts is joined.

Replies are parsed by the policy's own tolerant parser (`tokenizer.parse_response`, chat/tool_format.py). A call
the parser could not read keeps the project's convention: its arguments are `{"__malformed__": "<why>"}`, so the
agent's tool reports an error the policy can read, as in training. Each returned call gets a fresh id.

tool_choice: "auto" (default) parses calls; "none" returns the reply as text (call markup included); "required"
and a named function write the opening of a call into the prompt (ChatML `<tool_call>\\n{"name": "`, Mistral v0.3
`[TOOL_CALLS] [{"name": "`, with the function's name and `"arguments": ` when one is named), so the policy
completes a call of that tool: the opening counts as prompt tokens, not generated ones. Not covered: guided
decoding (the completed call may still be malformed), n > 1, response_format other than text, top_logprobs (only
the chosen token's logprob is returned), audio and image content.

stream=true is answered with OpenAI's server-sent events (`completion_chunks`: the role, the content, the tool calls,
the finish reason, usage when `stream_options.include_usage`, then `data: [DONE]`), sent once the whole reply is
generated: clients that stream work unchanged, but the first token arrives no earlier than without streaming.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agent_lightning.chat.messages import content_text

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
FORCED_CALL = {  # format -> (opening of any call, opening of a call of {name})
    "chatml": ('<tool_call>\n{"name": "', '<tool_call>\n{{"name": {name}, "arguments": '),
    "mistral_v3": ('[TOOL_CALLS] [{"name": "', '[TOOL_CALLS] [{{"name": {name}, "arguments": '),
}
MAX_STOP = 4


class ApiError(Exception):
    """An error answered in OpenAI's format: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


@dataclass
class ChatRequest:
    """A validated chat-completion request, its messages already in template form."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str = "auto"  # "auto", "none" or "required"
    tool_name: str | None = None  # a named function the reply must call
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    logprobs: bool = False
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def sampling(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "seed": self.seed,
                "max_tokens": self.max_tokens, "stop": self.stop, "tool_choice": self.tool_choice,
                "tool_name": self.tool_name}


@dataclass(frozen=True)
class ForcedSampling:
    """Sampling the server imposes on every request, whatever the client asks: training an agent samples with the
    trainer's settings (`grpo.temperature`, `grpo.top_p`) and evaluating it is greedy, so an agent's own
    `temperature`, `top_p` and `seed` are replaced, and its `max_tokens` is capped at `max_tokens` (the limit when it
    sets none). With `any_model`, a request naming any model is answered by the served policy (an agent written for
    a hosted model name runs unchanged)."""

    temperature: float
    top_p: float = 1.0
    max_tokens: int | None = None
    any_model: bool = True

    def apply(self, request: "ChatRequest") -> "ChatRequest":
        cap = self.max_tokens
        max_tokens = request.max_tokens if cap is None else min(request.max_tokens or cap, cap)
        return dataclasses.replace(request, temperature=self.temperature, top_p=self.top_p, seed=None,
                                   max_tokens=max_tokens)


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the request body is not valid JSON ({exc}).") from None


def _number(body: dict, key: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < low or value > high or (low_open and value == low):
        side = "(" if low_open else "["
        raise bad(f"{key}: expected a number in {side}{low}, {high}], got {value!r}.", key)
    return float(value)


def _integer(body: dict, key: str, low: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        raise bad(f"{key}: expected an integer{f' >= {low}' if low is not None else ''}, got {value!r}.", key)
    return value


def parse_chat_request(body: Any, served_model: str) -> ChatRequest:
    """Validate a /v1/chat/completions body (see the module docstring for what is supported)."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model: required, a string (GET /v1/models lists the served model).", "model")
    if model != served_model:
        raise ApiError(404, f"The model '{model}' does not exist; this server serves '{served_model}'.",
                       param="model", code="model_not_found")
    if "messages" not in body:
        raise bad("messages: required, a list of chat messages.", "messages")
    if body.get("n") not in (None, 1):
        raise bad(f"n: only 1 is supported, got {body.get('n')!r}; send one request per completion.", "n")
    stream, include_usage = _stream(body)
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "text"):
        raise bad("response_format: only {'type': 'text'} is supported.", "response_format")
    if body.get("logprobs") not in (None, True, False):
        raise bad(f"logprobs: expected a boolean, got {body.get('logprobs')!r}.", "logprobs")
    tools = _tools(body.get("tools"))
    choice, name = _tool_choice(body.get("tool_choice"), tools)
    max_tokens = _integer(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1)
    return ChatRequest(
        model=model, messages=to_template_messages(body["messages"]), tools=tools, tool_choice=choice,
        tool_name=name, temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0, low_open=True), max_tokens=max_tokens,
        seed=_integer(body, "seed"), stop=_stop(body.get("stop")), logprobs=bool(body.get("logprobs")),
        stream=stream, include_usage=include_usage)


def _stream(body: dict) -> tuple[bool, bool]:
    """(stream, stream_options.include_usage)."""
    stream, options = body.get("stream"), body.get("stream_options")
    if stream not in (None, True, False):
        raise bad(f"stream: expected a boolean, got {stream!r}.", "stream")
    if options is None:
        return bool(stream), False
    if not stream:
        raise bad("stream_options: only allowed with stream=true.", "stream_options")
    if not isinstance(options, dict) or options.get("include_usage") not in (None, True, False):
        raise bad("stream_options: expected {'include_usage': true|false}.", "stream_options")
    return True, bool(options.get("include_usage"))


def _stop(stop: Any) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOP:
        raise bad(f"stop: expected a non-empty string or a list of up to {MAX_STOP} of them.", "stop")
    return stops


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad("tools: expected a list of {'type': 'function', 'function': {...}}.", "tools")
    out = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(function, dict) \
                or not isinstance(function.get("name"), str) or not function["name"]:
            raise bad(f"tools[{i}]: expected {{'type': 'function', 'function': {{'name': ..., 'parameters': "
                      "{...}}}}.", f"tools[{i}]")
        if not isinstance(function.get("parameters", {}), dict):
            raise bad(f"tools[{i}].function.parameters: expected a JSON schema object.", f"tools[{i}]")
        out.append({"type": "function", "function": function})
    return out or None


def _tool_choice(choice: Any, tools: list[dict[str, Any]] | None) -> tuple[str, str | None]:
    if choice is None or choice in ("auto", "none"):
        return choice or "auto", None
    if choice == "required":
        if not tools:
            raise bad("tool_choice 'required' needs tools.", "tool_choice")
        return "required", None
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(name, str):
        raise bad("tool_choice: expected 'auto', 'none', 'required' or {'type': 'function', 'function': "
                  "{'name': ...}}.", "tool_choice")
    names = [t["function"]["name"] for t in tools or []]
    if name not in names:
        raise bad(f"tool_choice: no tool named '{name}' in tools ({', '.join(names) or 'none given'}).",
                  "tool_choice")
    return "required", name


def to_template_messages(messages: Any) -> list[dict[str, Any]]:
    """OpenAI chat messages -> the messages the chat templates render (see the module docstring)."""
    if not isinstance(messages, list) or not messages:
        raise bad("messages: expected a non-empty list of chat messages.", "messages")
    calls: dict[str, str] = {}  # call id -> tool name, from the assistant messages so far
    out = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad(f"{where}: expected an object with a role and content.", where)
        role = ROLES.get(message.get("role"))
        if role is None:
            raise bad(f"{where}.role: {message.get('role')!r} is not one of {', '.join(ROLES)}.", f"{where}.role")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise bad(f"{where}.content: expected a string or a list of text parts.", f"{where}.content")
        text = content_text(content)
        if role == "assistant":
            converted: dict[str, Any] = {"role": "assistant", "content": text}
            tool_calls = [_call(call, f"{where}.tool_calls[{j}]", calls)
                          for j, call in enumerate(message.get("tool_calls") or [])]
            if tool_calls:
                converted["tool_calls"] = tool_calls
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in calls:
                raise bad(f"{where}.tool_call_id: {call_id!r} matches no tool call of an earlier assistant message.",
                          f"{where}.tool_call_id")
            converted = {"role": "tool", "name": calls[call_id], "content": text}
        else:
            converted = {"role": role, "content": text}
        out.append(converted)
    return out


def _call(call: Any, where: str, calls: dict[str, str]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad(f"{where}: expected {{'id': ..., 'type': 'function', 'function': {{'name': ..., "
                  "'arguments': '<JSON>'}}}}.", where)
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise bad(f"{where}.function.arguments: not valid JSON: {arguments[:80]!r}.",
                      f"{where}.function.arguments") from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise bad(f"{where}.function.arguments: expected a JSON object.", f"{where}.function.arguments")
    if isinstance(call.get("id"), str):
        calls[call["id"]] = function["name"]
    return {"type": "function", "function": {"name": function["name"], "arguments": arguments}}


class ReplyFormat:
    """The policy's side of the conversion: renders prompts and reads replies with the tokenizer that
    chat.tool_format.prepare_for_tools prepared."""

    def __init__(self, tokenizer: Any) -> None:
        parser = getattr(tokenizer, "parse_response", None)
        if not hasattr(parser, "parse") or getattr(parser, "fmt", None) not in FORCED_CALL:
            raise ValueError("the tokenizer has no tool-call parser: call chat.tool_format.prepare_for_tools first.")
        self.tokenizer, self.parser, self.fmt = tokenizer, parser, parser.fmt

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
        """The conversation as the policy reads it, ending with the assistant header."""
        return self.tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)

    def forced_opening(self, request: ChatRequest) -> str:
        """The start of a tool call written for the policy when tool_choice demands one ('' otherwise)."""
        if request.tool_choice != "required":
            return ""
        any_call, named = FORCED_CALL[self.fmt]
        return named.format(name=json.dumps(request.tool_name)) if request.tool_name else any_call

    def prompt_text(self, messages: list[dict[str, Any]], request: ChatRequest) -> str:
        return self.render(messages, request.tools) + self.forced_opening(request)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def reply(self, ids: list[int], ended: bool, request: ChatRequest) -> tuple[dict[str, Any], str]:
        """The OpenAI assistant message and finish_reason of the generated `ids` (`ended`: the policy ended its
        turn)."""
        opening = self.forced_opening(request)
        text = opening + self.parser.decode(list(ids))
        cut = min((i for i in (text.find(s, len(opening)) for s in request.stop) if i >= 0), default=-1)
        if cut >= 0:
            text, ended = text[:cut], True
        message = self.to_openai(text, request.tools, parse_calls=request.tool_choice != "none")
        if not ended:
            return message, "length"
        return message, "tool_calls" if message.get("tool_calls") else "stop"

    def to_openai(self, text: str, tools: list[dict[str, Any]] | None, parse_calls: bool = True) -> dict[str, Any]:
        """The OpenAI assistant message of a reply written in the policy's tool format."""
        if not parse_calls:
            return {"role": "assistant", "content": text.strip()}
        parsed = self.parser.parse(text, tools)
        return openai_message(parsed)


def openai_message(parsed: dict[str, Any]) -> dict[str, Any]:
    """Our assistant message (chat.tool_format.to_message: arguments as dicts) in OpenAI's format, each call with a
    fresh id; content None when the reply is only calls."""
    calls = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
              "function": {"name": c["function"]["name"],
                           "arguments": json.dumps(c["function"]["arguments"], ensure_ascii=False)}}
             for c in parsed.get("tool_calls") or []]
    message: dict[str, Any] = {"role": "assistant", "content": parsed.get("content") or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    return message


def completion_body(model: str, message: dict[str, Any], finish_reason: str, prompt_tokens: int,
                    completion_tokens: int, logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `chat.completion` object."""
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": logprobs}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def completion_chunks(completion: dict[str, Any], include_usage: bool = False) -> list[dict[str, Any]]:
    """A `chat.completion` as the `chat.completion.chunk` objects a streaming client reads: the role, the content,
    each tool call whole (with its index), the finish reason, and with `include_usage` a last chunk with no choice
    and the usage (every other chunk then carries "usage": null)."""
    [choice] = completion["choices"]
    message = choice["message"]
    head = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"]}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None) -> dict[str, Any]:
        out = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}
        return {**out, "usage": None} if include_usage else out

    chunks = [chunk({"role": "assistant", "content": ""})]
    if message.get("content"):
        chunks.append(chunk({"content": message["content"]}, logprobs=choice.get("logprobs")))
    if message.get("tool_calls"):
        chunks.append(chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]}))
    chunks.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return chunks


def logprobs_body(tokenizer: Any, ids: list[int], logprobs: list[float]) -> dict[str, Any]:
    """OpenAI's `choices[0].logprobs`: each generated token with its logprob (no alternatives)."""
    content = []
    for token_id, logprob in zip(ids, logprobs):
        token = tokenizer.decode([token_id])
        content.append({"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8")),
                        "top_logprobs": []})
    return {"content": content, "refusal": None}
