"""Wire contract over real HTTP: routes, status codes, error format, tables endpoints."""

from __future__ import annotations

import json
import re

import pytest
import requests

from deeplake_sdk.server.backend import workspace_role

_SQLSTATE = re.compile(r"[0-9A-Z]{5}")


def _err(resp, status, code=None):
    """The error body; a SQLSTATE ``code`` is checked as the service sends it."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"error", "code", "request_id"}
    assert body["request_id"] == resp.headers["X-Request-Id"]
    assert isinstance(body["error"], str) and body["error"]
    if code is not None and _SQLSTATE.fullmatch(code):
        assert (body["code"], body["sqlstate"]) == ("QUERY_ERROR", code)
    elif code is not None:
        assert body["code"] == code
    return body


def test_query_returns_columns_rows_row_count(raw):
    resp = raw.query("SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y' ORDER BY 1")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert len(resp.headers["X-Request-Id"]) >= 16
    assert resp.json() == {"columns": ["a", "b"], "rows": [[1, "x"], [2, "y"]], "row_count": 2}


def test_ddl_and_dml_row_counts(raw):
    assert raw.query("CREATE TABLE t (n int) USING deeplake").json() == {
        "columns": [],
        "rows": [],
        "row_count": 0,
    }
    ins = raw.query("INSERT INTO t SELECT generate_series(1, 5)").json()
    assert ins == {"columns": [], "rows": [], "row_count": 5}
    upd = raw.query("UPDATE t SET n = n + 10 WHERE n > $1", 2).json()
    assert upd["row_count"] == 3 and upd["rows"] == []
    ret = raw.query("DELETE FROM t WHERE n > 13 RETURNING n").json()
    assert ret["columns"] == ["n"] and sorted(ret["rows"]) == [[14], [15]]
    assert ret["row_count"] == 2
    empty = raw.query("SELECT n FROM t WHERE n < 0").json()
    assert empty == {"columns": ["n"], "rows": [], "row_count": 0}


def test_multi_statement_returns_last_result(raw):
    resp = raw.query("CREATE TABLE m (a int); INSERT INTO m VALUES (1), (2); SELECT sum(a) FROM m")
    assert resp.status_code == 200
    assert resp.json()["rows"] == [[3]]


def test_multi_statement_with_params_is_a_400(raw):
    _err(raw.query("SELECT $1; SELECT 2", 1), 400, "42601")


def test_sql_error_is_400_with_postgres_message_and_sqlstate(raw):
    body = _err(raw.query("SELECT * FROM no_such_table"), 400, "42P01")
    assert body["error"] == 'relation "no_such_table" does not exist'
    body = _err(raw.query("SELEC 1"), 400, "42601")
    assert "syntax error" in body["error"]
    _err(raw.query("SELECT 1/0"), 400, "22012")


def test_statement_timeout_is_408(raw):
    body = _err(raw.query("SELECT pg_sleep(5)", timeout_ms=50), 408, "statement_timeout")
    assert "timeout" in body["error"]
    # the connection is reusable and the timeout does not stick to later queries
    assert raw.rows("SELECT pg_sleep(0.1), 1") == [["", 1]]


def test_open_transaction_is_rolled_back_after_request(raw):
    raw.rows("CREATE TABLE tx (a int); SELECT 1")
    assert raw.query("BEGIN; INSERT INTO tx VALUES (1)").status_code == 200
    assert raw.rows("SELECT count(*) FROM tx") == [[0]]
    assert raw.query("BEGIN; INSERT INTO tx VALUES (2); COMMIT").status_code == 200
    assert raw.rows("SELECT a FROM tx") == [[2]]
    # an error inside an explicit transaction does not poison the pooled connection
    _err(raw.query("BEGIN; SELECT 1/0"), 400, "22012")
    assert raw.rows("SELECT count(*) FROM tx") == [[1]]


def test_session_state_does_not_leak_between_requests(raw):
    raw.rows("CREATE TABLE own (a int); INSERT INTO own VALUES (7); SELECT 1")
    assert raw.query("SET search_path = pg_catalog").status_code == 200
    assert raw.query("SET statement_timeout = 1").status_code == 200
    assert raw.query("SELECT set_config('search_path', 'pg_catalog', false)").status_code == 200
    for _ in range(3):  # whichever pooled connection answers
        assert raw.rows("SELECT a, pg_sleep(0.01)::text FROM own") == [[7, ""]]


def test_bad_json_and_body_errors_are_400(raw):
    url = f"/workspaces/{raw.workspace}/tables/query"
    _err(raw.post(url, data=b"{not json", headers={"Content-Type": "application/json"}), 400)
    _err(raw.post(url, json=[1, 2]), 400)
    _err(raw.post(url, json={"params": [1]}), 400)
    _err(raw.post(url, json={"query": ""}), 400)
    _err(raw.post(url, json={"query": "SELECT 1", "timeout_ms": "soon"}), 400)
    _err(raw.post(url), 400)
    body = _err(raw.post(url, json={"query": "SELECT $1", "params": [[1, 2]]}), 400)
    assert "scalar" in body["error"]
    _err(raw.post(url, json={"query": "SELECT $1", "params": {"a": 1}}), 400)


def test_unknown_route_404_and_wrong_method_405(raw):
    _err(raw.get("/nope"), 404, "not_found")
    _err(raw.get("/workspaces/x"), 404)
    _err(raw.get("/_admin/nope"), 404)
    resp = raw.get(f"/workspaces/{raw.workspace}/tables/query")
    _err(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]
    _err(raw.put(f"/workspaces/{raw.workspace}/tables"), 405)
    _err(raw.get(f"/workspaces/{raw.workspace}/tables/some"), 405)
    _err(raw.delete("/_admin/stats"), 405)


def test_tables_list_create_drop(raw):
    base = f"/workspaces/{raw.workspace}/tables"
    assert raw.get(base).json() == {"tables": []}
    schema = {"id": "TEXT NOT NULL DEFAULT ''", "content": "BYTEA", "size_bytes": "BIGINT"}
    resp = raw.post(base, json={"table_name": "memory", "table_schema": schema})
    assert resp.status_code == 200, resp.text
    assert raw.post(base, json={"table_name": "sessions", "table_schema": {"m": "JSONB"}}).ok
    assert raw.get(base).json() == {
        "tables": [{"table_name": "memory"}, {"table_name": "sessions"}]
    }
    cols = raw.rows(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'memory' ORDER BY ordinal_position"
    )
    assert cols == [
        ["id", "text", "NO"],
        ["content", "bytea", "YES"],
        ["size_bytes", "bigint", "YES"],
    ]
    assert raw.rows(
        "SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
        "WHERE c.oid = 'memory'::regclass"
    ) == [["deeplake"]]
    dup = _err(raw.post(base, json={"table_name": "memory", "table_schema": {"a": "TEXT"}}), 409)
    assert "already exists" in dup["error"]
    assert raw.delete(f"{base}/memory").status_code == 200
    _err(raw.delete(f"{base}/memory"), 404, "not_found")
    assert raw.get(base).json() == {"tables": [{"table_name": "sessions"}]}


def test_table_named_query_can_be_dropped(raw):
    base = f"/workspaces/{raw.workspace}/tables"
    assert raw.post(base, json={"table_name": "query", "table_schema": {"a": "INT"}}).ok
    assert raw.delete(f"{base}/query").status_code == 200
    assert raw.get(base).json() == {"tables": []}


def test_create_table_validates_input(raw):
    base = f"/workspaces/{raw.workspace}/tables"
    _err(raw.post(base, json={"table_schema": {"a": "TEXT"}}), 400)
    _err(raw.post(base, json={"table_name": "x", "table_schema": ["a"]}), 400)
    _err(
        raw.post(base, json={"table_name": "x", "table_schema": {"a": "TEXT); DROP TABLE y; --"}}),
        400,
    )
    _err(raw.post(base, json={"table_name": "x" * 64, "table_schema": {"a": "TEXT"}}), 400)
    _err(
        raw.post(base, json={"table_name": "x", "table_schema": {"a": "NOSUCHTYPE"}}), 400, "42704"
    )
    assert raw.get(base).json() == {"tables": []}


def test_workspace_names_with_special_characters(raw):
    ws = "My Workspace/ü"
    quoted = "My%20Workspace%2F%C3%BC"
    resp = raw.session.post(
        raw.url(f"/workspaces/{quoted}/tables"), json={"table_name": "t", "table_schema": {}}
    )
    assert resp.status_code == 200, resp.text
    assert raw.get(f"/workspaces/{quoted}/tables").json() == {"tables": [{"table_name": "t"}]}
    assert raw.get(f"/workspaces/{raw.workspace}/tables").json() == {"tables": []}
    resp = raw.session.post(
        raw.url(f"/workspaces/{quoted}/tables/query"),
        json={"query": "SELECT current_schema(), current_user"},
    )
    schema, role = resp.json()["rows"][0]
    assert schema == ws  # the schema is named exactly after the workspace
    assert role == workspace_role(raw.srv.org, ws)
    assert len(role) <= 63 and role.startswith("ws_local_my_workspace_")


def test_admin_stats_and_reset(srv, raw):
    raw.rows("SELECT 1")
    _err(raw.query("SELECT nope"), 400)
    raw.get("/nope")
    stats = raw.get("/_admin/stats").json()
    assert stats["requests"] == 3
    assert stats["admitted"] == 2
    assert stats["status_counts"] == {"200": 1, "400": 1, "404": 1}
    assert stats["queries_executed"] == 2
    assert stats["inflight"] == 0 and stats["inflight_peak"] == 1
    assert stats["connections_opened"] >= 1
    assert stats["cpu_seconds"] >= 0 and stats["uptime_s"] > 0
    assert set(stats["injected"]) == {
        "capacity_503",
        "rate_429",
        "error_429",
        "error_503",
        "error_500",
        "error_502",
        "error_504",
        "reset",
        "commit_502",
        "commit_drop",
        "pattern",
        "error_402",
        "auth_html_401",
        "auth_html_403",
        "slow",
        "read_lag",
        "coalesce",
        "alter_window",
    }
    assert not any(stats["injected"].values())
    assert stats["dialect"] == "deeplake"
    pool = stats["db_pool"]
    assert pool["size"] == 150 and 1 <= pool["open"] <= 150 and pool["busy"] == 0
    assert pool["busy_peak"] >= 1 and pool["pending_commits"]["pending"] == 0
    reset = raw.post("/_admin/stats/reset").json()
    assert reset["requests"] == 0 and reset["status_counts"] == {}
    assert srv.stats()["requests"] == 0  # admin calls are not counted


def test_admin_stats_count_client_and_content_type_headers(srv, raw):
    raw.query("SELECT 1", headers={"X-Deeplake-Client": "probe/1"})
    raw.query("SELECT 1", headers={"X-Deeplake-Client": "probe/1"})
    raw.get(f"/workspaces/{raw.workspace}/tables", headers={"Content-Type": "text/plain"})
    stats = srv.stats()
    assert stats["clients"] == {"probe/1": 2}  # requests without the header are not counted
    assert stats["content_types"] == {"application/json": 2, "text/plain": 1}
    assert srv.reset_stats()["clients"] == {}


def test_admin_faults_get_put(srv, raw):
    cfg = raw.get("/_admin/faults").json()
    assert cfg["profile"] == "none" and cfg["seed"] == 0
    new = raw.put("/_admin/faults", json={"profile": "flaky", "seed": 5, "p_500": 0.2}).json()
    assert new["profile"] == "flaky" and new["seed"] == 5
    assert new["p_500"] == 0.2 and new["p_502"] == 0.01
    # overrides without a profile apply on top of the current settings, seed kept
    new = raw.put("/_admin/faults", json={"latency_fixed_ms": 0}).json()
    assert new["p_500"] == 0.2 and new["seed"] == 5 and new["latency_fixed_ms"] == 0
    _err(raw.put("/_admin/faults", json={"profile": "nope"}), 400)
    _err(raw.put("/_admin/faults", json={"p_500": 2}), 400)
    _err(raw.put("/_admin/faults", json={"bogus": 1}), 400)
    _err(raw.put("/_admin/faults", data=b"[", headers={"Content-Type": "application/json"}), 400)
    assert raw.get("/_admin/faults").json() == new


@pytest.mark.parametrize("path", ["/_admin/stats", "/_admin/faults"])
def test_admin_requires_auth(srv, path):
    import requests

    resp = requests.get(srv.url + path, timeout=30)
    assert resp.status_code == 401
    assert json.loads(resp.text)["code"] == "unauthorized"


def test_workspace_ids_are_quoted_and_refused_only_when_postgresql_cannot_hold_them(raw):
    def schema_of(ws):
        quoted = requests.utils.quote(ws, safe="")
        return raw.session.post(
            raw.url(f"/workspaces/{quoted}/tables/query"), json={"query": "SELECT current_schema()"}
        )

    for ws in ("public", 'we"ird ws', "UPPER", "a" * 63, "é" * 31):
        resp = schema_of(ws)
        assert resp.status_code == 200 and resp.json()["rows"] == [[ws]], (ws, resp.text)
    for ws in ("pg_mine", "information_schema", "deeplake", "a" * 64, "é" * 32):
        body = _err(schema_of(ws), 400, "invalid_workspace")
        assert "workspace id" in body["error"]
