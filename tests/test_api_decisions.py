"""DeeplakeApi decisions against the real local server: what is sent, re-sent and raised.

Every fault comes from the server's fault injection (``max_faults`` scripts "fail N times, then
answer") and every count from its ``/_admin/stats``. Only the JSON body builder and the answer
parser are pure units: the server cannot tell an omitted empty ``params`` from none, and never
answers ``"rows": null`` as the service may.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

import pytest

from deeplake_sdk import DeeplakeApi, RetryPolicy, statements
from deeplake_sdk._version import __version__
from deeplake_sdk.api import _Call, query_body
from deeplake_sdk.api_types import QueryResult, Timeout
from deeplake_sdk.errors import (
    AlreadyExistsError,
    AmbiguousWriteError,
    AuthError,
    DeeplakeError,
    NetworkError,
    QueryError,
    ServerError,
)

FAST = RetryPolicy(retries=3, backoff_base=0.01, backoff_max=0.05, jitter=0.0)
#: Faults after which a statement may have run.
AMBIGUOUS = ["p_500", "p_502", "p_504", "p_reset", "p_commit_fail"]
#: HTTP status the client sees per injected kind (None: the connection was dropped).
STATUS_OF = {
    "error_429": 429,
    "error_503": 503,
    "error_500": 500,
    "error_502": 502,
    "error_504": 504,
    "reset": None,
    "commit_502": 502,
    "commit_drop": None,
}


@pytest.fixture
def client(srv, workspace):
    with DeeplakeApi(srv.token, srv.org, workspace, srv.url, retries=FAST) as api:
        yield api


@pytest.fixture
def table(client):
    """Table ``t`` holding one row, ``a = 1``."""
    client.query("CREATE TABLE t (a INT PRIMARY KEY) USING deeplake")
    client.execute("INSERT INTO t (a) VALUES (1)")


def inject(srv, **faults):
    """Set ``faults`` (Retry-After 0 unless given) and zero the stats: what follows is counted."""
    faults.setdefault("retry_after_s", 0)
    srv.set_faults(profile="none", **faults)
    srv.reset_stats()


def healed_rows(srv, client):
    """Values of ``t.a`` once the faults are off."""
    srv.set_faults(profile="none")
    return [row["a"] for row in client.query("SELECT a FROM t ORDER BY a")]


def memory_without_summary(client, name):
    """Create table ``name`` with the memory table's columns but ``summary``."""
    columns = [c for c in statements.MEMORY_COLUMNS if c.name != "summary"]
    client.query(statements.create_table(name, columns))


def seen_statuses(stats):
    """Statuses the client met, from the server's count of injected faults."""
    seen = Counter()
    for kind, n in stats["injected"].items():
        if n:
            seen[STATUS_OF[kind]] += n
    return seen


# ---------------------------------------------------------------- what is sent
def test_path_headers_and_timeout_reach_the_server(srv, raw, client, workspace):
    raw.rows(
        "CREATE TABLE t (a INT, b TEXT, c TEXT);"
        "INSERT INTO t VALUES (1, 'x', 'v'), (2, NULL, 'v'), (3, 'z', 'w'); SELECT 1"
    )
    srv.reset_stats()
    rows = client.query("SELECT a, b FROM t WHERE c = $1 ORDER BY a", ["v"])
    assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]  # the workspace's own table
    assert client.query("SHOW statement_timeout") == [{"statement_timeout": "1min"}]
    assert client.query("SHOW statement_timeout", timeout=2.5) == [{"statement_timeout": "2500ms"}]
    stats = srv.stats()
    assert stats["status_counts"] == {"200": 3}
    assert stats["clients"] == {f"deeplake-sdk/{__version__}": 3}
    assert stats["content_types"] == {"application/json": 3}
    # the org header is sent: naming another org than the token's is refused
    with (
        DeeplakeApi(srv.token, "someone-else", workspace, srv.url, retries=FAST) as other,
        pytest.raises(AuthError) as info,
    ):
        other.query("SELECT 1")
    assert info.value.status == 403


def test_query_body_sends_params_only_when_given():
    assert query_body("SELECT 1", [], Timeout(statement=2.5)) == {
        "query": "SELECT 1",
        "timeout_ms": 2500,
    }
    assert query_body("SELECT $1", ["v"], Timeout()) == {
        "query": "SELECT $1",
        "params": ["v"],
        "timeout_ms": 60000,
    }
    assert query_body("SELECT 1", [], Timeout(statement=0.0001))["timeout_ms"] == 1


def test_ddl_and_empty_answers(client):
    assert client.query("CREATE TABLE x (a INT) USING deeplake") == []
    result = client.execute("DELETE FROM x")
    assert result.rows == [] and result.row_count == 0 and not result.confirmed
    assert client.execute("INSERT INTO x VALUES (1), (2)").row_count == 2
    # answers the service may send and the local server does not: the count is unknown
    assert QueryResult.from_answer({"columns": [], "rows": None}) == QueryResult(row_count=None)
    assert QueryResult.from_answer({}) == QueryResult(row_count=None)
    assert QueryResult.from_answer({"columns": ["a"], "rows": [[1]]}).row_count == 1


# ---------------------------------------------------------------- what is raised at once
def test_rejected_sql_and_token_are_raised_at_once(srv, client, workspace):
    with pytest.raises(QueryError) as info:
        client.query("SELEC 1")
    assert info.value.status == 400
    assert 'syntax error at or near "SELEC"' in info.value.message
    assert re.fullmatch(r"[0-9a-f]{32}", info.value.request_id or "")
    with (
        DeeplakeApi("wrong-token", srv.org, workspace, srv.url, retries=FAST) as other,
        pytest.raises(AuthError, match="invalid token"),
    ):
        other.query("SELECT 1")
    assert srv.stats()["status_counts"] == {"400": 1, "401": 1}  # the service's 401: at once
    assert not client.retry_events


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, QueryError),
        (403, AuthError),
        (404, QueryError),
        (408, QueryError),
        (409, AlreadyExistsError),
    ],
)
def test_4xx_are_not_retried(srv, client, status, error):
    inject(srv, fail_pattern="^SELECT", fail_status=status, fail_message=f"refused {status}")
    with pytest.raises(error) as info:
        client.query("SELECT 1")
    assert (info.value.status, info.value.message.split(" (")[0]) == (status, f"refused {status}")
    assert srv.stats()["requests"] == 1 and not client.retry_events


def test_already_exists_500_is_final(srv, client):
    exists = f'relation "{statements.index_name("memory", "summary")}" already exists'
    inject(srv, fail_pattern="^CREATE INDEX", fail_message=exists)
    with pytest.raises(AlreadyExistsError) as info:
        client.execute(statements.create_index("memory", "summary"))
    assert (info.value.status, info.value.message) == (500, exists)
    client.create_index("memory", "summary")  # for create_index, that is success
    stats = srv.stats()
    assert stats["requests"] == 2 and stats["injected"]["pattern"] == 2
    assert not client.retry_events
    # the same 500 without "already exists" is retried
    inject(srv, fail_pattern="^CREATE INDEX")
    with pytest.raises(ServerError, match="injected fault"):
        client.create_index("memory", "summary")
    assert srv.stats()["requests"] == 1 + FAST.retries


# ---------------------------------------------------------------- what is re-sent
@pytest.mark.parametrize("fault", AMBIGUOUS)
def test_reads_are_retried_after_ambiguous_failures(srv, client, fault):
    inject(srv, **{fault: 1.0}, max_faults=2)
    assert client.query("SELECT 1 AS n") == [{"n": 1}]
    stats = srv.stats()
    assert stats["requests"] == 3 and sum(stats["injected"].values()) == 2
    assert Counter(e.status for e in client.retry_events) == seen_statuses(stats)


@pytest.mark.parametrize("fault", AMBIGUOUS)
def test_write_not_resent_after_ambiguous_failure(srv, client, table, fault):
    inject(srv, **{fault: 1.0})
    with pytest.raises(AmbiguousWriteError, match="confirm=") as info:
        client.execute("INSERT INTO t (a) VALUES (2)")
    assert isinstance(info.value.__cause__, (ServerError, NetworkError))
    assert srv.stats()["requests"] == 1 and not client.retry_events
    # the error is honest: after a lost commit the row is there, otherwise it is not
    assert healed_rows(srv, client) == ([1, 2] if fault == "p_commit_fail" else [1])


@pytest.mark.parametrize(
    "sql",
    ['CREATE TABLE "made" (a INT)', 'DROP TABLE "t"', 'CREATE INDEX "t_a" ON "t" ("a")'],
)
def test_ddl_whose_answer_was_lost_is_not_reported_as_failed(srv, client, table, sql, caplog):
    inject(srv, p_commit_fail=1.0, max_faults=1)  # applied, answer lost; the re-send is refused
    with caplog.at_level(logging.INFO, logger="deeplake_sdk.api"):
        result = client.execute(sql)
    assert result.confirmed and result.rows == []
    stats = srv.stats()
    # the re-send is refused as the service does: 500 for CREATE INDEX, 400 otherwise
    refused = "500" if "INDEX" in sql else "400"
    assert stats["requests"] == 2 and stats["status_counts"].get(refused) == 1
    assert "the first attempt applied it" in caplog.text
    srv.set_faults(profile="none")
    names = set(client.list_tables())
    assert ("made" in names) == sql.startswith('CREATE TABLE "made"')
    assert ("t" in names) != sql.startswith("DROP")


def test_ddl_refused_without_a_lost_answer_still_raises(srv, client, table):
    with pytest.raises(AlreadyExistsError):
        client.execute('CREATE TABLE "t" (a INT)')
    inject(srv, p_502=1.0, max_faults=1)  # refused before running: the re-send creates it
    assert not client.execute('CREATE TABLE "other" (a INT)').confirmed
    with pytest.raises(QueryError, match="does not exist"):
        client.execute('DROP TABLE "never_made"')


@pytest.mark.parametrize("fault", ["p_504", "p_commit_fail"])
def test_write_resent_when_idempotent(srv, client, table, fault):
    inject(srv, **{fault: 1.0}, max_faults=1)
    client.execute("INSERT INTO t (a) VALUES (2) ON CONFLICT (a) DO NOTHING", idempotent=True)
    assert srv.stats()["requests"] == 2 and len(client.retry_events) == 1
    assert healed_rows(srv, client) == [1, 2]


@pytest.mark.parametrize("fault", ["p_429", "p_503"])
def test_write_retried_after_failures_that_did_not_run(srv, client, table, fault):
    inject(srv, **{fault: 1.0}, max_faults=2)
    client.execute("INSERT INTO t (a) VALUES (2)")
    assert srv.stats()["requests"] == 3
    assert [e.status for e in client.retry_events] == [int(fault[2:])] * 2
    assert healed_rows(srv, client) == [1, 2]


def test_a_gateways_401_or_403_is_retried_and_a_write_behind_it_sent_again(srv, client, table):
    inject(srv, p_auth_html=1.0, max_faults=2)  # a gateway's HTML page, nothing executed
    client.execute("INSERT INTO t (a) VALUES (2)")
    assert srv.stats()["requests"] == 3
    assert all(isinstance(e.error, AuthError) and e.error.gateway for e in client.retry_events)
    assert len(client.retry_events) == 2
    assert healed_rows(srv, client) == [1, 2]


def test_a_gateway_that_keeps_refusing_is_raised_after_its_retries(srv, client):
    inject(srv, p_auth_html=1.0)
    with pytest.raises(AuthError) as info:
        client.query("SELECT 1")
    assert info.value.gateway
    assert srv.stats()["requests"] == 1 + RetryPolicy().auth_retries  # not every retry of FAST


def test_confirm_true_stops_resend(srv, client, table):
    inject(srv, p_commit_fail=1.0, max_faults=1)  # the UPDATE commits, its answer is lost
    checks = []

    def confirm():
        checks.append(1)
        return client.query("SELECT a FROM t") == [{"a": 2}]

    result = client.execute("UPDATE t SET a = a + 1", confirm=confirm)
    assert result.confirmed and checks == [1]
    assert srv.stats()["requests"] == 2  # the UPDATE once, the check once
    assert healed_rows(srv, client) == [2]  # applied once, not twice


def test_confirm_false_resends(srv, client, table):
    inject(srv, p_502=1.0, max_faults=1)  # the UPDATE is refused before it runs
    result = client.execute(
        "UPDATE t SET a = a + 1", confirm=lambda: client.query("SELECT a FROM t") == [{"a": 2}]
    )
    assert not result.confirmed and result.row_count == 1
    assert srv.stats()["requests"] == 3  # UPDATE, check, UPDATE
    assert healed_rows(srv, client) == [2]


def test_confirm_runs_after_the_last_ambiguous_failure(srv, client, table):
    inject(srv, p_502=1.0)
    checks = []
    result = client.execute(
        "UPDATE t SET a = 2", confirm=lambda: checks.append(1) or len(checks) > 3
    )
    # 4 attempts, confirm before attempts 2..4 (False) and once more after the last (True)
    assert result.confirmed and len(checks) == 4
    stats = srv.stats()
    assert stats["requests"] == 4 and stats["injected"]["error_502"] == 4


def test_confirm_failure_is_ambiguous(srv, client, table):
    inject(srv, p_502=1.0, max_faults=1)
    with pytest.raises(AmbiguousWriteError, match="confirm check failed") as info:
        client.execute(
            "UPDATE t SET a = a + 1",
            confirm=lambda: bool(client.query("SELECT 1 FROM missing_table")),
        )
    assert isinstance(info.value.__cause__, QueryError)
    assert srv.stats()["requests"] == 2  # the UPDATE and the failed check, no re-send
    assert healed_rows(srv, client) == [1]


def test_retry_after_is_honoured(srv, client, caplog):
    with caplog.at_level(logging.INFO, logger="deeplake_sdk.retry"):
        inject(srv, p_429=1.0, max_faults=1, retry_after_s=0)
        client.query("SELECT 1")
        inject(srv, p_429=1.0, max_faults=1, retry_after_s=1)
        client.query("SELECT 2")
    told_zero, told_one = client.retry_events
    assert (told_zero.retry_after, told_zero.delay) == (0.0, FAST.backoff_base)
    assert (told_one.retry_after, told_one.delay) == (1.0, 1.0)
    failed = "execute: attempt 1/4 failed (HTTP 429: injected fault: 429 Too Many Requests)"
    assert [r.getMessage() for r in caplog.records if r.name == "deeplake_sdk.retry"] == [
        f"{failed}, retrying in 0.01s",
        f"{failed}, retrying in 1.00s",
    ]


# ---------------------------------------------------------------- helpers of the client
def test_query_many_order_and_errors(srv, client):
    assert client.query_many([f"SELECT '{i}' AS q" for i in range(12)]) == [
        [{"q": str(i)}] for i in range(12)
    ]
    mixed = [
        "SELECT 1 AS q",
        ("SELECT * FROM bad1", None),
        ("SELECT $1::int AS q", [2]),
        "SELECT * FROM bad2",
    ]
    with pytest.raises(QueryError, match="bad1") as info:
        client.query_many(mixed)
    assert any("2 of 4" in note for note in getattr(info.value, "__notes__", []))
    out = client.query_many(mixed, return_exceptions=True)
    assert out[0] == [{"q": 1}] and out[2] == [{"q": 2}]
    assert isinstance(out[1], QueryError) and "bad1" in out[1].message
    assert isinstance(out[3], QueryError) and "bad2" in out[3].message
    assert srv.stats()["requests"] == 12 + 4 + 4  # nothing retried
    srv.reset_stats()
    assert client.query_many([]) == [] and srv.stats()["requests"] == 0


def test_list_tables_retried_and_drop_after_lost_answer(srv, client):
    client.create_table("memory", {"id": "TEXT"})
    client.create_table("x", {"id": "TEXT"})
    inject(srv, p_503=1.0, max_faults=1)
    assert client.list_tables() == ["memory", "x"]
    assert srv.stats()["requests"] == 2 and [e.status for e in client.retry_events] == [503]
    inject(srv, p_commit_fail=1.0)  # the DELETE drops the table, its answer is lost
    client.drop_table("x")  # the retry's 404 tells that the first attempt did it
    stats = srv.stats()
    assert stats["requests"] == 2 and stats["status_counts"]["404"] == 1
    srv.set_faults(profile="none")
    assert client.list_tables() == ["memory"]
    with pytest.raises(QueryError) as info:
        client.drop_table("y")
    assert info.value.status == 404
    client.drop_table("y", missing_ok=True)


def test_ensure_table_probes_once_and_alters_only_missing(srv, client, workspace):
    memory_without_summary(client, "memory")
    srv.reset_stats()
    layout = client.ensure_table("memory")  # usable as it is (content): never altered
    assert srv.stats()["requests"] == 1 and not layout.has("summary") and layout.binary_ok
    srv.reset_stats()
    layout = client.ensure_table("memory", migrate=True)
    assert srv.stats()["requests"] == 2  # the probe, one ALTER
    assert layout.has("summary")
    assert client.query("SELECT summary FROM memory") == []  # the column is there
    srv.reset_stats()
    assert client.ensure_table("memory", migrate=True) == layout
    with DeeplakeApi(srv.token, srv.org, workspace, srv.url) as other:
        other.ensure_table("memory")
    assert srv.stats()["requests"] == 0  # remembered for the process


def test_ensure_table_takes_already_exists_500_as_done(srv, client):
    memory_without_summary(client, "notes")
    exists = 'column "summary" of relation "notes" already exists'
    inject(srv, fail_pattern='^ALTER TABLE "notes" ADD COLUMN "summary" ', fail_message=exists)
    client.ensure_table("notes", migrate=True)
    stats = srv.stats()
    assert stats["requests"] == 2 and stats["injected"]["pattern"] == 1  # that exact ALTER
    assert not client.retry_events


def test_closed_client_refuses(srv, client):
    client.close()
    with pytest.raises(DeeplakeError, match="closed"):
        client.query("SELECT 1")
    with pytest.raises(DeeplakeError, match="closed"):
        client.list_tables()
    assert srv.stats()["requests"] == 0


def test_token_never_logged(srv, client, caplog):
    inject(srv, p_500=1.0, max_faults=1)
    with caplog.at_level(logging.DEBUG):
        client.query("SELECT 1")
        with pytest.raises(QueryError) as info:
            client.query("SELEC 1")
    assert len(client.retry_events) == 1 and len(caplog.records) >= 3  # retry and requests
    for text in (caplog.text, repr(client), repr(client.credentials), str(info.value)):
        assert srv.token not in text and "Bearer" not in text


def test_a_statement_is_classified_only_when_its_caller_did_not_say_whether_to_resend_it():
    insert = "INSERT INTO t (id) VALUES ($1), ($2), ($3)"  # the journal's multi-row inserts
    said = _Call(insert, ["a", "b", "c"], Timeout(), None, idempotent=True)
    assert said.resend is True and "kind" not in vars(said)  # no tokenising of the statement
    inferred = _Call(insert, ["a", "b", "c"], Timeout(), None)
    assert inferred.resend is False and vars(inferred)["kind"] == "write"
    read = _Call("SELECT 1", [], Timeout(), None)
    assert read.resend is True and read.kind == "read"
