"""The embedded PostgreSQL is durable by default: an acknowledged write survives SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal

import requests

from deeplake_sdk.server import LocalServer, local

from .procs import gone, tree

SETTINGS = "SELECT current_setting('fsync'), current_setting('synchronous_commit'), " + (
    "current_setting('full_page_writes')"
)


def _post(srv, sql, *params):
    body = {"query": sql, "params": list(params)} if params else {"query": sql}
    return requests.post(
        f"{srv.url}/workspaces/w/tables/query", json=body, headers=srv.headers, timeout=60
    )


def test_rows_acknowledged_right_before_sigkill_survive(tmp_path):
    data = tmp_path / "durable"
    srv = LocalServer.start(data=data)  # durable: the default
    try:
        assert _post(srv, SETTINGS).json()["rows"] == [["on", "on", "on"]]
        assert _post(srv, "CREATE TABLE t (n int)").status_code == 200
        n = 200
        for i in range(n):
            assert _post(srv, "INSERT INTO t VALUES ($1)", i).status_code == 200
        # right after the last 200: SIGKILL the server, the postmaster and every backend
        pids = tree(srv.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not gone(pids)
    finally:
        srv.stop()
    with local(data=data, durable=False) as again:  # crash recovery on the same data dir
        assert _post(again, "SELECT count(*), max(n) FROM t").json()["rows"] == [[n, n - 1]]


def test_unsafe_fast_storage_is_an_explicit_opt_in(tmp_path):
    with local(data=tmp_path / "fast", durable=False) as srv:
        assert _post(srv, SETTINGS).json()["rows"] == [["off", "off", "off"]]
