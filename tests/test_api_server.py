"""DeeplakeApi against the real local server: bounds, pooling, retries, ambiguous writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gevent
import pytest

from deeplake_sdk import (
    AmbiguousWriteError,
    AuthError,
    DeeplakeApi,
    NetworkError,
    QueryError,
    RetryPolicy,
    ServerError,
    TableLayoutError,
    Timeout,
)

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(retries=3, backoff_base=0.02, backoff_max=0.2)


@pytest.fixture
def make_api(srv, workspace):
    def make(**kwargs):
        kwargs.setdefault("retries", FAST)
        token = kwargs.pop("token", srv.token)
        org = kwargs.pop("org", srv.org)
        return DeeplakeApi(token, org, workspace, srv.url, **kwargs)

    return make


def fresh_endpoint(api):
    """Drop pooled connections and peaks left by earlier tests sharing the endpoint."""
    api.endpoint.close()
    api.endpoint.limiter.reset_peak()


def client_connections(stats):
    """Connections opened by clients: the server also counts the one of the stats call."""
    return stats["connections_opened"] - 1


def make_table(api, name="t"):
    api.query(f'CREATE TABLE IF NOT EXISTS "{name}" (id TEXT, n BIGINT) USING deeplake')


def test_thousand_queries_fifty_greenlets_stay_within_five(srv, make_api):
    api = make_api(max_concurrency=5)
    fresh_endpoint(api)
    srv.set_faults(latency_fixed_ms=2)
    srv.reset_stats()
    results = []

    def worker(w):
        for i in range(20):
            results.append(api.query("SELECT $1::int AS v", [w * 100 + i])[0]["v"])

    gevent.joinall([gevent.spawn(worker, w) for w in range(50)], raise_error=True)
    stats = srv.stats()
    assert sorted(results) == sorted(w * 100 + i for w in range(50) for i in range(20))
    assert stats["requests"] == 1000
    assert 1 <= client_connections(stats) <= 5
    assert stats["inflight_peak"] == 5
    assert api.endpoint.limiter.peak == 5 and api.endpoint.limiter.in_flight == 0


WAVES = textwrap.dedent(
    """
    import sys
    if sys.argv[1] == "patched":
        from gevent import monkey
        monkey.patch_all()
    import json, time
    from deeplake_sdk import DeeplakeApi
    url, token, org, ws = sys.argv[2:6]
    api = DeeplakeApi(token, org, ws, url, max_concurrency=5)
    started = time.perf_counter()
    rows = api.query_many([("SELECT $1::int AS i", [i]) for i in range(20)])
    wall = time.perf_counter() - started
    print(json.dumps({"wall": wall, "values": [r[0]["i"] for r in rows],
                      "peak": api.endpoint.limiter.peak}))
    """
)


@pytest.mark.parametrize("mode", ["patched", "unpatched"])
def test_query_many_runs_five_at_a_time(srv, workspace, mode):
    srv.set_faults(latency_fixed_ms=200)
    srv.reset_stats()
    out = subprocess.run(
        [sys.executable, "-c", WAVES, mode, srv.url, srv.token, srv.org, workspace],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["values"] == list(range(20))
    stats = srv.stats()
    assert stats["requests"] == 20
    assert stats["inflight_peak"] == 5
    assert report["peak"] == 5
    assert client_connections(stats) <= 5


def test_flaky_profile_no_error_reaches_the_caller(srv, make_api):
    # 50 callers race, so which request meets which fault changes from run to run (the test
    # below fixes the order and keeps the default budget); 5 retries keep the chance that one
    # of 2,000 calls meets 6 faults in a row (p=7%) under 1e-3.
    api = make_api(retries=RetryPolicy(retries=5, backoff_base=0.02, backoff_max=0.2))
    make_table(api)
    srv.set_faults("flaky", seed=1234)
    srv.reset_stats()
    inserted = []

    def worker(w):
        for i in range(40):
            if i % 4 == 0:
                inserted.append(api.insert_row("t", {"n": w * 1000 + i}))
            else:
                assert api.query("SELECT $1::int AS v", [i]) == [{"v": i}]

    gevent.joinall([gevent.spawn(worker, w) for w in range(50)], raise_error=True)
    stats = srv.stats()
    assert sum(stats["injected"].values()) > 50  # faults did happen
    srv.set_faults("none")
    (row,) = api.query("SELECT COUNT(*) AS c, COUNT(DISTINCT id) AS d FROM t")
    assert row == {"c": 500, "d": 500} and len(set(inserted)) == 500


def test_flaky_profile_at_the_default_retry_budget(srv, make_api):
    """2,000 calls in one sequence at the default 3 retries: the fixed seed fixes the outcome.

    One caller makes the request order, and so the fault each request meets, the same on every
    run; only the backoff sleeps are shortened (Retry-After 0, 20 ms base), never the retry count.
    """
    assert FAST.retries == RetryPolicy().retries == 3
    api = make_api()
    make_table(api, "seq")
    srv.set_faults("flaky", seed=1234, retry_after_s=0)
    srv.reset_stats()
    inserted = []
    for i in range(2000):
        if i % 4 == 0:
            inserted.append(api.insert_row("seq", {"n": i}))
        else:
            assert api.query("SELECT $1::int AS v", [i]) == [{"v": i}]
    injected = srv.stats()["injected"]
    assert sum(injected.values()) > 100  # about 7% of 2,000+ requests met a fault
    assert all(injected[kind] > 0 for kind in ("reset", "commit_502", "commit_drop", "error_429"))
    srv.set_faults("none")
    (row,) = api.query("SELECT COUNT(*) AS c, COUNT(DISTINCT id) AS d FROM seq")
    assert row == {"c": 500, "d": 500} and len(set(inserted)) == 500


def test_commit_then_fail_inserts_are_exactly_once(srv, make_api):
    # 30% of all requests, confirm checks included, commit and lose their answer: this tests
    # exactness, not the retry budget, so 6 retries keep the chance that one of the ~150
    # checks meets 7 lost answers in a row under 1e-3.
    api = make_api(retries=RetryPolicy(retries=6, backoff_base=0.01, backoff_max=0.05))
    make_table(api)
    srv.set_faults(p_commit_fail=0.3, seed=99)
    srv.reset_stats()
    ids = api.query_many([], idempotent=True)  # no-op, keeps the API honest about empty input
    assert ids == []
    jobs = [gevent.spawn(api.insert_row, "t", {"n": i}) for i in range(500)]
    gevent.joinall(jobs, raise_error=True)
    stats = srv.stats()
    assert stats["injected"]["commit_502"] + stats["injected"]["commit_drop"] > 100
    srv.set_faults("none")
    (row,) = api.query(
        "SELECT COUNT(*) AS c, COUNT(DISTINCT id) AS d, COUNT(DISTINCT n) AS n FROM t"
    )
    assert row == {"c": 500, "d": 500, "n": 500}


def test_plain_insert_under_commit_then_fail_is_not_resent(srv, make_api):
    api = make_api()
    make_table(api)
    srv.set_faults(p_commit_fail=1.0, seed=1)
    srv.reset_stats()
    with pytest.raises(AmbiguousWriteError, match="confirm="):
        api.execute("INSERT INTO t (id, n) VALUES ('a', 1)")
    assert srv.stats()["requests"] == 1
    # A 502 before execution looks the same to the client; with a confirm check it learns
    # each time that the write did not apply, so re-sending is safe ...
    checks = []

    def confirm():
        checks.append(1)
        return bool(api.query("SELECT 1 FROM t WHERE id = 'b'"))

    srv.set_faults("none", fail_pattern="^INSERT", fail_status=502)
    with pytest.raises(ServerError):
        api.execute("INSERT INTO t (id, n) VALUES ('b', 2)", confirm=confirm)
    assert len(checks) == 4  # before each of the 3 re-sends and after the last failure
    srv.set_faults("none")
    assert api.query("SELECT id FROM t ORDER BY id") == [{"id": "a"}]
    # ... whereas after a commit-then-fail it learns that it did apply, and stops
    srv.set_faults(p_commit_fail=1.0, seed=2)

    def heal_then_confirm():
        srv.set_faults("none")  # so that the check's own read is not failed after commit
        return bool(api.query("SELECT 1 FROM t WHERE id = 'c'"))

    srv.reset_stats()
    result = api.execute("INSERT INTO t (id, n) VALUES ('c', 3)", confirm=heal_then_confirm)
    assert result.confirmed
    assert srv.stats()["requests"] == 2  # the INSERT once, the check once
    srv.set_faults("none")
    assert api.query("SELECT id FROM t ORDER BY id") == [{"id": "a"}, {"id": "c"}]


def test_4xx_are_raised_at_once_with_the_server_message(srv, make_api):
    api = make_api()
    with pytest.raises(QueryError) as info:
        api.query("SELEC 1")
    assert "syntax error" in info.value.message and info.value.status == 400
    assert srv.stats()["requests"] == 1
    srv.reset_stats()
    with pytest.raises(AuthError) as info:
        make_api(token="wrong-token").query("SELECT 1")
    assert info.value.status == 401
    assert srv.stats()["requests"] == 1
    srv.reset_stats()
    with pytest.raises(AuthError) as info:
        make_api(org="someone-else").query("SELECT 1")
    assert info.value.status == 403
    assert srv.stats()["requests"] == 1


def test_server_that_never_answers_fails_within_timeout_and_frees_the_slot(srv, make_api):
    api = make_api(
        max_concurrency=1,
        timeout=Timeout(statement=0.2, margin=0.1),
        retries=RetryPolicy(retries=1, backoff_base=0.05, jitter=0.0),
    )
    srv.set_faults(latency_fixed_ms=800)
    started = time.monotonic()
    with pytest.raises(NetworkError, match="no answer"):
        api.query("SELECT 1")
    assert time.monotonic() - started < 1.2  # two 0.3 s attempts and a 0.05 s sleep
    assert api.endpoint.limiter.in_flight == 0
    srv.set_faults("none")
    assert api.query("SELECT 2 AS x") == [{"x": 2}]
    deadline = time.monotonic() + 5
    while srv.stats()["inflight"] and time.monotonic() < deadline:
        time.sleep(0.05)


def test_retry_after_is_honoured_and_backoff_holds_no_slot(srv, make_api):
    api = make_api(max_concurrency=1, retries=RetryPolicy(retries=1, backoff_base=0.01))
    fresh_endpoint(api)
    srv.set_faults(fail_pattern="^SELECT 'limited'", fail_status=429, retry_after_s=1)
    order = []

    def limited():
        try:
            api.query("SELECT 'limited'")
        except Exception as exc:
            order.append(("limited-failed", type(exc).__name__))

    def other():
        gevent.sleep(0.1)  # start while the first call sleeps in its backoff
        api.query("SELECT 'other'")
        order.append(("other-done", api.endpoint.limiter.in_flight))

    gevent.joinall([gevent.spawn(limited), gevent.spawn(other)], raise_error=True)
    events = [e for e in api.retry_events if e.status == 429]
    assert len(events) == 1 and events[0].retry_after == 1.0 and events[0].delay >= 1.0
    # the other call finished while the limited one was still retrying: the slot (limit 1)
    # was free during the backoff sleep
    assert order[0] == ("other-done", 0)
    assert order[1] == ("limited-failed", "RateLimitError")


def test_tables_lifecycle(srv, make_api):
    api = make_api()
    assert api.list_tables() == []
    api.ensure_tables()
    assert sorted(api.list_tables()) == ["memory", "sessions"]
    srv.reset_stats()
    api.ensure_table()
    api.ensure_sessions_table()
    assert srv.stats()["requests"] == 0  # remembered for the process
    assert api.create_table("x", {"id": "TEXT"}) is True
    assert api.create_table("x", {"id": "TEXT"}) is False
    api.create_index("memory", "summary", "bm25")
    api.create_index("memory", "summary", "bm25")
    api.sync_table("memory")
    api.drop_table("x")
    api.drop_table("x", missing_ok=True)
    with pytest.raises(QueryError):
        api.drop_table("x")


def test_migration_adds_only_missing_columns(srv, make_api):
    api = make_api()
    api.query('CREATE TABLE "memory" (id TEXT, path TEXT) USING deeplake')
    api.query("INSERT INTO memory (id, path) VALUES ('1', '/a')")
    srv.reset_stats()
    with pytest.raises(TableLayoutError) as info:
        api.ensure_table()  # never altered unless asked: size_bytes and a text column lack
    assert info.value.missing == ["size_bytes", "summary|content"]
    assert "migrate=True" in str(info.value) and srv.stats()["requests"] == 1
    srv.reset_stats()
    layout = api.ensure_table(migrate=True)
    stats = srv.stats()
    assert stats["requests"] == 1 + 12  # one probe, an ALTER per column but content, no retries
    assert not layout.binary_ok and layout.has("summary_embedding")
    rows = api.query("SELECT id, path, mime_type, size_bytes, summary FROM memory")
    assert rows == [
        {
            "id": "1",
            "path": "/a",
            "mime_type": "text/plain",
            "size_bytes": 0,
            "summary": "",
        }
    ]
