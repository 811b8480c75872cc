"""The statement trace (``--trace FILE``): each statement answered, and each deferred commit."""

from __future__ import annotations

import json

import requests
from waiting import poll

from deeplake_sdk.server import local
from deeplake_sdk.server.trace import TEXT_CHARS


def _post(srv, sql: str, *params) -> requests.Response:
    body = {"query": sql, "params": list(params)} if params else {"query": sql}
    return requests.post(
        f"{srv.url}/workspaces/w/tables/query", json=body, headers=srv.headers, timeout=60
    )


def test_the_trace_shows_each_statement_and_when_a_lagging_write_committed(pg_dsn, tmp_path):
    path = tmp_path / "trace.jsonl"
    with local(dsn=pg_dsn, trace=path, read_lag_ms=300) as srv:
        assert _post(srv, "CREATE TABLE t (id TEXT, body TEXT)").ok
        long = "x" * (TEXT_CHARS + 50)
        assert _post(srv, "INSERT INTO t VALUES ($1, $2)", "a", long).ok
        assert _post(srv, "SELECT nope FROM t").status_code == 400
        pending = lambda: srv.stats()["db_pool"]["pending_commits"]["pending"]  # noqa: E731
        poll(lambda: pending() == 0, "the insert to commit")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    statements = {line["id"]: line for line in lines if line["kind"] == "statement"}
    commits = {line["id"]: line for line in lines if line["kind"] == "commit"}
    (insert,) = [s for s in statements.values() if s["statement"].startswith("INSERT")]
    assert insert["outcome"] == 1 and insert["workspace"] == "w" and insert["fault"] is None
    assert insert["params"] == ["a", long[:TEXT_CHARS] + "..."]
    assert insert["at"] <= insert["answered"]
    # answered before it committed: other requests saw the row only from then on
    assert commits[insert["id"]]["at"] >= insert["answered"] + 0.25
    (failed,) = [s for s in statements.values() if s["statement"].startswith("SELECT nope")]
    assert failed["outcome"] == "HTTP 400" and failed["id"] not in commits
