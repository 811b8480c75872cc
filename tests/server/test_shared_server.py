"""A server shared by several orgs: each attack of a hostile tenant, over real HTTP, does no harm.

Admin endpoints need the admin token; request and result limits hold (chunked bodies, NaN,
negative lengths, too many params, huge results); tenants see no other org's names and cannot
block another workspace's setup; one org's load leaves another org's queries a connection;
an exposed server refuses the default token and warns.
"""

from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from deeplake_sdk.server import ServerStartError, local
from deeplake_sdk.server.provision import workspace_role

ACME = {"Authorization": "Bearer tok-acme", "X-Activeloop-Org-Id": "acme"}
BETA = {"Authorization": "Bearer tok-beta", "X-Activeloop-Org-Id": "beta"}
EXTRA = {"tok-acme": "acme", "tok-beta": "beta"}


def _q(srv, ws, sql, headers=None, timeout=60, **body):
    return requests.post(
        f"{srv.url}/workspaces/{ws}/tables/query",
        json={"query": sql, **body},
        headers=headers or srv.headers,
        timeout=timeout,
    )


def _vm(pid, field):
    """A ``/proc/PID/status`` memory figure in bytes (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def _raw_http(srv, request: bytes) -> tuple[int, dict]:
    """Send bytes as they are; the status and JSON body of the answer."""
    parts = urlsplit(srv.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


# --------------------------------------------------------------------------- admin
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/_admin/faults", {"p_500": 1}),
        ("GET", "/_admin/stats", None),
        ("POST", "/_admin/stats/reset", None),
        ("GET", "/_admin/faults", None),
    ],
)
def test_a_data_token_gets_403_on_admin(srv, raw, method, path, body):
    resp = requests.request(method, srv.url + path, json=body, headers=ACME, timeout=30)
    assert resp.status_code == 403 and resp.json()["code"] == "forbidden"
    assert srv.faults()["p_500"] == 0
    assert raw.rows("SELECT 1") == [[1]]  # the other org is unharmed


def test_an_explicit_admin_token_is_the_only_one(pg_dsn, workspace):
    with local(dsn=pg_dsn, admin_token="adm-" + workspace, extra_tokens=EXTRA) as s:
        assert s.stats()["requests"] == 0  # the helpers use the admin token
        for headers in (s.headers, ACME):
            resp = requests.get(s.url + "/_admin/stats", headers=headers, timeout=30)
            assert resp.status_code == 403
        nobody = {"Authorization": "Bearer adm-nope"}
        assert requests.get(s.url + "/_admin/stats", headers=nobody, timeout=30).status_code == 401
        # the admin token is no data token
        admin = {"Authorization": f"Bearer {s.admin_token}"}
        assert _q(s, workspace, "SELECT 1", headers=admin).status_code == 401


def test_faults_and_stats_can_be_scoped_to_one_org(srv, raw, workspace):
    srv.set_faults(org="acme", p_500=1.0)
    try:
        assert _q(srv, workspace, "SELECT 1", headers=ACME).status_code == 500
        assert raw.rows("SELECT 1") == [[1]]  # other orgs keep the server's faults (none)
        assert srv.faults(org="acme")["p_500"] == 1.0 and srv.faults()["p_500"] == 0
        assert srv.stats(org="acme")["status_counts"] == {"500": 1}
    finally:
        srv.set_faults(profile="none", seed=0)  # every org back to the server's faults
    assert _q(srv, workspace, "SELECT 1", headers=ACME).status_code == 200


# --------------------------------------------------------------------------- limits
def test_a_chunked_body_over_the_limit_is_413_without_buffering_it(pg_dsn, workspace):
    with local(dsn=pg_dsn, extra_args=["--max-body-mb", "4"]) as s:
        _q(s, workspace, "SELECT 1")  # warm up
        before = _vm(s.pid, "VmRSS")
        parts = urlsplit(s.url)
        head = (
            f"POST /workspaces/{workspace}/tables/query HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {s.token}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
        sent = 0
        answer = b""
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(head)

            def send_100_mib():
                nonlocal sent
                try:
                    for _ in range(100):
                        sock.sendall(chunk)
                        sent += 1
                    sock.sendall(b"0\r\n\r\n")
                except OSError:
                    pass  # the server closed the connection after its answer

            sender = threading.Thread(target=send_100_mib)
            sender.start()
            try:
                while chunk_in := sock.recv(65536):
                    answer += chunk_in
            except ConnectionResetError:
                pass
            sender.join(60)
        status = int(answer.split()[1])
        body = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert status == 413 and body["code"] == "too_large" and "4194304" in body["error"]
        assert sent < 100  # the server stopped reading
        peak_growth = _vm(s.pid, "VmHWM") - before
        assert peak_growth < 64 << 20, peak_growth
        assert _q(s, workspace, "SELECT 1").status_code == 200


def test_content_length_over_the_limit_is_413(srv, workspace):
    status, body = _raw_http(
        srv,
        f"POST /workspaces/{workspace}/tables/query HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {srv.token}\r\nContent-Length: {100 << 20}\r\n\r\n{{".encode(),
    )
    assert status == 413 and body["code"] == "too_large"


@pytest.mark.parametrize("length", ["-5", "abc"])
def test_a_malformed_content_length_is_a_400_that_says_so(srv, workspace, length):
    status, body = _raw_http(
        srv,
        f"POST /workspaces/{workspace}/tables/query HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {srv.token}\r\nContent-Length: {length}\r\n\r\n".encode(),
    )
    assert status == 400 and "Content-Length" in body["error"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "-1"])
def test_nan_infinite_or_negative_timeouts_are_400(srv, raw, value):
    resp = raw.post(
        f"/workspaces/{raw.workspace}/tables/query",
        data=f'{{"query": "SELECT 1", "timeout_ms": {value}}}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400 and resp.json()["code"] == "bad_request", resp.text
    assert srv.stats()["status_counts"] == {"400": 1}


def test_nan_anywhere_in_the_body_is_400(raw):
    resp = raw.post(
        f"/workspaces/{raw.workspace}/tables/query",
        data='{"query": "SELECT $1::float8", "params": [NaN]}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400 and "NaN" in resp.json()["error"]


def test_too_many_params_is_a_400_naming_the_limit(raw):
    resp = raw.query("SELECT 1", *range(70_000))
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == "too_many_params" and "65535" in body["error"]


def test_a_result_over_the_limit_is_a_clear_400_and_memory_stays_bounded(pg_dsn, workspace):
    limit_mb = 16
    with local(dsn=pg_dsn, extra_args=["--max-result-mb", str(limit_mb)]) as s:
        assert _q(s, workspace, "SELECT 1").status_code == 200
        before = _vm(s.pid, "VmRSS")
        # 200 MB of rows
        resp = _q(s, workspace, "SELECT repeat('x', 1000) FROM generate_series(1, 200000)")
        assert resp.status_code == 400
        body = resp.json()
        assert body["code"] == "result_too_large" and body["limit_bytes"] == limit_mb << 20
        assert "LIMIT" in body["error"]
        growth = _vm(s.pid, "VmHWM") - before
        assert growth < 4 * (limit_mb << 20), growth
        # under the limit: the same rows, all of them
        ok = _q(s, workspace, "SELECT repeat('x', 1000), g FROM generate_series(1, 10000) g")
        assert ok.status_code == 200 and ok.json()["row_count"] == 10000
        assert ok.json()["rows"][-1] == ["x" * 1000, 10000]
        # the cancelled query left the connection usable
        assert _q(s, workspace, "SELECT 2").json()["rows"] == [[2]]


def test_streamed_results_keep_columns_types_and_empty_results(raw):
    resp = raw.query("SELECT 1 AS a, 'é'::text AS \"b c\", NULL::int AS n WHERE $1", False)
    assert resp.json() == {"columns": ["a", "b c", "n"], "rows": [], "row_count": 0}
    resp = raw.query("SELECT '\\xff'::bytea AS b, 1.5::float8 AS f, '{\"k\": 1}'::jsonb AS j")
    assert resp.json()["rows"] == [["\\xff", 1.5, {"k": 1}]]


# --------------------------------------------------------------------------- timeouts
def test_default_and_longest_statement_timeouts(pg_dsn, workspace):
    args = ["--statement-timeout-ms", "200", "--max-statement-timeout-ms", "1000"]
    with local(dsn=pg_dsn, extra_args=args) as s:
        slow = _q(s, workspace, "SELECT pg_sleep(30)")
        assert slow.status_code == 408 and slow.json()["code"] == "statement_timeout"
        asked = _q(s, workspace, "SELECT pg_sleep(30)", timeout_ms=3_600_000)
        assert asked.status_code == 408  # capped at the longest
        # a query that lifts its own timeout is still cancelled by the server
        lifted = _q(s, workspace, "SET statement_timeout = 0; SELECT pg_sleep(30)")
        assert lifted.status_code == 408, lifted.text
        assert _q(s, workspace, "SELECT 1").json()["rows"] == [[1]]


# --------------------------------------------------------------------------- catalogs
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT rolname FROM pg_roles",
        "SELECT usename FROM pg_user",
        "SELECT datname FROM pg_database",
        "SELECT usename, datname FROM pg_stat_activity",
        "SELECT datname FROM pg_stat_database",
        "SELECT * FROM pg_auth_members",
        "SELECT * FROM pg_locks",
    ],
)
def test_cluster_wide_names_are_not_visible(srv, workspace, sql):
    _q(srv, workspace + "x", "SELECT 1", headers=ACME)  # another org's workspace exists
    resp = _q(srv, workspace, sql)
    assert resp.status_code == 400 and resp.json()["sqlstate"] == "42501", resp.text
    assert "acme" not in resp.text


def test_schema_names_are_the_own_orgs_only(srv, workspace):
    theirs = workspace + "_acme"
    assert _q(srv, theirs, "SELECT 1", headers=ACME).status_code == 200
    assert _q(srv, workspace + "_mine", "SELECT 1").status_code == 200
    names = [r[0] for r in _q(srv, workspace, "SELECT nspname FROM pg_namespace").json()["rows"]]
    assert workspace + "_mine" in names and theirs not in names
    probe = _q(
        srv,
        workspace,
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name = $1",
        params=[theirs],
    )
    assert probe.json()["rows"] == []


# --------------------------------------------------------------------------- setup locks
def test_advisory_locks_cannot_block_another_workspaces_setup(srv, workspace):
    target = workspace + "_new"
    role = workspace_role(srv.org, target)
    keys = [f"({ns}, hashtext('{role}'))" for ns in (0x646C_726C, 0x646C_6F72)]
    keys += ["(0x646C_7365_7475)"]
    lock = "; ".join(f"SELECT pg_advisory_lock{k}" for k in keys) + "; SELECT pg_sleep(4)"
    with ThreadPoolExecutor(1) as pool:
        holder = pool.submit(_q, srv, workspace, lock)
        # the holder runs (its locks are taken) before the first request to the new workspace
        deadline_check = _poll_busy(srv)
        assert deadline_check, "the lock holder never ran"
        first = _q(srv, target, "SELECT current_schema()")
        assert first.status_code == 200 and first.json()["rows"] == [[target]]
        assert not holder.done()  # the locks were held all along
        assert holder.result(60).status_code == 200


def _poll_busy(srv, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.stats()["inflight"] >= 1:
            return True
        time.sleep(0.02)  # polling interval of the stats
    return False


# --------------------------------------------------------------------------- fairness
def test_one_orgs_load_leaves_another_org_a_connection(pg_dsn, workspace):
    args = ["--pool-size", "10", "--org-connections", "5", "--connection-wait-s", "1"]
    with local(dsn=pg_dsn, extra_tokens=EXTRA, extra_args=args) as s:
        assert _q(s, workspace, "SELECT 1", headers=BETA).status_code == 200  # B is set up
        assert _q(s, workspace, "SELECT 1", headers=ACME).status_code == 200
        with ThreadPoolExecutor(12) as pool:
            load = [
                pool.submit(_q, s, workspace, "SELECT pg_sleep(8)", ACME, 60) for _ in range(12)
            ]
            assert _poll_pool(s, busy=5), s.stats()["db_pool"]
            light = _q(s, workspace, "SELECT 1", headers=BETA)
            assert light.status_code == 200 and light.json()["rows"] == [[1]]
            running = sum(not f.done() for f in load)
            statuses = sorted(f.result().status_code for f in load)
        assert running >= 5  # B answered while A's share was still busy
        # A got its share; the rest waited the bounded time and were told to retry
        assert statuses.count(200) == 5 and statuses.count(503) == 7, statuses
        busy = [f.result() for f in load if f.result().status_code == 503]
        assert all(r.json()["code"] == "database_busy" for r in busy)
        assert all(r.headers["Retry-After"] for r in busy)
        pool_stats = s.stats()["db_pool"]
        assert pool_stats["org_cap"] == 5 and pool_stats["org_waits"] >= 7


def _poll_pool(srv, busy, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.stats()["db_pool"]["busy"] >= busy:
            return True
        time.sleep(0.02)  # polling interval of the stats
    return False


# --------------------------------------------------------------------------- exposure
def test_an_exposed_server_refuses_the_default_token(pg_dsn):
    with pytest.raises(ServerStartError, match="not loopback"), local(dsn=pg_dsn, host="0.0.0.0"):
        pass


def test_an_exposed_server_warns_and_has_no_admin_without_admin_token(pg_dsn, workspace):
    with local(dsn=pg_dsn, host="0.0.0.0", token="own-" + workspace) as s:
        assert "warning: serving on 0.0.0.0" in s.stderr_text()
        assert "plain http" in s.stderr_text()
        resp = requests.get(s.url + "/_admin/stats", headers=s.headers, timeout=30)
        assert resp.status_code == 403 and "--admin-token" in resp.json()["error"]
        assert _q(s, workspace, "SELECT 1").status_code == 200


def test_tokens_can_come_from_files(pg_dsn, tmp_path, workspace):
    (tmp_path / "token").write_text("file-token\n")
    (tmp_path / "admin").write_text("file-admin\n")
    (tmp_path / "tokens").write_text("t-one=one\nt-two=two\n")
    args = ["--token-file", str(tmp_path / "token"), "--admin-token-file", str(tmp_path / "admin")]
    args += ["--tokens-file", str(tmp_path / "tokens")]
    with local(dsn=pg_dsn, extra_args=args, admin_token="file-admin") as s:
        for token in ("file-token", "t-one", "t-two"):
            resp = _q(s, workspace, "SELECT 1", headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 200, token
        assert s.stats()["status_counts"] == {"200": 3}
