"""A small tool-using agent, written with the official `openai` package and the Python standard library only.

It reads one task (JSON: at least `prompt`, optionally `answer`), chats with a model through the chat-completions
API, runs the tools the model calls (a calculator, reversing a word, counting a letter, a scratch pad of notes),
stops at the first reply without a tool call (its final answer), checks that answer against the task's `answer` when
there is one, and reports the reward: POSTed to AGENT_LIGHTNING_REWARD_URL when that is set, and always printed as
its last line of output, `{"reward": 1.0}`.

    # against OpenAI's API (or any OpenAI-compatible server: set OPENAI_BASE_URL)
    OPENAI_API_KEY=sk-... python examples/openai_agent/agent.py <<< '{"prompt": "What is 17 * 23?", "answer": "391"}'

    # trained by Agent Lightning, which sets OPENAI_BASE_URL to the gateway and passes each task on stdin
    python main_agent_lightning.py --algo grpo --set env.name=agent \\
        --set agent.command="python examples/openai_agent/agent.py" --set agent.tasks=examples/openai_agent/tasks.jsonl

Configuration comes from the environment, as the `openai` client reads it: OPENAI_BASE_URL, OPENAI_API_KEY, and
OPENAI_MODEL (default gpt-4o-mini). The task comes from AGENT_TASK, else stdin. Nothing here knows about Agent
Lightning beyond the optional reward URL. Not covered: streaming, parallel agents, retries beyond the client's own.
"""

from __future__ import annotations

import ast
import json
import operator
import os
import re
import sys
import urllib.request

import openai

SYSTEM = ("You solve small arithmetic and word puzzles. Call a tool to compute the result, then reply with only "
          "the final answer.")
MAX_TURNS = 4
TOOLS = [
    {"type": "function", "function": {
        "name": "calculator", "description": "Evaluate an arithmetic expression with + - * / and parentheses.",
        "parameters": {"type": "object", "properties": {
            "expression": {"type": "string", "description": "The expression, e.g. (4 + 9) * 3."}},
            "required": ["expression"]}}},
    {"type": "function", "function": {
        "name": "count_letter", "description": "Count how many times a letter appears in a word.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string", "description": "The word."},
                                                        "letter": {"type": "string", "description": "The letter."}},
                       "required": ["text", "letter"]}}},
    {"type": "function", "function": {
        "name": "note", "description": "Write a note on the scratch pad; returns every note so far.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string", "description": "The note."}},
                       "required": ["text"]}}},
    {"type": "function", "function": {
        "name": "reverse", "description": "Write a word backwards.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string", "description": "The word."}},
                       "required": ["text"]}}},
]
OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
             ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.USub: operator.neg, ast.UAdd: operator.pos}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def calculate(expression: str) -> float | int:
    """The value of an arithmetic expression (numbers, + - * / // %, parentheses); ValueError for anything else."""

    def value(node: ast.AST) -> float | int:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](value(node.operand))
        raise ValueError("only numbers, + - * / // % and parentheses are allowed")

    if len(expression) > 200:
        raise ValueError("expression too long")
    return value(ast.parse(expression, mode="eval").body)


def run_tool(name: str, arguments: str, notes: list[str]) -> str:
    """The result of one tool call, as text (an error message the model can read when the call is wrong)."""
    try:
        args = json.loads(arguments or "{}")
        if not isinstance(args, dict):
            raise ValueError("arguments must be a JSON object")
        if name == "calculator":
            result = calculate(str(args["expression"]))
            return str(int(result) if float(result).is_integer() else round(result, 6))
        if name == "reverse":
            return str(args["text"])[::-1]
        if name == "count_letter":
            return str(str(args["text"]).count(str(args["letter"])))
        if name == "note":
            notes.append(str(args["text"]))
            return "\n".join(notes)
        return f"error: no tool named {name!r}"
    except (KeyError, ValueError, TypeError, ZeroDivisionError, SyntaxError, OverflowError) as exc:
        return f"error: {type(exc).__name__}: {exc}"


def is_correct(reply: str, expected: str) -> bool:
    """The reply's answer (its last number, or its last line) equals the expected one."""
    expected = str(expected).strip()
    if NUMBER.fullmatch(expected):
        numbers = NUMBER.findall(reply)
        return bool(numbers) and float(numbers[-1]) == float(expected)
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    last = re.sub(r"^(final\s+)?answer\s*[:=]\s*", "", lines[-1] if lines else "", flags=re.IGNORECASE)
    return last.strip().strip("\"'`*").rstrip(".!").strip().lower() == expected.lower()


def solve(client: openai.OpenAI, model: str, prompt: str) -> str:
    """Chat until the model answers without calling a tool (at most MAX_TURNS replies); its final answer."""
    messages: list[dict] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    notes: list[str] = []
    for _ in range(MAX_TURNS):
        try:
            reply = client.chat.completions.create(model=model, messages=messages, tools=TOOLS, temperature=0.7,
                                                   max_tokens=256)
        except openai.BadRequestError as exc:  # e.g. the conversation outgrew the model's context
            print(f"request refused: {exc}", file=sys.stderr)
            return ""
        message = reply.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        messages.append({"role": "assistant", "content": message.content,
                         "tool_calls": [{"id": c.id, "type": "function",
                                         "function": {"name": c.function.name, "arguments": c.function.arguments}}
                                        for c in message.tool_calls]})
        for call in message.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.id,
                             "content": run_tool(call.function.name, call.function.arguments, notes)})
    return ""


def report(reward: float) -> None:
    """POST the reward to AGENT_LIGHTNING_REWARD_URL when set; print it as the last line of output either way."""
    url = os.environ.get("AGENT_LIGHTNING_REWARD_URL")
    if url:
        request = urllib.request.Request(url, data=json.dumps({"reward": reward}).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except OSError as exc:
            print(f"could not POST the reward: {exc}", file=sys.stderr)
    print(json.dumps({"reward": reward}), flush=True)


def main() -> None:
    task = json.loads(os.environ.get("AGENT_TASK") or sys.stdin.read())
    client = openai.OpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY from the environment
    answer = solve(client, os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), task["prompt"])
    print(f"answer: {answer!r}", file=sys.stderr)
    if task.get("answer") is not None:
        report(1.0 if is_correct(answer, task["answer"]) else 0.0)


if __name__ == "__main__":
    main()
