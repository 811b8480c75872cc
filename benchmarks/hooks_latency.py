"""Wall time and round trips of each Claude Code hook, one cold process per invocation.

Run: .venv/bin/python benchmarks/hooks_latency.py [--runs 20] [--latency-ms 0] [--files 200]

Against the embedded local server (``--latency-ms`` of added latency per request), with
``--files`` memory files seeded: every invocation is ``python -m deeplake_sdk.cli hook SUB`` in
a new process with the payload on stdin, as Claude Code runs it (interpreter start and imports
included). Round trips are the server's request counter around each invocation (the
background drain is off and the hooks send none of what they journal, so only the hook's own
reads and table checks count). Prints p50/p95/max wall time and round trips per hook,
and the same for ``python -c pass`` (the floor of any hook) and ``deeplake-sdk --version``
(every command's parser and their imports).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from deeplake_sdk import DeeplakeApi, DeeplakeFs
from deeplake_sdk.server import local

CLI = [sys.executable, "-m", "deeplake_sdk.cli"]
#: p95 wall-time budget of one hook invocation (seconds), cold process included.
BUDGET_P95 = {"pre-tool-use": 1.0, "capture": 1.0, "session-start": 2.0, "session-end": 2.0}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="dlhooks")
    faults = {"latency_fixed_ms": args.latency_ms} if args.latency_ms else {}
    with local(durable=False, **faults) as srv:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPLAKE_")}
        mount = f"{tmp}/mount"
        env.update(
            DEEPLAKE_API_URL=srv.url,
            DEEPLAKE_TOKEN=srv.token,
            DEEPLAKE_ORG_ID=srv.org,
            DEEPLAKE_WORKSPACE_ID="bench",
            DEEPLAKE_CREDENTIALS=f"{tmp}/none.json",
            DEEPLAKE_JOURNAL_DIR=f"{tmp}/journal",
            DEEPLAKE_HOOK_DIR=f"{tmp}/hook",
            DEEPLAKE_MEMORY_MOUNT=mount,
            DEEPLAKE_USER="bench",
            DEEPLAKE_HOOK_DRAIN="0",
        )
        api = DeeplakeApi(srv.token, srv.org, "bench", srv.url)
        with DeeplakeFs(api, cache=False, journal=f"{tmp}/seed-journal") as fs:
            for i in range(args.files):
                fs.write_text(f"/notes/{i:04d}.md", f"note {i}\nTODO: item {i % 7}\n")
        sid = str(uuid.uuid4())
        base = {"session_id": sid, "cwd": "/home/bench/proj", "transcript_path": "/dev/null"}
        cases: dict[str, tuple[list[str], dict | None]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], None),
            "deeplake-sdk --version": (
                [sys.executable, "-m", "deeplake_sdk.cli", "--version"],
                None,
            ),
            "session-start": (["session-start"], {**base, "hook_event_name": "SessionStart"}),
            "capture": (
                ["capture"],
                {**base, "hook_event_name": "UserPromptSubmit", "prompt": "what is TODO?"},
            ),
            "pre-tool-use Read": (
                ["pre-tool-use"],
                {"tool_name": "Read", "tool_input": {"file_path": f"{mount}/notes/0003.md"}},
            ),
            "pre-tool-use Grep": (
                ["pre-tool-use"],
                {"tool_name": "Grep", "tool_input": {"pattern": "item 3", "path": mount}},
            ),
            "pre-tool-use Bash cat": (
                ["pre-tool-use"],
                {"tool_name": "Bash", "tool_input": {"command": f"cat {mount}/notes/0001.md"}},
            ),
            # the calls nearly every tool use makes: away from the mount, they fall through
            "pre-tool-use Read elsewhere": (
                ["pre-tool-use"],
                {**base, "tool_name": "Read", "tool_input": {"file_path": "README.md"}},
            ),
            "pre-tool-use Bash elsewhere": (
                ["pre-tool-use"],
                {**base, "tool_name": "Bash", "tool_input": {"command": "git status"}},
            ),
            "session-end": (["session-end"], {**base, "hook_event_name": "SessionEnd"}),
        }
        report = {}
        print(f"{'hook':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'round trips':>12}")
        for name, (words, payload) in cases.items():
            argv = words if payload is None else [*CLI, "hook", *words]
            walls, trips = [], []
            for _ in range(args.runs):
                before = srv.stats()["requests"]
                t0 = time.perf_counter()
                proc = subprocess.run(
                    argv,
                    input=json.dumps(payload or {}).encode(),
                    capture_output=True,
                    env=env,
                    check=False,
                )
                walls.append(time.perf_counter() - t0)
                trips.append(srv.stats()["requests"] - before)
                if proc.returncode != 0:
                    raise SystemExit(
                        f"{name} failed ({proc.returncode}): {proc.stderr.decode()[-3000:]}"
                    )
            row = {
                "p50_ms": round(percentile(walls, 50) * 1000, 1),
                "p95_ms": round(percentile(walls, 95) * 1000, 1),
                "max_ms": round(max(walls) * 1000, 1),
                "round_trips": sorted(set(trips)),
            }
            report[name] = row
            print(
                f"{name:32} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {row['max_ms']:8.1f} "
                f"{','.join(map(str, row['round_trips'])):>12}"
            )
        api.close()
    print("\nbudget (p95, s):", json.dumps(BUDGET_P95))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
