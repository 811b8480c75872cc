"""The service's faults (402, gateway HTML auth errors, slow queries, read lag, the ALTER
window, coalesced UPDATEs), each observed by a raw HTTP client and counted in the stats.

Windows that decide an outcome are set far wider than any stall (60 s) so that the outcomes
do not depend on timing; the tests that show a short window closing by itself poll for it.
"""

from __future__ import annotations

import time

import pytest
import requests

from deeplake_sdk.server import local
from deeplake_sdk.server.app import INSUFFICIENT_BALANCE
from deeplake_sdk.server.faults import FaultConfig, FaultInjector

ALTER_MESSAGE = "Failed to insert tuple: vector::at out of range"


def _count(raw, table="t"):
    return raw.rows(f"SELECT count(*) FROM {table}")[0][0]


def _poll(fn, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@pytest.fixture
def table(raw):
    raw.rows("CREATE TABLE t (id text, n int); SELECT 1")
    return "t"


def test_402_insufficient_balance_not_executed(srv, raw, table):
    srv.set_faults(p_402=1.0)
    resp = raw.query("INSERT INTO t VALUES ('a', 1)")
    assert resp.status_code == 402
    assert resp.json() == INSUFFICIENT_BALANCE
    assert resp.json() == {"balance_cents": 0, "error": "insufficient balance, please top up"}
    assert srv.stats()["injected"]["error_402"] == 1
    srv.set_faults(profile="none")
    assert _count(raw) == 0


def test_auth_errors_with_an_html_body_are_transient_and_not_executed(srv, raw, table):
    srv.set_faults(p_auth_html=0.5, seed=4)
    expected = FaultInjector(FaultConfig(p_auth_html=0.5, seed=4))
    statuses = []
    for i in range(30):
        resp = raw.query("INSERT INTO t VALUES ($1, $2)", str(i), i)
        want = expected.decide("INSERT").status or 200
        assert resp.status_code == want
        if resp.status_code != 200:
            assert resp.headers["Content-Type"] == "text/html"
            assert resp.text.startswith("<html>") and "nginx" in resp.text
            assert f"<title>{resp.status_code} " in resp.text
        statuses.append(resp.status_code)
    assert {401, 403, 200} <= set(statuses)  # transient: other requests go through
    injected = srv.stats()["injected"]
    assert injected["auth_html_401"] == statuses.count(401)
    assert injected["auth_html_403"] == statuses.count(403)
    srv.set_faults(profile="none")
    assert _count(raw) == statuses.count(200)


def test_slow_queries(srv, raw):
    srv.set_faults(p_slow=0.5, slow_query_ms=300, seed=2)
    expected = FaultInjector(FaultConfig(p_slow=0.5, slow_query_ms=300, seed=2))
    slow = 0
    for _ in range(8):
        is_slow = expected.decide("SELECT 1").slow_s > 0
        started = time.monotonic()
        assert raw.rows("SELECT 1") == [[1]]
        if is_slow:
            slow += 1
            assert time.monotonic() - started >= 0.3  # it waited at least that long
    assert 0 < slow < 8
    assert srv.stats()["injected"]["slow"] == slow


# ---------------------------------------------------------------- read lag
def test_read_lag_write_answered_before_it_is_visible(srv, raw, table):
    srv.set_faults(read_lag_ms=60_000)
    for i in range(3):
        resp = raw.query("INSERT INTO t VALUES ($1, $2)", str(i), i)
        assert resp.status_code == 200 and resp.json()["row_count"] == 1
    upd = raw.query("UPDATE t SET n = 0")
    assert upd.status_code == 200 and upd.json()["row_count"] == 0  # it sees no row yet
    assert _count(raw) == 0  # acknowledged, not visible to other requests
    assert raw.rows("SELECT count(*) FROM t; SELECT 1") == [[1]]  # reads are not held back
    stats = srv.stats()
    assert stats["injected"]["read_lag"] == 4
    assert stats["db_pool"]["pending_commits"]["pending"] == 4
    assert stats["db_pool"]["busy"] >= 4  # their connections stay checked out
    srv.set_faults(read_lag_ms=0)  # changing the faults commits what is pending
    assert _count(raw) == 3
    assert srv.stats()["db_pool"]["pending_commits"]["pending"] == 0


def test_read_lag_commits_by_itself(srv, raw, table):
    srv.set_faults(read_lag_ms=100)
    assert raw.query("INSERT INTO t VALUES ('a', 1)").status_code == 200
    assert _poll(lambda: _count(raw) == 1), "the write never became visible"
    assert srv.stats()["db_pool"]["pending_commits"]["pending"] == 0


def test_read_lag_applies_to_writes_only(srv, raw, table):
    srv.set_faults(read_lag_ms=60_000)
    raw.rows("ALTER TABLE t ADD COLUMN x int; CREATE TABLE u (a int); SELECT 1")  # DDL: now
    assert raw.query("SELECT n FROM t").status_code == 200
    assert raw.rows("SELECT count(*) FROM information_schema.columns WHERE column_name = 'x'")
    assert srv.stats()["injected"]["read_lag"] == 0


def test_read_lag_never_deadlocks_a_small_pool(pg_dsn, workspace):
    with local(dsn=pg_dsn, read_lag_ms=60_000, extra_args=["--pool-size", "3"]) as small:
        s = requests.Session()
        s.headers.update(small.headers)
        url = f"{small.url}/workspaces/{workspace}/tables/query"

        def q(sql, *params):
            body = {"query": sql, "params": list(params)} if params else {"query": sql}
            return s.post(url, json=body, timeout=30)

        assert q("CREATE TABLE t (n int)").status_code == 200
        for i in range(10):  # each write holds a connection; the pool has 3
            assert q("INSERT INTO t VALUES ($1)", i).status_code == 200
        stats = small.stats()["db_pool"]
        assert stats["size"] == 3 and stats["busy_peak"] <= 3
        # the oldest pending writes were committed early to make room
        assert stats["pending_commits"]["committed_early"] >= 10 - 3
        assert stats["exhausted"] >= 7
        visible = q("SELECT count(*) FROM t").json()["rows"][0][0]
        assert 10 - 3 <= visible < 10
        s.close()


def test_pending_writes_commit_on_shutdown(pg_dsn, workspace):
    with local(dsn=pg_dsn, read_lag_ms=60_000) as lagging:
        url = f"{lagging.url}/workspaces/{workspace}/tables/query"

        def q(srv, sql):
            return requests.post(
                url.replace(lagging.url, srv.url),
                json={"query": sql},
                headers=srv.headers,
                timeout=30,
            )

        assert q(lagging, "CREATE TABLE t (n int)").status_code == 200
        for i in range(5):
            assert q(lagging, f"INSERT INTO t VALUES ({i})").status_code == 200
        assert q(lagging, "SELECT count(*) FROM t").json()["rows"] == [[0]]
        assert lagging.stop() == 0  # SIGTERM: pending writes commit before exit
        with local(dsn=pg_dsn) as again:
            assert q(again, "SELECT count(*) FROM t").json()["rows"] == [[5]]


def test_session_state_of_a_delayed_write_does_not_leak(srv, raw, table):
    srv.set_faults(read_lag_ms=60_000)
    write = "INSERT INTO t VALUES ('a', 1); SELECT set_config('search_path', 'pg_catalog', false)"
    assert raw.query(write).status_code == 200
    srv.set_faults(read_lag_ms=0)
    for _ in range(5):  # whichever pooled connection answers, its search_path is the workspace's
        assert raw.rows("SELECT count(*) FROM t, pg_sleep(0.01)") == [[1]]


def test_a_failed_delayed_commit_is_logged_and_counted(srv, raw):
    # a deferred constraint is checked at COMMIT: the only way a delayed commit can fail
    raw.rows("CREATE TABLE u (a int UNIQUE DEFERRABLE INITIALLY DEFERRED); SELECT 1")
    srv.set_faults(read_lag_ms=60_000)
    assert raw.query("INSERT INTO u VALUES (1)").status_code == 200
    assert raw.query("INSERT INTO u VALUES (1)").status_code == 200
    srv.set_faults(read_lag_ms=0)
    assert _count(raw, "u") == 1
    pending = srv.stats()["db_pool"]["pending_commits"]
    assert pending["commit_failed"] == 1 and pending["pending"] == 0
    assert "could not be committed" in srv.stderr_text()


# ---------------------------------------------------------------- the ALTER window
def test_alter_window_refuses_inserts_into_that_table(srv, raw, table):
    raw.rows("CREATE TABLE other (n int); SELECT 1")
    srv.set_faults(alter_window_s=60)
    assert raw.query('ALTER TABLE "t" ADD COLUMN "content" BYTEA').status_code == 200
    executed = srv.stats()["queries_executed"]
    for sql in ("INSERT INTO t (id, n) VALUES ('a', 1)", 'INSERT INTO "T" VALUES (1)'.lower()):
        resp = raw.query(sql)
        assert resp.status_code == 500, resp.text
        assert (resp.json()["error"], resp.json()["code"]) == (ALTER_MESSAGE, "QUERY_ERROR")
    assert srv.stats()["queries_executed"] == executed  # not executed
    assert raw.query("INSERT INTO other VALUES (1)").status_code == 200
    assert raw.query("UPDATE t SET n = 2").status_code == 200  # only INSERTs fail
    assert srv.stats()["injected"]["alter_window"] == 2
    srv.set_faults(alter_window_s=0)  # off: the window no longer applies
    assert raw.query("INSERT INTO t (id, n) VALUES ('a', 1)").status_code == 200


def test_alter_window_closes_by_itself(srv, raw, table):
    srv.set_faults(alter_window_s=0.2)
    assert raw.query("ALTER TABLE t ADD COLUMN x int").status_code == 200
    assert _poll(lambda: raw.query("INSERT INTO t (id) VALUES ('a')").status_code == 200)
    assert _count(raw) == 1


# ---------------------------------------------------------------- coalesced UPDATEs
def test_rapid_second_update_of_a_row_is_answered_but_dropped(srv, raw, table):
    raw.rows("INSERT INTO t VALUES ('a', 0), ('b', 0) RETURNING 1")
    srv.set_faults(p_coalesce=1.0, coalesce_window_ms=60_000)
    first = raw.query("UPDATE t SET n = 1 WHERE id = 'a'")
    assert first.status_code == 200 and first.json()["row_count"] == 1
    second = raw.query("UPDATE t SET n = n + 10 WHERE id = 'a' RETURNING n")
    assert second.status_code == 200
    assert second.json() == {"columns": ["n"], "rows": [[11]], "row_count": 1}  # as if applied
    other = raw.query("UPDATE t SET n = 5 WHERE id = 'b'")  # another row: applied
    assert other.json()["row_count"] == 1
    assert raw.rows("SELECT id, n FROM t ORDER BY id") == [["a", 1], ["b", 5]]
    assert srv.stats()["injected"]["coalesce"] == 1


def test_coalescing_follows_the_seed(srv, raw, table):
    raw.rows("INSERT INTO t VALUES ('a', 0) RETURNING 1")
    cfg = FaultConfig(p_coalesce=0.5, coalesce_window_ms=60_000, seed=8)
    srv.set_faults(p_coalesce=0.5, coalesce_window_ms=60_000, seed=8)
    expected = FaultInjector(cfg)
    value, dropped = 0, 0
    for i in range(1, 21):
        decision = expected.decide("UPDATE")
        assert raw.query("UPDATE t SET n = $1 WHERE id = 'a'", i).json()["row_count"] == 1
        if i > 1 and decision.coalesce:  # eligible (not the first) and drawn
            dropped += 1
        else:
            value = i
    assert 0 < dropped < 19
    assert raw.rows("SELECT n FROM t") == [[value]]
    assert srv.stats()["injected"]["coalesce"] == dropped


def test_coalescing_without_an_id_column_is_per_table(srv, raw):
    raw.rows("CREATE TABLE k (x int); INSERT INTO k VALUES (1), (2); SELECT 1")
    srv.set_faults(p_coalesce=1.0, coalesce_window_ms=60_000)
    assert raw.query("UPDATE k SET x = 10 WHERE x = 1").json()["row_count"] == 1
    assert raw.query("UPDATE k SET x = 20 WHERE x = 2").json()["row_count"] == 1  # dropped
    assert raw.rows("SELECT x FROM k ORDER BY x") == [[2], [10]]


def test_updates_are_not_coalesced_when_off(srv, raw, table):
    raw.rows("INSERT INTO t VALUES ('a', 0) RETURNING 1")
    for _ in range(5):
        raw.rows("UPDATE t SET n = n + 1 WHERE id = 'a' RETURNING n")
    assert raw.rows("SELECT n FROM t") == [[5]]
    assert srv.stats()["injected"]["coalesce"] == 0
