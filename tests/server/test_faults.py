"""Fault injection: config units, then every fault kind observed by a raw HTTP client."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from deeplake_sdk.server.faults import PROFILES, FaultConfig, FaultInjector
from deeplake_sdk.server.provision import org_database


# ---------------------------------------------------------------- pure units
def test_profiles_and_overrides():
    assert set(PROFILES) == {"none", "flaky", "beta", "seed", "service"}
    flaky = FaultConfig.from_profile("flaky", p_500=0.05, seed=3)
    assert flaky.p_500 == 0.05 and flaky.p_502 == 0.01 and flaky.seed == 3
    with pytest.raises(ValueError, match="faults="):  # local(profile=...) is a mistake
        FaultConfig.from_profile("none", profile="beta")
    beta = PROFILES["beta"]
    injected = beta.p_500 + beta.p_502 + beta.p_504 + beta.p_reset + beta.p_commit_fail
    assert injected <= 0.01 and beta.max_inflight > 0 and beta.rate_per_s > 0
    assert beta.latency_median_ms >= 10 and beta.latency_sigma > 0
    # beta is what the published benchmarks ran on: it must not move
    assert (beta.latency_median_ms, beta.latency_sigma, beta.max_inflight) == (25.0, 0.8, 32)
    assert (beta.rate_per_s, beta.burst, beta.p_500, beta.p_commit_fail) == (
        400.0,
        200,
        0.002,
        0.002,
    )
    assert (beta.read_lag_ms, beta.alter_window_s, beta.p_coalesce, beta.p_auth_html) == (
        0,
        0,
        0,
        0,
    )
    # service = beta + read lag (well under 1 s) + ALTER window + coalescing + auth errors
    service = PROFILES["service"]
    assert 100 <= service.read_lag_ms <= 300 and service.alter_window_s > 0
    assert 0 < service.p_coalesce <= 1 and 0 < service.p_auth_html <= 0.01
    same = {"read_lag_ms", "alter_window_s", "p_coalesce", "p_auth_html", "profile"}
    assert service.replace(**{f: getattr(beta, f) for f in same}) == beta
    with pytest.raises(ValueError, match="unknown fault profile"):
        FaultConfig.from_profile("nope")
    with pytest.raises(ValueError, match="probability"):
        FaultConfig(p_500=1.5)
    with pytest.raises(ValueError, match="add up"):
        FaultConfig(p_500=0.6, p_502=0.6)
    with pytest.raises(ValueError, match="unknown fault setting"):
        FaultConfig().replace(p_999=0.1)
    with pytest.raises(ValueError, match="regex"):
        FaultConfig(fail_pattern="(")
    assert FaultConfig().replace(max_inflight="7").max_inflight == 7
    with pytest.raises(ValueError, match="max_faults"):
        FaultConfig(max_faults=-1)
    with pytest.raises(ValueError, match="integer"):
        FaultConfig().replace(max_faults=1.5)
    with pytest.raises(ValueError, match="fail_message"):
        FaultConfig(fail_message=" ")
    assert FaultConfig().replace(fail_message=None, max_faults="2").max_faults == 2


def test_same_seed_same_sequence_and_rates():
    def run(seed):
        inj = FaultInjector(FaultConfig.from_profile("flaky", seed=seed))
        return [(d.kind, d.commit_fail) for d in (inj.decide("SELECT 1") for _ in range(20000))]

    a, b, c = run(11), run(11), run(12)
    assert a == b and a != c
    counts = Counter(kind or commit or "ok" for kind, commit in a)
    for kind in ("reset", "error_429", "error_503", "error_500", "error_502", "error_504"):
        assert 120 < counts[kind] < 290, (kind, counts)  # 1% of 20000 = 200
    assert 120 < counts["commit_502"] + counts["commit_drop"] < 290
    assert counts["commit_502"] > 40 and counts["commit_drop"] > 40


def test_latency_fixed_and_lognormal():
    inj = FaultInjector(FaultConfig(latency_fixed_ms=5, seed=1))
    assert {inj.decide().latency_s for _ in range(10)} == {0.005}
    inj.configure(FaultConfig(latency_median_ms=25, latency_sigma=0.8, seed=1))
    samples = [inj.decide().latency_s * 1000 for _ in range(4001)]
    assert 22 < statistics.median(samples) < 28
    assert max(samples) > 100  # long tail


def test_pattern_and_reset_sequence():
    inj = FaultInjector(FaultConfig(fail_pattern=r"\bsessions\b", fail_status=503, seed=1))
    assert inj.decide("SELECT deeplake_sync_table('sessions')").kind == "pattern"
    assert inj.decide("SELECT deeplake_sync_table('sessions')").status == 503
    assert inj.decide("SELECT 1").kind is None
    assert inj.decide(None).kind is None
    first = inj.decide().n
    inj.reset_sequence()
    assert inj.decide().n == 0 and first == 4


def test_max_faults_caps_faulted_requests():
    inj = FaultInjector(FaultConfig(p_502=1.0, max_faults=2, seed=1))
    assert [inj.decide("SELECT 1").kind for _ in range(4)] == ["error_502"] * 2 + [None] * 2
    inj.reset_sequence()  # a reset restarts the count
    assert [inj.decide().kind for _ in range(3)] == ["error_502", "error_502", None]
    inj.configure(FaultConfig(fail_pattern="^ALTER", fail_message="x already exists", seed=1))
    assert [inj.decide("ALTER t").message for _ in range(2)] == ["x already exists"] * 2
    inj.configure(FaultConfig(fail_pattern="^ALTER", max_faults=1, p_commit_fail=1.0, seed=1))
    first, second, third = (inj.decide(sql) for sql in ("SELECT 1", "ALTER t", "ALTER t"))
    assert first.commit_fail is not None and first.message is None  # a lost commit counts
    assert (second.kind, second.commit_fail, third.kind) == (None, None, None)
    # the cap keeps a seed's first faults where they were and drops the later ones
    flaky = FaultConfig.from_profile("flaky", seed=5)
    free, capped = FaultInjector(flaky), FaultInjector(flaky.replace(max_faults=3))

    def faults(inj):
        decisions = (inj.decide() for _ in range(500))
        return [(d.n, d.kind or d.commit_fail) for d in decisions if d.kind or d.commit_fail]

    all_faults = faults(free)
    assert len(all_faults) > 10 and faults(capped) == all_faults[:3]


def test_token_bucket_retry_after():
    inj = FaultInjector(FaultConfig(rate_per_s=0.5, burst=2, seed=1))
    assert inj.take_token("a") == 0 and inj.take_token("a") == 0
    wait = inj.take_token("a")
    assert wait in (1, 2)
    assert inj.take_token("b") == 0  # buckets are per org


# ---------------------------------------------------------------- over HTTP
class Raw:
    """One keep-alive http.client connection; reconnects after a reset."""

    def __init__(self, srv, workspace):
        u = urlsplit(srv.url)
        self.host, self.port = u.hostname, u.port
        self.headers = dict(srv.headers)
        self.path = f"/workspaces/{workspace}/tables/query"
        self.conn = None

    def query(self, sql, *params):
        body = {"query": sql}
        if params:
            body["params"] = list(params)
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            self.conn.request("POST", self.path, json.dumps(body), self.headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
            self.conn.close()
            self.conn = None
            return "reset", None, {}
        return resp.status, json.loads(data), dict(resp.getheaders())

    def close(self):
        if self.conn is not None:
            self.conn.close()


@pytest.fixture
def hc(srv, workspace, raw):
    raw.rows("CREATE TABLE t (n int); SELECT 1")
    client = Raw(srv, workspace)
    yield client
    client.close()


def _count(raw):
    return raw.rows("SELECT count(*) FROM t")[0][0]


@pytest.mark.parametrize(
    ("field", "status", "kind"),
    [
        ("p_429", 429, "error_429"),
        ("p_503", 503, "error_503"),
        ("p_500", 500, "error_500"),
        ("p_502", 502, "error_502"),
        ("p_504", 504, "error_504"),
    ],
)
def test_random_error_statuses_are_not_executed(srv, raw, hc, field, status, kind):
    srv.set_faults(**{field: 1.0})
    executed = srv.stats()["queries_executed"]
    got, body, headers = hc.query("INSERT INTO t VALUES (1)")
    assert got == status and body["code"] == kind and body["request_id"]
    if status in (429, 503):
        assert headers["Retry-After"] == "1"
    stats = srv.stats()
    assert stats["injected"][kind] == 1 and stats["queries_executed"] == executed
    srv.set_faults(profile="none")
    assert _count(raw) == 0


def test_reset_before_execution(srv, raw, hc):
    srv.set_faults(p_reset=1.0)
    assert hc.query("INSERT INTO t VALUES (1)")[0] == "reset"
    assert hc.query("INSERT INTO t VALUES (2)")[0] == "reset"
    srv.set_faults(profile="none")
    assert _count(raw) == 0
    stats = srv.stats()
    assert stats["injected"]["reset"] == 2
    assert stats["connections_opened"] >= 3  # the client had to reconnect


def test_commit_then_fail_commits(srv, raw, hc):
    srv.set_faults(p_commit_fail=1.0, seed=3)
    outcomes = [hc.query("INSERT INTO t VALUES ($1)", i)[0] for i in range(20)]
    assert set(outcomes) == {502, "reset"}
    srv.set_faults(profile="none")
    assert _count(raw) == 20  # every statement committed although no client saw a 200
    stats = srv.stats()["injected"]
    assert stats["commit_502"] == outcomes.count(502)
    assert stats["commit_drop"] == outcomes.count("reset")


def test_fail_pattern(srv, raw, hc):
    srv.set_faults(fail_pattern=r"\bsessions\b", fail_status=503)
    status, body, _ = hc.query("INSERT INTO t SELECT 1 FROM (SELECT 'sessions') AS sessions")
    assert status == 503 and body["code"] == "pattern"
    assert hc.query("INSERT INTO t VALUES (2)")[0] == 200
    srv.set_faults(profile="none")
    assert raw.rows("SELECT n FROM t") == [[2]]
    assert srv.stats()["injected"]["pattern"] == 1


def test_fail_message_and_max_faults(srv, raw, hc):
    message = 'relation "t_n_idx" already exists'
    srv.set_faults(fail_pattern="^CREATE INDEX", fail_message=message, max_faults=1)
    status, body, _ = hc.query("CREATE INDEX t_n_idx ON t (n)")
    assert (status, body["error"], body["code"]) == (500, message, "pattern")
    assert hc.query("CREATE INDEX t_n_idx ON t (n)")[0] == 200  # healed: it runs
    srv.set_faults(p_502=1.0, max_faults=2)
    outcomes = [hc.query("INSERT INTO t VALUES ($1)", i)[0] for i in range(4)]
    assert outcomes == [502, 502, 200, 200]
    srv.reset_stats()  # restarts the count
    assert hc.query("INSERT INTO t VALUES (9)")[0] == 502
    srv.set_faults(profile="none")
    assert raw.rows("SELECT n FROM t ORDER BY n") == [[2], [3]]
    assert srv.stats()["injected"]["error_502"] == 1
    for bad in ({"max_faults": -1}, {"fail_message": ""}):
        assert raw.put("/_admin/faults", json=bad).status_code == 400


def test_capacity_503(srv, raw, hc, pg_dsn):
    srv.set_faults(max_inflight=1, retry_after_s=3)
    # advisory locks are per database: take it in the org's database
    org_dsn = make_conninfo(pg_dsn, dbname=org_database(srv.org))
    with psycopg.connect(org_dsn, autocommit=True) as lock_conn:
        lock_conn.execute("SELECT pg_advisory_lock(4242)")
        result = {}
        blocked = threading.Thread(
            target=lambda: result.update(
                r=Raw(srv, raw.workspace).query("SELECT pg_advisory_xact_lock(4242), 1")
            ),
        )
        blocked.start()
        deadline = time.monotonic() + 30
        while srv.stats()["inflight"] < 1:  # wait until the first request holds the slot
            assert time.monotonic() < deadline
            time.sleep(0.01)
        status, body, headers = hc.query("SELECT 2")
        lock_conn.execute("SELECT pg_advisory_unlock(4242)")
    blocked.join(30)
    assert status == 503 and body["code"] == "capacity_503" and headers["Retry-After"] == "3"
    assert result["r"][0] == 200 and result["r"][1]["rows"] == [["", 1]]
    stats = srv.stats()
    assert stats["injected"]["capacity_503"] == 1 and stats["inflight_peak"] == 1


def test_rate_limit_429_per_org(srv, workspace):
    srv.set_faults(rate_per_s=0.2, burst=2)
    a = Raw(srv, workspace)
    assert a.query("SELECT 1")[0] == 200
    assert a.query("SELECT 1")[0] == 200
    status, body, headers = a.query("SELECT 1")
    assert status == 429 and body["code"] == "rate_429"
    assert int(headers["Retry-After"]) >= 1
    b = Raw(srv, workspace)
    b.headers.update({"Authorization": "Bearer tok-acme", "X-Activeloop-Org-Id": "acme"})
    assert b.query("SELECT 1")[0] == 200  # another org has its own bucket
    assert srv.stats()["injected"]["rate_429"] == 1
    a.close()
    b.close()


def test_latency_is_applied_inside_the_slot(srv, workspace, hc):
    # a request sleeping its added latency holds the only in-flight slot
    srv.set_faults(latency_fixed_ms=1000, max_inflight=1)
    result = {}
    first = threading.Thread(target=lambda: result.update(r=Raw(srv, workspace).query("SELECT 1")))
    first.start()
    deadline = time.monotonic() + 30
    while srv.stats()["inflight"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert hc.query("SELECT 2")[0] == 503
    first.join(30)
    assert result["r"][0] == 200


def test_admin_endpoints_are_never_faulted(srv, raw):
    srv.set_faults(p_500=1.0)
    for _ in range(5):
        assert raw.get("/_admin/stats").status_code == 200
    assert raw.query("SELECT 1").status_code == 500
    assert srv.stats()["injected"]["error_500"] == 1


# ---------------------------------------------------------------- acceptance
def _flaky_run(srv, raw, workspace, seed, n):
    raw.rows("DROP TABLE IF EXISTS t; CREATE TABLE t (n int); SELECT 1")
    srv.set_faults(profile="flaky", seed=seed)
    srv.reset_stats()
    client = Raw(srv, workspace)
    outcomes = []
    for i in range(n):
        status, body, _ = client.query("INSERT INTO t VALUES ($1)", i)
        outcomes.append(
            (status, body["code"] if isinstance(body, dict) and "code" in body else None)
        )
    client.close()
    stats = srv.stats()
    srv.set_faults(profile="none")
    committed = {r[0] for r in raw.rows("SELECT n FROM t")}
    return outcomes, stats, committed


@pytest.mark.slow
def test_flaky_2000_requests_counts_match_and_replay(srv, raw, workspace):
    n = 2000
    outcomes, stats, committed = _flaky_run(srv, raw, workspace, 1234, n)
    observed = Counter()
    for i, (status, code) in enumerate(outcomes):
        if status == "reset":
            observed["commit_drop" if i in committed else "reset"] += 1
        elif status == 502:
            observed["commit_502" if i in committed else "error_502"] += 1
            assert code == ("commit_502" if i in committed else "error_502")
        elif status != 200:
            observed[f"error_{status}"] += 1
            assert i not in committed
        else:
            assert i in committed
    injected = {k: v for k, v in stats["injected"].items() if v}
    assert injected == dict(observed)
    assert stats["requests"] == n
    assert sum(observed.values()) > 0.04 * n  # ~7% expected
    assert set(injected) == {
        "reset",
        "error_429",
        "error_503",
        "error_500",
        "error_502",
        "error_504",
        "commit_502",
        "commit_drop",
    }
    statuses = Counter(str(s) for s, _ in outcomes if s != "reset")
    assert stats["status_counts"] == dict(statuses)
    # the same seed gives the same sequence of outcomes
    again, _, _ = _flaky_run(srv, raw, workspace, 1234, n)
    assert [s for s, _ in again] == [s for s, _ in outcomes]
    assert again == outcomes
