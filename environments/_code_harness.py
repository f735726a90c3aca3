"""Runs INSIDE the sandbox (stdlib only): score one solution against one problem's tests without letting the
solution touch the tests, the results or the nonce. (A leading underscore: the plugin scan skips this file.)

    cwd holds solution.py (untrusted) and, now or a moment later, secret.json:
        {"entry_point": ..., "prompt": ..., "test": <check() returning a list of booleans>, "nonce": ...}
    prints one line: nonce + JSON list of per-test booleans

How: this process turns off its dumpability (no ptrace, no /proc/<pid>/mem or fd access by the same uid) and
forks the solution's process BEFORE it reads the secret; then it reads and unlinks secret.json and tells the
child to load solution.py. The tests run here, in the parent: every `candidate(*args)` call goes over a pipe as
JSON, and results come back as plain builtin values (None, bool, int, float, str, list, tuple, set, dict), so an
object that claims to equal anything, a redefined print or json, or a forged output line (the child's stdout
is /dev/null) cannot change a verdict. Not covered: tests that need the candidate to mutate its arguments or to
return other types (they fail).
"""

import ctypes
import json
import os
import sys
import time


def encode(value):
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind in (list, tuple, set, frozenset):
        return {"__t": kind.__name__, "v": [encode(x) for x in value]}
    if kind is dict:
        return {"__t": "dict", "v": [[encode(k), encode(x)] for k, x in value.items()]}
    raise TypeError(f"unsupported return type {kind.__name__}")


def decode(value):
    if isinstance(value, dict):
        kind, items = value["__t"], value["v"]
        if kind == "dict":
            return {decode(k): decode(x) for k, x in items}
        return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](decode(x) for x in items)
    return value


def serve_solution(requests, replies):
    """The child: wait for the go (the secret is gone by then), load the solution, answer calls."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    entry = requests.readline().strip()
    try:
        namespace = {"__name__": "__main__"}
        with open("solution.py") as fh:
            exec(compile(fh.read(), "solution.py", "exec"), namespace)
        function = namespace[entry]
        replies.write('["ready"]\n')
        replies.flush()
    except BaseException as exc:  # noqa: BLE001 - any failure to load is a failed solution
        replies.write(json.dumps(["error", type(exc).__name__]) + "\n")
        replies.flush()
        os._exit(1)
    for line in requests:
        try:
            reply = ["ok", encode(function(*[decode(a) for a in json.loads(line)]))]
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as a failed call
            reply = ["error", type(exc).__name__]
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    os._exit(0)


def read_secret(wait_seconds=10.0):
    deadline = time.monotonic() + wait_seconds
    while not os.path.exists("secret.json"):
        if time.monotonic() > deadline:
            sys.exit("secret.json never arrived")
        time.sleep(0.0005)
    with open("secret.json") as fh:
        secret = json.load(fh)
    os.unlink("secret.json")
    return secret


def main():
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0 (inherited by the child)
    from_parent, to_child = os.pipe()  # (read end, write end)
    from_child, to_parent = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_child)
        os.close(from_child)
        serve_solution(os.fdopen(from_parent, "r"), os.fdopen(to_parent, "w"))
    os.close(from_parent)
    os.close(to_parent)
    secret = read_secret()
    send, receive = os.fdopen(to_child, "w"), os.fdopen(from_child, "r")
    send.write(secret["entry_point"] + "\n")
    send.flush()
    ready = json.loads(receive.readline() or '["error", "died"]')[0] == "ready"

    def candidate(*args):
        send.write(json.dumps([encode(a) for a in args]) + "\n")
        send.flush()
        line = receive.readline()
        if not line:
            raise RuntimeError("the solution's process died")
        kind, value = json.loads(line)
        if kind != "ok":
            raise RuntimeError(value)
        return decode(value)

    namespace = {"__name__": "__harness__"}
    exec(secret["prompt"] + "\n\n" + secret["test"], namespace)  # trusted helpers of the prompt, and check()
    namespace[secret["entry_point"]] = candidate  # some tests call the entry point by name
    results = namespace["check"](candidate) if ready else []
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    print(secret["nonce"] + json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
