"""Start and stop: clean shutdown, SIGKILL of the server, stale pid file, CLI entry points."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from waiting import poll

from deeplake_sdk.server import LocalServer, ServerStartError, local
from deeplake_sdk.server.postgres import EmbeddedPostgres

from .procs import gone, tree


def _query(srv, sql):
    resp = requests.post(
        f"{srv.url}/workspaces/w/tables/query", json={"query": sql}, headers=srv.headers, timeout=60
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["rows"]


def test_fresh_data_dir_start_and_sigterm_leaves_nothing(tmp_path):
    data = tmp_path / "fresh"
    with local(data=data, durable=False) as srv:
        assert _query(srv, "SELECT 1") == [[1]]
        pg_pid = srv.stats()["postgres_pid"]
        pids = tree(srv.pid)
        assert pg_pid in pids and len(pids) >= 3  # server, postmaster, backends
        assert (data / "postgres" / "PG_VERSION").exists()
        code = srv.stop()
    assert code == 0
    assert not gone(pids)
    assert not (data / "postgres" / "postmaster.pid").exists()


def test_sigkill_of_server_stops_postgres_and_restart_recovers(tmp_path):
    data = tmp_path / "killed"
    srv = LocalServer.start(data=data, durable=False)
    try:
        _query(srv, "CREATE TABLE keep (a text); INSERT INTO keep VALUES ('kept'); SELECT 1")
        pg_pid = srv.stats()["postgres_pid"]
        pg_tree = tree(pg_pid)
        os.kill(srv.pid, signal.SIGKILL)
        assert not gone({srv.pid})
        assert not gone(pg_tree), "postgres did not exit after its parent was killed"
    finally:
        srv.stop()
    # plant a stale pid file (a dead pid), as left by a crashed machine
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file = data / "postgres" / "postmaster.pid"
    pid_file.write_text(f"{dead.pid}\n{data / 'postgres'}\n0\n5432\n\n\n0 0\nready\n")
    with local(data=data, durable=False) as again:
        assert _query(again, "SELECT a FROM keep") == [["kept"]]


def test_embedded_postgres_refuses_a_running_cluster(tmp_path):
    with EmbeddedPostgres(tmp_path / "pg", durable=False) as pg:
        assert pg.running and pg.pid
        second = EmbeddedPostgres(tmp_path / "pg")
        with pytest.raises(RuntimeError, match="already running"):
            second.start()
    assert not pg.running


def test_start_failure_reports_the_server_log():
    dsn = "postgresql://postgres@/postgres?host=/nonexistent-dir&connect_timeout=2"
    with pytest.raises(ServerStartError, match=r"cannot connect|connection"), local(dsn=dsn):
        pass


def test_bad_fault_settings_fail_fast():
    with pytest.raises(ValueError):
        LocalServer.start(faults="nope")
    with pytest.raises(ValueError):
        LocalServer.start(p_500=3)
    with pytest.raises(ValueError, match="max_faults"):
        LocalServer.start(max_faults=-1)


def _read_listening(proc, timeout=120):
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    assert sel.select(timeout), "no output from the server"
    line = proc.stdout.readline().decode().strip()
    sel.close()
    return line


@pytest.mark.parametrize(
    "entry",
    [["-m", "deeplake_sdk.cli", "serve"], ["-m", "deeplake_sdk.server"]],
    ids=["cli-serve", "python-m-server"],
)
def test_command_line_entry_points(pg_dsn, entry):
    proc = subprocess.Popen(
        [
            sys.executable,
            *entry,
            "--port",
            "0",
            "--dsn",
            pg_dsn,
            "--token",
            "tk",
            "--org",
            "o1",
            "--extra-token",
            "t2=o2",
            "--faults",
            "flaky",
            "--seed",
            "9",
            "--p-500",
            "0.5",
            "--fail-message",
            'index "i" already exists',
            "--max-faults",
            "2",
            "--dialect",
            "postgres",
            "--p-coalesce",
            "0.25",
            "--fault",
            "read_lag_ms=150",
            "--fault",
            "alter_window_s=2.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = _read_listening(proc)
        assert line.startswith("listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        headers = {"Authorization": "Bearer tk"}
        faults = requests.get(url + "/_admin/faults", headers=headers, timeout=30).json()
        assert faults["profile"] == "flaky" and faults["seed"] == 9 and faults["p_500"] == 0.5
        assert faults["fail_message"] == 'index "i" already exists' and faults["max_faults"] == 2
        assert (faults["p_coalesce"], faults["read_lag_ms"], faults["alter_window_s"]) == (
            0.25,
            150.0,
            2.5,
        )
        ok = requests.get(url + "/_admin/stats", headers=headers, timeout=30)
        assert ok.status_code == 200 and ok.json()["dialect"] == "postgres"
        other = requests.get(
            url + "/_admin/stats", headers={"Authorization": "Bearer t2"}, timeout=30
        )
        assert other.status_code == 403  # a data token of another org is no admin token
        if "serve" in entry:  # the command re-executes the server with the tokens in env
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            assert b"tk" not in cmdline and b"t2=o2" not in cmdline
        children = tree(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not gone(children)
        assert b"Warning" not in proc.stderr.read()  # e.g. gevent's MonkeyPatchWarning
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_serve_help_has_an_example():
    out = subprocess.run(
        [sys.executable, "-m", "deeplake_sdk.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--faults PROFILE" in out and "--dsn URL" in out and "--p-commit-fail" in out
    assert "--dialect" in out and "--unsafe-fast-storage" in out and "--fault NAME=VALUE" in out
    assert "--read-lag-ms" in out and "--migrate-workspace" in out
    assert "examples:" in out and "deeplake-sdk serve --faults beta" in out


def test_concurrent_first_use_from_two_servers_sharing_a_cluster(srv, pg_dsn, workspace):
    from concurrent.futures import ThreadPoolExecutor

    with local(dsn=pg_dsn, token=srv.token, org=srv.org) as other:

        def first_query(i):
            target = (srv, other)[i % 2]
            resp = requests.post(
                f"{target.url}/workspaces/{workspace}/tables/query",
                json={"query": "SELECT current_schema(), $1::int", "params": [i]},
                headers=target.headers,
                timeout=60,
            )
            return resp.status_code, resp.json()

        with ThreadPoolExecutor(max_workers=40) as pool:
            results = list(pool.map(first_query, range(40)))
        stats = other.stats()
    failed = [(status, body) for status, body in results if status != 200]
    assert not failed, failed[:3]  # what the service said, should it ever fail
    assert len({body["rows"][0][0] for _, body in results}) == 1
    # at most one connection per request, plus the superuser's to the admin and org databases
    assert 1 <= stats["db_connections_open"] <= 22


def test_a_workspace_first_use_waits_for_its_org_databases_lock(srv, pg_dsn, workspace):
    """Its role is granted the org's database, a change of the catalog row that another
    server's first use of the org also changes (REVOKE): PostgreSQL refuses the second of two
    at once ("tuple concurrently updated", a 500), so both hold the org's lock."""
    import threading

    import psycopg

    from deeplake_sdk.server.provision import _ORG_LOCK_NS, org_database

    assert _first_query(srv, workspace + "_org").status_code == 200  # the org exists, known
    key = [_ORG_LOCK_NS, org_database(srv.org)]
    answers = []
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", key)
        first = threading.Thread(target=lambda: answers.append(_first_query(srv, workspace)))
        first.start()
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = %s::oid AND objid = hashtext(%s)::oid"
        )
        try:
            poll(lambda: conn.execute(waiting, key).fetchone()[0] == 1, "the org lock wait")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)
            first.join(60)
    assert [a.status_code for a in answers] == [200], [a.text for a in answers]


def _first_query(srv, workspace):
    return requests.post(
        f"{srv.url}/workspaces/{workspace}/tables/query",
        json={"query": "SELECT 1"},
        headers=srv.headers,
        timeout=60,
    )
