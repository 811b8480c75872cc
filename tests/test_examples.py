"""Every script of examples/ runs with no arguments and prints what it promises.

Most run against the test server through the environment (the "configured service" path of
``deeplake_sdk.server.connect``, which is faster); ``quickstart.py`` also runs without any
credentials, so it starts and stops its own embedded server, and ``resilience.py`` always
starts its own faulty local server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        cwd=EXAMPLES,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.rstrip().endswith("done") or "done:" in proc.stdout
    return proc.stdout


def isolated_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPLAKE_")}
    env["DEEPLAKE_CREDENTIALS"] = str(tmp_path / "no-credentials.json")
    env["DEEPLAKE_CACHE_DIR"] = str(tmp_path / "cache")
    env["DEEPLAKE_JOURNAL_DIR"] = str(tmp_path / "journal")
    return env


def env_for(srv, workspace: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a process using ``srv`` and ``workspace``, isolated in ``tmp_path``."""
    env = isolated_env(tmp_path)
    env.update(
        DEEPLAKE_API_URL=srv.url,
        DEEPLAKE_TOKEN=srv.token,
        DEEPLAKE_ORG_ID=srv.org,
        DEEPLAKE_WORKSPACE_ID=workspace,
    )
    return env


@pytest.fixture
def service_env(srv, workspace, tmp_path) -> dict[str, str]:
    return env_for(srv, workspace, tmp_path)


def test_every_example_has_a_test():
    tested = {
        "quickstart.py",
        "memory_fs.py",
        "grep_memory.py",
        "session_log.py",
        "durable_writes.py",
        "resilience.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def check_quickstart(out: str) -> None:
    assert re.search(r"Lisbon\s+545,000", out) and re.search(r"Oslo\s+709,000", out)
    assert "Tallinn" not in out.split("cities by first letter", maxsplit=1)[0]
    assert "cities by first letter: {'L': 1, 'O': 1, 'T': 1}" in out
    assert "  # Today\n  - tried the quickstart\n" in out
    assert "files: ['today.md']" in out


def test_quickstart_on_the_configured_service(service_env, srv, workspace):
    out = run_example("quickstart.py", service_env)
    assert f"connected: <DeeplakeApi {srv.url} org={srv.org} workspace={workspace}>" in out
    check_quickstart(out)


def test_quickstart_without_credentials_uses_an_embedded_server(tmp_path, server):
    out = run_example("quickstart.py", isolated_env(tmp_path))
    first = out.splitlines()[0]
    assert first.startswith("connected: <DeeplakeApi http://127.0.0.1:")
    assert server.url not in first and first.endswith("org=local workspace=default>")
    check_quickstart(out)


def test_memory_fs(service_env):
    out = run_example("memory_fs.py", service_env)
    assert (
        "after flush(), /projects/engine.md reads\n   # Analytical engine\n   - status: designing\n"
        in out
    )
    assert "- status: designing\n   - next: punch cards" in out
    assert "/people/ada.md (moved from /profile/user.md)\n   name: Ada" in out
    for code in ("ENOENT", "EISDIR", "ENOTDIR"):
        assert re.search(rf"^   {code}\s+\[{code}\]", out, re.MULTILINE), code
    assert "/archive" not in out.split("== /index.md")[1]  # removed with rm -r
    assert ": who the user is" in out
    assert "cache hits 2, misses 0, round trips 1" in out


def test_grep_memory(service_env):
    out = run_example("grep_memory.py", service_env)
    headers = re.findall(
        r"^== grep (\S+) '.*' \S+: (\d+) lines, (\d+) round trip", out, re.MULTILINE
    )
    assert [(flags, int(lines)) for flags, lines, _ in headers] == [
        ("-n", 10),
        ("-il", 10),
        ("-ic", 20),
        ("-wl", 5),
        ("-vn", 50),
    ]
    assert all(trips == "1" for _, _, trips in headers)
    assert "/meetings/security/005.md:3:TODO: rotate the API keys" in out
    assert "one query vs one read per file: 1 vs 20 round trips" in out


def test_session_log(service_env):
    out = run_example("session_log.py", service_env)
    name = f"ada_local_{service_env['DEEPLAKE_WORKSPACE_ID']}_2024-06-01-a.jsonl"
    assert f"logged 3 events to /sessions/ada/{name}" in out
    events = out.split("== log.read()")[1].split("==")[0]
    assert [line.split()[0] for line in events.strip().splitlines()[1:]] == [
        "user_message",
        "tool_call",
        "assistant_message",
    ]
    assert f"== ls /sessions/ada: ['{name}']" in out
    found = out.split("(one query)\n")[1].split("\n\n")[0].split()
    assert found == [f"/sessions/ada/{name}", "/trips/oslo.md"]
    assert "session files are read-only: EPERM" in out


def test_durable_writes(srv, service_env):
    # the example's own embedded server adds 20 ms per request; this one is given the same
    srv.set_faults(profile="none", latency_fixed_ms=20)
    try:
        out = run_example("durable_writes.py", service_env)
    finally:
        srv.set_faults(profile="none")
    median = float(re.search(r"median call ([\d.]+) ms", out).group(1))
    trip = float(re.search(r"a round trip to the service: ([\d.]+) ms", out).group(1))
    assert median < trip  # a call that waited for the service would last a round trip at least
    assert "flush: all 100 writes stored" in out
    names = [f"'{i}.md'" for i in range(5)]
    assert f"/killed holds [{', '.join(names)}]" in out
    assert "rows in the table: 5 (one per file)" in out


def test_resilience_shows_retries_and_exact_results(tmp_path):
    out = run_example("resilience.py", isolated_env(tmp_path))
    assert "AmbiguousWriteError: a write statement may or may not have been applied" in out
    assert "rows in ledger: 1 (it had committed" in out
    assert "memory rows: 20 (expected 20), wrong content: 0" in out
    assert "session events: 10 in order, no duplicates: True" in out
    assert "done: nothing lost, nothing doubled" in out
    retries = re.findall(r"deeplake_sdk\.retry: .* failed \((.*)\), retrying in", out)
    assert len(retries) >= 3
    assert any("injected fault" in r for r in retries)
    assert re.search(r"client: (\d+) retries", out)
