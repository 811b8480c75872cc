"""CLI errors: one line on stderr that says what to do, and exit status 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deeplake_sdk.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_rejected_token_names_the_ways_to_fix_it(srv, workspace):
    proc = run_cli(
        "query",
        "SELECT 1",
        "--url",
        srv.url,
        "--token",
        "wrong",
        "--org",
        srv.org,
        "--workspace",
        workspace,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("deeplake-sdk: error: HTTP 401")
    assert "DEEPLAKE_TOKEN" in line and "credentials.json" in line


def test_serve_with_unreachable_dsn_fails_in_one_line(tmp_path):
    proc = run_cli("serve", "--port", "0", "--dsn", f"postgresql://nobody@/x?host={tmp_path}")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("deeplake-sdk: error: cannot use PostgreSQL at --dsn")


def test_serve_on_a_taken_port_suggests_another(pg_dsn):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("serve", "--port", str(port), "--dsn", pg_dsn)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "--port" in line and "0 = any free port" in line
