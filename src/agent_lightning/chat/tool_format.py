"""Tool-call format of a policy: the chat template TRL renders tools with, and the parser it reads calls back with.

    fmt = prepare_for_tools(tokenizer)      # "chatml" or "mistral_v3"; then hand the tokenizer to GRPOTrainer
    prepare_for_tools(tokenizer, "compact")  # ChatML with one line per tool (policy.tool_prompt)

TRL's tool loop (`GRPOTrainer(environment_factory=...)`) needs three things from the tokenizer, all set here:
  - a chat template that renders tools, tool calls and tool results, and is prefix-preserving (TRL slices the tokens
    of a tool result out of two renders and appends them to the generated ids):
      chatml      TRL's own `trl/chat_templates/qwen2_5.jinja` (read from the installed trl), for any tokenizer with
                  `<|im_start|>`/`<|im_end|>` (SmolLM2, Qwen): `<tool_call>\\n{json}\\n</tool_call>`.
      chatml, compact  our `chat/templates/chatml_compact_tools.jinja`: the same turns, calls and results, but the
                  tools listed one per line ("- write_file(path, content): ...") instead of as full JSON schemas:
                  about a third of the prompt tokens. For models not already trained on qwen2_5's tool prompt
                  (SmolLM2 learns the format in SFT); a Qwen model keeps the format it knows with "full".
      mistral_v3  our `chat/templates/mistral_v3_tools.jinja`, for tokenizers with Mistral v0.3's control tokens:
                  token-identical to mistral-common's v3 encoder ([AVAILABLE_TOOLS], [TOOL_CALLS], [TOOL_RESULTS]),
                  with {% generation %} markers (SFT's assistant-only loss uses it as is).
  - `tokenizer.response_template`: TRL only parses tool calls when it is not None. We set a real transformers
    response template (TRL's for ChatML, an equivalent one for Mistral), so a saved and reloaded tokenizer still
    parses well-formed calls with transformers' own (strict) parser. Call `prepare_for_tools` again after loading.
  - `tokenizer.parse_response`: replaced on the instance by `ToolCallParser`, which decodes the generated ids and runs
    the tolerant `chat.segmenter.parse_response_text`. transformers' parser raises on a malformed call and TRL then
    silently turns the whole turn into plain text; ours never raises.

Malformed-call convention (agreed with the environment side): a call the segmenter could not parse (`ToolCall.error`)
is returned as `{"type": "function", "function": {"name": N, "arguments": {"__malformed__": error}}}` with N the call's
name when it is a known tool, else the first tool's name. The environment's tool wrapper raises a ToolError carrying
that message when it sees `__malformed__`, so TRL counts a tool failure and the policy reads the error as the tool
result. A well-formed call to an unknown tool is malformed too (the segmenter's "unknown tool ... did you mean"
message); without `tools` every well-formed call passes through as it is.

Gotcha: TRL's qwen2_5 template adds Qwen's default system prompt ("You are Qwen, created by Alibaba Cloud...")
to a conversation without a system message: give prompts a system message.

Not covered: other tool formats (Llama 3 JSON, Hermes variants); newer Mistral formats (tekken, [CALL_ID]/[ARGS])
get the v3 rendering when their vocab has the v3 control tokens, unchecked against their own encoders; a ChatML
model's own template (Qwen3 thinking, ...) is replaced by qwen2_5. Typing arguments by the tool's JSON schema; tool
call ids (TRL's loop has none; the Mistral template renders ids only when a message carries them).
Run the tests: `pytest -q tests/chat/test_tool_format.py`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent_lightning.chat import load_template
from agent_lightning.chat.messages import MALFORMED
from agent_lightning.errors import UserError

log = logging.getLogger(__name__)

MISTRAL_V3_TOKENS = ("[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                     "[TOOL_RESULTS]", "[/TOOL_RESULTS]")
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")
END_OF_TURN = ("<|im_end|>", "<|endoftext|>")  # besides the tokenizer's eos
TOOL_PROMPTS = ("full", "compact")
KEEP_SPECIAL = {"mistral_v3": ("[TOOL_CALLS]",), "chatml": ()}  # special tokens the segmenter needs to see

# transformers (>= 5.13) response template for our Mistral v0.3 rendering; used only when our parser is not bound.
MISTRAL_V3_RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": ["[/INST]", "[/TOOL_RESULTS]"],
    "fields": {
        "tool_calls": {
            "open": "[TOOL_CALLS]",
            "close": "</s>",
            "content": "json",
            "transform": {"type": "function", "function": {"name": "{name}", "arguments": "{arguments}"}},
            "transform_each": True,
        },
        "content": {"close": "</s>", "content": "text"},
    },
}


def chatml_template() -> str:
    """TRL's bundled qwen2_5 template, read from the installed trl (TRL recognises it by exact text)."""
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text(encoding="utf-8")


def detect_format(tokenizer: Any) -> str | None:
    """'mistral_v3', 'chatml', or None when the tokenizer has neither family's tokens nor our Mistral template."""
    vocab = tokenizer.get_vocab()
    if all(t in vocab for t in MISTRAL_V3_TOKENS):
        return "mistral_v3"
    if tokenizer.chat_template in (load_template("mistral_v3"), load_template("mistral_v3_tools")):
        return "mistral_v3"
    if all(t in vocab for t in CHATML_TOKENS):
        return "chatml"
    return None


def prepare_for_tools(tokenizer: Any, tool_prompt: str = "full") -> str:
    """Set the tool chat template, response template and tolerant parser on `tokenizer`; return the format name.

    `tool_prompt` "compact" lists ChatML tools one per line, "full" prints their JSON schemas (Mistral v0.3's tool
    block is fixed by its control tokens: both give it). Idempotent. Raises UserError when the tokenizer belongs to no known tool format."""
    if tool_prompt not in TOOL_PROMPTS:
        raise UserError(f"policy.tool_prompt: '{tool_prompt}' is not one of {', '.join(TOOL_PROMPTS)}.")
    fmt = detect_format(tokenizer)
    if fmt is None:
        raise UserError(
            "policy: the tokenizer has neither Mistral v0.3 tool tokens ([TOOL_CALLS]) nor ChatML tokens "
            "(<|im_start|>), so tool calls cannot be rendered or parsed; use a Mistral v0.3 or ChatML-based model "
            "as policy.source."
        )
    if fmt == "mistral_v3":
        tokenizer.chat_template = load_template("mistral_v3_tools")
        tokenizer.response_template = copy.deepcopy(MISTRAL_V3_RESPONSE_TEMPLATE)
    else:
        from trl.chat_template_utils import add_response_schema

        tokenizer.chat_template = chatml_template()
        add_response_schema(tokenizer)  # TRL's own response template for its qwen2_5 template
        if tool_prompt == "compact":  # same assistant turns as qwen2_5, so the response template just set still applies
            tokenizer.chat_template = load_template("chatml_compact_tools")
        if tokenizer.eos_token != "<|im_end|>":
            log.warning("ChatML tokenizer with eos %r, not <|im_end|>: TRL ends turns and slices tool results at eos; "
                        "set tokenizer.eos_token = '<|im_end|>' for tool training.", tokenizer.eos_token)
    tokenizer.parse_response = ToolCallParser(tokenizer, fmt)
    return fmt


def tool_names(tools: Iterable[Any] | None) -> list[str]:
    """Names of tools given as callables (their `__name__`) or JSON-schema dicts (`function.name` or `name`)."""
    names = []
    for tool in tools or []:
        if isinstance(tool, dict):
            name = (tool.get("function") or tool).get("name")
        else:
            name = getattr(tool, "__name__", None)
        if isinstance(name, str):
            names.append(name)
    return names


def to_message(parsed: Any, names: list[str]) -> dict:
    """TRL's assistant message dict from a segmenter `ParsedResponse` (malformed calls per the module convention)."""
    message: dict[str, Any] = {"role": "assistant", "content": (parsed.content or "").strip()}
    calls = []
    for call in parsed.calls:
        error = call.error
        if error is None and not isinstance(call.name, str):
            error = "tool call has no function name"
        if error is None and not isinstance(call.arguments, dict):
            error = "tool call arguments are not a JSON object"
        if error is None:
            calls.append({"type": "function", "function": {"name": call.name, "arguments": dict(call.arguments)}})
            continue
        name = call.name if call.name in names else (names[0] if names else (call.name or "unknown_tool"))
        calls.append({"type": "function", "function": {"name": name, "arguments": {MALFORMED: str(error)}}})
    if calls:
        message["tool_calls"] = calls
    return message


class ToolCallParser:
    """Bound on a tokenizer instance as `parse_response(ids, prefix=None, tools=None)`; never raises on model output.

    A plain object (not a bound function) so that the tokenizer still pickles, deep-copies and saves."""

    def __init__(self, tokenizer: Any, fmt: str):
        self.tokenizer = tokenizer
        self.fmt = fmt
        self._sets: tuple[set[int], set[int]] | None = None

    def __call__(self, response: Any, schema: Any = None, *, prefix: Any = None, tools: Any = None, **_: Any):
        # `prefix` is not needed: neither template pre-writes any part of the assistant turn.
        if hasattr(response, "tolist"):
            response = response.tolist()
        if isinstance(response, (list, tuple)) and response and isinstance(response[0], (list, tuple, str)):
            return [self(r, tools=tools) for r in response]  # a batch
        return self.parse(response, tools)

    def parse(self, response: str | list[int], tools: Any = None) -> dict:
        from agent_lightning.chat.segmenter import parse_response_text

        text = response if isinstance(response, str) else self.decode(list(response))
        names = tool_names(tools)
        return to_message(parse_response_text(text, names or None), names)

    def decode(self, ids: list[int]) -> str:
        """Text of one turn: cut at the first end-of-turn token, special tokens dropped except the format's markers."""
        stops, special = self._token_sets()
        turn = []
        for i in ids:
            if i in stops:
                break
            if i not in special:
                turn.append(i)
        return self.tokenizer.decode(turn, skip_special_tokens=False)

    def _token_sets(self) -> tuple[set[int], set[int]]:
        if self._sets is None:
            tok = self.tokenizer
            vocab = tok.get_vocab()
            stops = {tok.eos_token_id} | {vocab[t] for t in END_OF_TURN if t in vocab}
            keep = {vocab[t] for t in KEEP_SPECIAL[self.fmt] if t in vocab}
            self._sets = (stops, set(tok.all_special_ids) - keep)
        return self._sets
