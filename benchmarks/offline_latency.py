"""How long the SDK's entry points take where the service cannot be connected to.

Run: .venv/bin/python benchmarks/offline_latency.py [--runs 3] [--blackhole]

Every case runs in a new process (interpreter start and imports included) against a port of
127.0.0.1 that nothing listens on (connections are refused), or with ``--blackhole`` one whose
connections hang (:class:`~deeplake_sdk.server.blackhole.Blackhole`: packets dropped, as
behind a firewall or a network that is down), with a journal on disk in a temporary directory:

* ``open``: ``DeeplakeFs(api)`` (the tables' layouts are probed);
* ``first event``: ``SessionLog(api, ...)`` and one ``log()``;
* ``open, earlier writes pending``: the same open after another process journaled a write
  and died (the open first waits, at most ``recover_timeout``, for such writes to be stored);
* ``exit with a write``: a script that writes one file and ends (the exit drain runs);
* ``deeplake-sdk write``: the command with its default ``--wait`` (exit code 2 expected);
* ``hook session-start`` / ``capture`` / ``session-end`` / ``pre-tool-use`` (a ``Read``
  under the memory mount): the Claude Code hooks.

Prints the median wall time of each case over ``--runs``. Run it with ``PYTHONPATH`` set to
another checkout to compare two versions of the SDK.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from deeplake_sdk.server.blackhole import Blackhole


def child(body: str) -> str:
    """The code of a process given the service's URL and a journal directory (``api``)."""
    head = (
        "import os, sys, time\n"
        "from deeplake_sdk import DeeplakeApi, DeeplakeFs, SessionLog\n"
        "api = DeeplakeApi('t', 'org', 'ws', sys.argv[1])\n"
        "t = time.perf_counter()\n"
    )
    return head + body


#: Each prints its own time (seconds) or is timed whole.
OPEN = child(
    "fs = DeeplakeFs(api, cache=False, journal=sys.argv[2])\n"
    "print(time.perf_counter() - t)\n"
    "os._exit(0)\n"
)
FIRST_EVENT = child(
    "SessionLog(api, 's1', user='u', journal=sys.argv[2]).log({'type': 'prompt'})\n"
    "print(time.perf_counter() - t)\n"
    "os._exit(0)\n"
)
#: Journals a write and dies without the exit drain.
WRITE_AND_DIE = child(
    "DeeplakeFs(api, cache=False, journal=sys.argv[2]).write_text('/earlier.md', 'kept')\n"
    "os._exit(0)\n"
)
#: Journals a write and ends normally (the exit drain runs).
WRITE_AND_EXIT = child(
    "DeeplakeFs(api, cache=False, journal=sys.argv[2]).write_text('/exit.md', 'kept')\n"
)


def unreachable_url() -> str:
    """The address of a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def run(args: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[float, str]:
    """Wall time of one process, and its stdout."""
    started = time.perf_counter()
    proc = subprocess.run(args, input=stdin, capture_output=True, env=env, check=False)
    return time.perf_counter() - started, proc.stdout.decode()


def one_round(env: dict[str, str], blackhole: bool = False) -> dict[str, float]:
    """Every case once, each with a journal of its own; returns seconds per case."""
    py = [sys.executable, "-c"]
    cli = [sys.executable, "-m", "deeplake_sdk.cli"]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="dloffline") as tmp, contextlib.ExitStack() as stack:

        def fresh(name: str) -> tuple[str, str, dict[str, str]]:
            journal = os.path.join(tmp, name)
            case_env = {**env, "DEEPLAKE_JOURNAL_DIR": journal}
            case_env["DEEPLAKE_STATE_DIR"] = os.path.join(tmp, name + "-state")
            case_env["DEEPLAKE_HOOK_DIR"] = os.path.join(tmp, name + "-hook")
            case_env["DEEPLAKE_MEMORY_MOUNT"] = os.path.join(tmp, name + "-mount")
            case_env["DEEPLAKE_CACHE_DIR"] = os.path.join(tmp, name + "-cache")
            # the host's shared budget, in the temporary directory: the cases that end with
            # os._exit leave their entry there
            case_env["DEEPLAKE_LIMIT_DIR"] = os.path.join(tmp, "limits")
            if blackhole:
                return stack.enter_context(Blackhole()).url, journal, case_env
            return unreachable_url(), journal, case_env

        url, journal, case_env = fresh("open")
        out["open"] = float(run([*py, OPEN, url, journal], case_env)[1] or "nan")
        url, journal, case_env = fresh("event")
        out["first event"] = float(run([*py, FIRST_EVENT, url, journal], case_env)[1] or "nan")
        url, journal, case_env = fresh("recover")
        run([*py, WRITE_AND_DIE, url, journal], case_env)
        out["open, earlier writes pending"] = float(
            run([*py, OPEN, url, journal], case_env)[1] or "nan"
        )
        url, journal, case_env = fresh("exit")
        out["exit with a write"] = run([*py, WRITE_AND_EXIT, url, journal], case_env)[0]
        url, journal, case_env = fresh("cli")
        case_env.update(DEEPLAKE_API_URL=url, DEEPLAKE_TOKEN="t", DEEPLAKE_ORG_ID="org")
        case_env["DEEPLAKE_WORKSPACE_ID"] = "ws"
        out["deeplake-sdk write"] = run([*cli, "write", "/a.md", "hello"], case_env)[0]
        payload = {"session_id": "s1", "cwd": tmp, "prompt": "hi"}
        for sub, event in (
            ("session-start", "SessionStart"),
            ("capture", "UserPromptSubmit"),
            ("session-end", "SessionEnd"),
        ):
            stdin = json.dumps({**payload, "hook_event_name": event}).encode()
            out[f"hook {sub}"] = run([*cli, "hook", sub], case_env, stdin)[0]
        read = {"file_path": os.path.join(case_env["DEEPLAKE_MEMORY_MOUNT"], "notes", "a.md")}
        stdin = json.dumps(
            {**payload, "hook_event_name": "PreToolUse", "tool_name": "Read", "tool_input": read}
        ).encode()
        out["hook pre-tool-use"] = run([*cli, "hook", "pre-tool-use"], case_env, stdin)[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--blackhole",
        action="store_true",
        help="connections hang (packets dropped) instead of being refused",
    )
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPLAKE_")}
    env.update(DEEPLAKE_HOOK_DRAIN="0", DEEPLAKE_CREDENTIALS="/nonexistent/credentials.json")
    rounds = [one_round(env, args.blackhole) for _ in range(args.runs)]
    print(f"{'case':34} {'median s':>9}   (runs: {args.runs})")
    for case in rounds[0]:
        print(f"{case:34} {statistics.median(r[case] for r in rounds):9.2f}")


if __name__ == "__main__":
    main()
