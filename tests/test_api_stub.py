"""DeeplakeApi decision logic against the scripted stub of test_transport.py.

Deterministic checks of what is sent, how often, and what is raised; the same behaviour under
real fault injection is covered against the local server in test_api_*.py.
"""

from __future__ import annotations

import json
import logging

import pytest
from test_transport import Stub

from deeplake_sdk import DeeplakeApi, RetryPolicy
from deeplake_sdk.errors import AmbiguousWriteError, AuthError, QueryError, ServerError
from deeplake_sdk.transport import close_endpoints

FAST = RetryPolicy(retries=3, backoff_base=0.01, backoff_max=0.05, jitter=0.0)


@pytest.fixture
def stub():
    s = Stub()
    yield s
    s.close()
    close_endpoints()


@pytest.fixture
def api(stub):
    with DeeplakeApi("tok", "org-1", "ws1", stub.url, retries=FAST) as client:
        yield client


def bodies(stub):
    return [json.loads(b) if b else None for _, _, b in stub.requests]


def ok(payload=None):
    return ("json", 200, {}, payload if payload is not None else {})


def fail(status, message="boom", headers=None):
    return ("json", status, headers or {}, {"error": message, "request_id": "rq"})


def sequence(*actions):
    queue = list(actions)
    return lambda handler: queue.pop(0) if len(queue) > 1 else queue[0]


def test_wire_format(api, stub):
    stub.script = sequence(ok({"columns": ["a", "b"], "rows": [[1, "x"], [2, None]],
                               "row_count": 2}))
    assert api.query("SELECT a, b FROM t WHERE c = $1", ["v"]) == [
        {"a": 1, "b": "x"}, {"a": 2, "b": None}]
    path, headers, raw = stub.requests[-1]
    assert path == "/workspaces/ws1/tables/query"
    assert headers["Authorization"] == "Bearer tok"
    assert headers["X-Activeloop-Org-Id"] == "org-1"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Deeplake-Client"].startswith("deeplake-sdk/")
    assert json.loads(raw) == {"query": "SELECT a, b FROM t WHERE c = $1", "params": ["v"],
                               "timeout_ms": 60000}
    api.query("SELECT 1", timeout=2.5)
    assert bodies(stub)[-1] == {"query": "SELECT 1", "timeout_ms": 2500}  # no empty params


def test_null_rows_and_ddl_answers(api, stub):
    stub.script = sequence(ok({"columns": [], "rows": None}))
    assert api.query("CREATE TABLE x (a int)") == []
    stub.script = sequence(ok({}))
    result = api.execute("DELETE FROM x")
    assert result.rows == [] and result.row_count == 0 and not result.confirmed


def test_4xx_raised_at_once(api, stub):
    stub.script = sequence(fail(400, 'syntax error at or near "SELEC"'))
    with pytest.raises(QueryError) as info:
        api.query("SELEC 1")
    assert info.value.message == 'syntax error at or near "SELEC"'
    assert info.value.request_id == "rq"
    stub.script = sequence(fail(401, "invalid token"))
    with pytest.raises(AuthError, match="invalid token"):
        api.query("SELECT 1")
    assert len(stub.requests) == 2


def test_reads_are_retried_on_5xx(api, stub):
    stub.script = sequence(fail(502), fail(500), ok({"columns": ["n"], "rows": [[1]]}))
    assert api.query("SELECT 1 AS n") == [{"n": 1}]
    assert len(stub.requests) == 3
    assert [e.status for e in api.retry_events] == [502, 500]


def test_write_not_resent_after_ambiguous_failure(api, stub):
    stub.script = sequence(fail(502), ok())
    with pytest.raises(AmbiguousWriteError, match="confirm=") as info:
        api.execute("INSERT INTO t (a) VALUES (1)")
    assert isinstance(info.value.__cause__, ServerError)
    assert len(stub.requests) == 1


def test_write_resent_when_idempotent(api, stub):
    stub.script = sequence(fail(504), ok())
    api.execute("INSERT INTO t (a) VALUES (1)", idempotent=True)
    assert len(stub.requests) == 2


def test_write_retried_after_safe_failures(api, stub):
    stub.script = sequence(fail(429), fail(503), ok())
    api.execute("INSERT INTO t (a) VALUES (1)")
    assert len(stub.requests) == 3


def test_confirm_true_stops_resend(api, stub):
    calls = []
    stub.script = sequence(fail(502), ok())

    def confirm():
        calls.append(1)
        return True

    result = api.execute("UPDATE t SET a = 2", confirm=confirm)
    assert result.confirmed and calls == [1]
    assert len(stub.requests) == 1


def test_confirm_false_resends(api, stub):
    stub.script = sequence(fail(500), ok({"columns": [], "rows": [], "row_count": 1}))
    result = api.execute("UPDATE t SET a = 2", confirm=lambda: False)
    assert not result.confirmed and result.row_count == 1
    assert len(stub.requests) == 2


def test_confirm_runs_after_the_last_ambiguous_failure(api, stub):
    stub.script = sequence(fail(502))
    checks = []
    result = api.execute("UPDATE t SET a = 2", confirm=lambda: checks.append(1) or len(checks) > 3)
    # 4 attempts, confirm before attempts 2..4 (False) and once more after the last (True)
    assert result.confirmed and len(checks) == 4 and len(stub.requests) == 4


def test_confirm_failure_is_ambiguous(api, stub):
    stub.script = sequence(fail(502), ok())

    def confirm():
        raise QueryError(400, "no such table")

    with pytest.raises(AmbiguousWriteError, match="confirm check failed"):
        api.execute("UPDATE t SET a = 2", confirm=confirm)
    assert len(stub.requests) == 1


def test_retry_after_is_honoured(api, stub, caplog):
    stub.script = sequence(fail(429, "slow down", {"Retry-After": "0.3"}), ok())
    with caplog.at_level(logging.INFO, logger="deeplake_sdk.retry"):
        api.query("SELECT 1")
    (event,) = api.retry_events
    assert event.retry_after == 0.3 and event.delay >= 0.3
    assert "HTTP 429: slow down" in caplog.text


def test_already_exists_500_is_fast(api, stub):
    stub.script = sequence(fail(500, 'column "summary" of relation "memory" already exists'))
    api.create_index("memory", "summary")  # fine, not retried
    assert len(stub.requests) == 1 and not api.retry_events


def test_query_many_order_and_errors(api, stub):
    def script(handler):
        sql = json.loads(stub.requests[-1][2])["query"]
        if "bad" in sql:
            return fail(400, f"rejected {sql}")
        return ok({"columns": ["q"], "rows": [[sql]]})

    stub.script = script
    sqls = [f"SELECT '{i}'" for i in range(12)]
    assert api.query_many(sqls) == [[{"q": s}] for s in sqls]
    mixed = ["SELECT 1", ("SELECT 'bad1'", None), "SELECT 2", "SELECT 'bad2'"]
    with pytest.raises(QueryError, match="bad1") as info:
        api.query_many(mixed)
    assert any("2 of 4" in n for n in getattr(info.value, "__notes__", []))
    out = api.query_many(mixed, return_exceptions=True)
    assert isinstance(out[1], QueryError) and out[0] == [{"q": "SELECT 1"}]
    assert api.query_many([]) == []


def test_list_tables_and_drop(api, stub):
    tables = {"tables": [{"table_name": "memory"}, {"table_name": "x"}]}
    stub.script = sequence(fail(503), ok(tables))
    assert api.list_tables() == ["memory", "x"]
    stub.script = sequence(fail(502), fail(404, "table x not found"))
    api.drop_table("x")  # the ambiguous first attempt did it
    stub.script = sequence(fail(404, "table y not found"))
    with pytest.raises(QueryError):
        api.drop_table("y")
    api.drop_table("y", missing_ok=True)


def test_ensure_table_probes_once_and_alters_missing(api, stub):
    existing = [["memory", c] for c in ("id", "path", "filename", "content", "author",
                                        "mime_type", "size_bytes", "project", "description",
                                        "creation_date", "last_update_date")]  # no summary

    def script(handler):
        sql = json.loads(stub.requests[-1][2])["query"]
        if "information_schema" in sql:
            return ok({"columns": ["table_name", "column_name"], "rows": existing})
        return ok()

    stub.script = script
    api.ensure_table("memory")
    sent = [b["query"] for b in bodies(stub)]
    assert len(sent) == 2 and sent[1].startswith('ALTER TABLE "memory" ADD COLUMN "summary"')
    api.ensure_table("memory")
    DeeplakeApi("tok", "org-1", "ws1", stub.url).ensure_table("memory")
    assert len(stub.requests) == 2  # remembered for the process


def test_closed_client_refuses(api):
    api.close()
    with pytest.raises(Exception, match="closed"):
        api.query("SELECT 1")


def test_token_not_logged(api, stub, caplog):
    stub.script = sequence(fail(500), ok())
    with caplog.at_level(logging.DEBUG):
        api.query("SELECT 1")
    assert "tok" not in caplog.text.replace("token", "")
    assert "tok" not in repr(api)
