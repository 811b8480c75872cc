"""Transport tests: ``Endpoint`` and ``get_endpoint`` (the limiter: test_limiter.py).

Endpoint behaviour (registry, keep-alive pool, concurrency bound, execution strategies,
error classification, fork) runs against the real local server (fixtures ``srv`` and
``workspace`` of conftest.py) over real HTTP; faults come from its fault injection and
concurrency is observed in its stats (server-side latency keeps requests in flight).

Pure units (decoding of answers, including 2xx bodies only a gateway would send, error
mapping of bodies and exceptions, cooperative sleep) need no server.
"""

from __future__ import annotations

import json
import os
import socket
import threading

import gevent
import pytest
from requests.structures import CaseInsensitiveDict
from waiting import poll

from deeplake_sdk._coop import hub_if_exists
from deeplake_sdk.errors import (
    AlreadyExistsError,
    AuthError,
    NetworkError,
    QueryError,
    RateLimitError,
    ServerError,
)
from deeplake_sdk.http_errors import error_for_status
from deeplake_sdk.transport import Endpoint, decode_answer, get_endpoint, leave_host_shares


@pytest.fixture
def send(srv, workspace):
    """``send(endpoint, sql, *params)``: one query through ``endpoint`` to the real server."""

    def send(endpoint, sql="SELECT 1 AS a", *params, timeout=(5.0, 30.0), headers=None):
        return endpoint.request(
            "POST",
            f"/workspaces/{workspace}/tables/query",
            headers=headers or srv.headers,
            body={"query": sql, "params": list(params)},
            timeout=timeout,
        )

    return send


@pytest.fixture(params=["direct", "session"])
def make_endpoint(request, srv):
    """Fresh endpoints on ``srv`` using the urllib3 pool directly or requests' session path
    (the one a configured proxy selects)."""

    def make(limit=2):
        endpoint = Endpoint(srv.url, limit)
        endpoint._direct = request.param == "direct"
        return endpoint

    return make


def client_connections(stats):
    """Connections opened by clients: the server also counts the one of the stats call."""
    return stats["connections_opened"] - 1


# -- error mapping -------------------------------------------------------------------------


def test_error_for_status_json_and_types():
    body = json.dumps(
        {"error": 'syntax error at "SELEC"', "code": "42601", "request_id": "r-1"}
    ).encode()
    err = error_for_status(400, {}, body)
    assert type(err) is QueryError
    assert (err.status, err.message, err.code, err.request_id) == (
        400,
        'syntax error at "SELEC"',
        "42601",
        "r-1",
    )
    assert isinstance(error_for_status(401, {}, b'{"error":"bad token"}'), AuthError)
    assert "DEEPLAKE_TOKEN" in str(error_for_status(403, {}, b'{"error":"org"}'))
    assert type(error_for_status(500, {}, b'{"error":"boom"}')) is ServerError
    assert type(error_for_status(404, {}, b'{"error":"no table"}')) is QueryError
    exists = error_for_status(500, {}, b'{"error":"column \\"x\\" already exists"}')
    assert type(exists) is AlreadyExistsError and exists.status == 500
    assert type(error_for_status(409, {}, b'{"error":"dup"}')) is AlreadyExistsError
    limited = error_for_status(429, {"retry-after": "2"}, b"")
    assert type(limited) is RateLimitError and limited.retry_after == 2.0
    assert "empty body" in limited.message


def test_error_for_status_summarises_gateway_html():
    html = b"<html><head><title>502 Bad Gateway</title></head><body><h1>oops</h1></body></html>"
    err = error_for_status(502, {"x-request-id": "gw-9"}, html)
    assert type(err) is ServerError
    assert err.message == "502 Bad Gateway" and err.request_id == "gw-9"
    err = error_for_status(504, {}, b"upstream timed out " * 50)
    assert err.message.endswith("...") and len(err.message) < 210


def test_network_error_mapping_of_urllib3_and_requests_failures():
    import requests
    import urllib3.exceptions as u3

    from deeplake_sdk.errors import ConfigError
    from deeplake_sdk.http_errors import network_error

    url, timeout = "http://h:1", (3.0, 7.0)
    cases = [
        (u3.NewConnectionError(None, "refused"), False, "cannot connect"),
        (u3.ConnectTimeoutError(None, "slow"), False, "within 3s"),
        (u3.ReadTimeoutError(None, "/", "slow"), True, "within 7s"),
        (
            u3.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
            True,
            "reset",
        ),
        (u3.SSLError("bad cert"), False, "bad cert"),
        (requests.exceptions.ReadTimeout("slow"), True, "no answer"),
        (requests.exceptions.ConnectTimeout("slow"), False, "could not connect"),
        (
            requests.exceptions.ConnectionError(
                u3.MaxRetryError(None, "/", u3.NewConnectionError(None, "refused"))
            ),
            False,
            "cannot connect",
        ),
        (ConnectionResetError(104, "reset by peer"), True, "lost before the answer"),
    ]
    for exc, ambiguous, text in cases:
        err = network_error(exc, url, timeout)
        assert isinstance(err, NetworkError), exc
        assert err.ambiguous is ambiguous, exc
        assert text in str(err), (exc, str(err))
    assert isinstance(network_error(u3.LocationParseError("x"), url, timeout), ConfigError)


# -- cooperative helpers --------------------------------------------------------------------


def test_cooperative_sleep_creates_no_hub_in_plain_threads():
    from deeplake_sdk._coop import cooperative_sleep

    seen = []

    def plain():
        cooperative_sleep(0.01)
        seen.append(hub_if_exists())

    t = threading.Thread(target=plain)
    t.start()
    t.join()
    assert seen == [None]


# -- endpoint against the real local server --------------------------------------------------


def test_registry_shares_endpoints_and_their_pool(srv, send):
    shared = get_endpoint(srv.url, 5)
    assert get_endpoint(srv.url + "/", 5) is shared
    assert get_endpoint(srv.url.replace("http:", "HTTP:"), 5) is shared
    other = get_endpoint(srv.url, 3)
    assert other is not shared and get_endpoint(srv.url, 5, adaptive=False) is not shared
    shared.close()  # drop connections pooled by earlier tests
    other.close()
    srv.reset_stats()
    assert send(shared, "SELECT 1 AS a")["rows"] == [[1]]
    assert send(get_endpoint(srv.url + "/", 5), "SELECT 2 AS a")["rows"] == [[2]]
    stats = srv.stats()
    assert stats["requests"] == 2 and client_connections(stats) == 1  # one keep-alive socket
    srv.reset_stats()
    assert send(other, "SELECT 3 AS a")["rows"] == [[3]]
    assert client_connections(srv.stats()) == 1  # other settings: a pool of its own


def test_close_closes_the_pooled_connections_at_once(srv, send, make_endpoint):
    # urllib3 2 closes a forgotten pool's connections only once the pool is garbage collected;
    # here a reference to it is still held (as a request in progress elsewhere would)
    from deeplake_sdk import transport

    endpoint = make_endpoint()
    before = set(transport._connections)
    send(endpoint)
    mine = [c for c in transport._connections if c not in before]
    manager = endpoint._shared.adapter.poolmanager
    held = [manager.pools.get(key) for key in manager.pools.keys()]  # noqa: SIM118
    assert held and mine and all(c.sock is not None for c in mine)
    endpoint.close()
    assert all(c.sock is None for c in mine)  # closed now, not when the pool goes away
    assert send(endpoint)["rows"] == [[1]]  # and the endpoint still works


def test_keepalive_and_bound_unpatched(srv, send):
    ep = Endpoint(srv.url, 4)
    srv.set_faults(latency_fixed_ms=30)
    srv.reset_stats()
    greenlets = [gevent.spawn(send, ep, "SELECT $1::int AS v", i) for i in range(40)]
    gevent.joinall(greenlets, raise_error=True)
    assert [g.value["rows"] for g in greenlets] == [[[i]] for i in range(40)]
    stats = srv.stats()
    assert stats["requests"] == 40 and stats["status_counts"] == {"200": 40}
    assert stats["inflight_peak"] == 4  # parallel without monkey-patching ...
    assert 1 <= client_connections(stats) <= 4  # ... over at most 4 keep-alive connections
    assert ep.limiter.in_flight == 0 and ep.limiter.peak == 4


def test_plain_synchronous_call(srv, send):
    ep = Endpoint(srv.url, 2)
    seen = {}

    def plain():  # a thread without a hub: the call blocks it, nothing else
        seen["answer"] = send(ep, "SELECT $1::text AS a", "h\u00e9llo \u2713")
        seen["hub"] = hub_if_exists()

    t = threading.Thread(target=plain)
    t.start()
    t.join(60)
    assert seen["answer"]["columns"] == ["a"]
    assert seen["answer"]["rows"] == [["h\u00e9llo \u2713"]]  # UTF-8 both ways
    assert seen["hub"] is None and ep._workers.threads == 0  # no hub, no worker thread
    assert srv.stats()["requests"] == 1


def test_native_threads_share_the_bound(srv, send):
    ep = Endpoint(srv.url, 3)
    srv.set_faults(latency_fixed_ms=30)
    srv.reset_stats()
    errors = []

    def work(w):
        try:
            for i in range(5):
                assert send(ep, "SELECT $1::int AS v", w * 10 + i)["rows"] == [[w * 10 + i]]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    stats = srv.stats()
    assert stats["requests"] == 40 and stats["inflight_peak"] == 3
    assert client_connections(stats) <= 3
    assert ep.limiter.in_flight == 0 and ep.limiter.peak == 3


def test_interrupted_caller_cancels_its_request_on_the_worker_thread(srv, send):
    ep = Endpoint(srv.url, 1)
    srv.set_faults(latency_fixed_ms=2000)
    srv.reset_stats()
    first = gevent.spawn(send, ep, "SELECT 1 AS a")
    poll(lambda: srv.stats()["inflight"] == 1, "the first request at the server")
    srv.set_faults(latency_fixed_ms=0)  # the first request keeps the latency it was given
    first.kill()  # returns once the worker thread has let go of the request
    assert isinstance(first.value, gevent.GreenletExit)
    # the worker's blocking read was ended by shutting its socket down: the slot is free
    # while the server is still busy with the request
    assert ep.limiter.in_flight == 0 and ep._workers.threads == 1
    assert srv.stats()["inflight"] == 1
    srv.reset_stats()
    assert send(ep, "SELECT 2 AS a")["rows"] == [[2]]
    stats = srv.stats()
    assert stats["requests"] == 1 and client_connections(stats) == 1  # a new connection
    assert ep.limiter.in_flight == 0 and ep.limiter.peak == 1
    # leave no request in flight at the server for the next test
    poll(lambda: srv.stats()["inflight"] == 0, "the abandoned request to finish")


def test_connection_reset_is_ambiguous(srv, send, make_endpoint):
    ep = make_endpoint()
    srv.set_faults(p_reset=1.0)
    with pytest.raises(NetworkError, match="lost before the answer") as info:
        send(ep)
    assert info.value.ambiguous  # sent, then the connection died: may have run
    assert srv.stats()["injected"]["reset"] == 1
    srv.set_faults(p_reset=0.0)
    assert send(ep)["rows"] == [[1]]  # the broken connection was not reused
    assert ep.limiter.in_flight == 0


def test_read_timeout_is_ambiguous(srv, send, make_endpoint):
    ep = make_endpoint()
    srv.set_faults(latency_fixed_ms=1500)
    with pytest.raises(NetworkError, match=r"no answer .* within 0\.1s") as info:
        send(ep, timeout=(5.0, 0.1))
    assert info.value.ambiguous
    assert srv.stats()["requests"] == 1 and ep.limiter.in_flight == 0
    # leave no request in flight at the server for the next test
    poll(lambda: srv.stats()["inflight"] == 0, "the abandoned request to finish")


def test_connection_refused_is_not_ambiguous():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port: refused, surely not executed
    ep = Endpoint(f"http://127.0.0.1:{port}", 1)
    with pytest.raises(NetworkError, match="cannot connect") as info:
        ep.request("POST", "/q", headers={}, body={"query": "SELECT 1"}, timeout=(5.0, 5.0))
    assert not info.value.ambiguous
    assert ep.limiter.in_flight == 0


@pytest.mark.parametrize("status", [429, 503])
def test_overload_answers_carry_retry_after(srv, send, make_endpoint, status):
    ep = make_endpoint(4)
    srv.set_faults(**{f"p_{status}": 1.0}, retry_after_s=2)
    with pytest.raises(RateLimitError) as info:
        send(ep)
    err = info.value
    assert (err.status, err.code, err.retry_after) == (status, f"error_{status}", 2.0)
    assert err.message.startswith(f"injected fault: {status}") and err.request_id
    assert ep.limiter.limit == 2  # the adaptive bound halves on overload


def test_error_answers_are_typed(srv, send, make_endpoint):
    ep = make_endpoint(4)
    with pytest.raises(QueryError) as info:
        send(ep, "SELEC 1")
    assert (info.value.status, info.value.code) == (400, "QUERY_ERROR")  # the service's code
    with pytest.raises(AuthError) as info:
        send(ep, headers={**srv.headers, "Authorization": "Bearer wrong"})
    assert info.value.status == 401
    srv.set_faults(p_500=1.0)
    with pytest.raises(ServerError) as info:
        send(ep)
    assert (info.value.status, info.value.code, info.value.retry_after) == (500, "error_500", None)
    assert ep.limiter.limit == 4  # only 429/503 shrink the bound


def test_proxy_path_uses_the_session(srv, send):
    ep = Endpoint(srv.url, 2)
    ep._direct = False  # what a configured proxy selects
    assert send(ep, "SELECT $1::int AS a", 7)["rows"] == [[7]]
    assert send(ep, "SELECT $1::int AS a", 8)["rows"] == [[8]]
    assert ep._shared.http_pool is None  # the direct urllib3 pool was never used
    stats = srv.stats()
    assert stats["requests"] == 2 and client_connections(stats) == 1  # session keep-alive


def test_forked_child_gets_its_own_connections(srv, send):
    parent = get_endpoint(srv.url, 2)
    parent.close()
    assert send(parent)["rows"] == [[1]]  # one pooled keep-alive connection now exists
    parent_limiter = parent.limiter
    srv.reset_stats()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the same endpoint object starts over with its own connection
        try:
            child = get_endpoint(srv.url, 2)
            ok = child is parent and send(child, "SELECT 2 AS a")["rows"] == [[2]]
            ok = ok and child.limiter is not parent_limiter and child.requests_sent == 1
            os.write(write, b"1" if ok else b"0")
        finally:
            leave_host_shares()  # os._exit skips the exit handler that removes its entry
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.close(read)
    os.waitpid(pid, 0)
    assert send(parent, "SELECT 3 AS a")["rows"] == [[3]]  # the parent's connection is intact
    assert parent.limiter is parent_limiter
    stats = srv.stats()
    assert stats["requests"] == 2 and stats["status_counts"] == {"200": 2}
    assert client_connections(stats) == 1  # the child's own; the parent reused its socket


# -- endpoint against the stub: 2xx bodies the real server never sends ------------------------


def test_unusual_2xx_bodies():
    # Pure unit: the local server never sends these, a gateway in front of the service may.
    assert decode_answer(200, CaseInsensitiveDict(), b"") == {}
    assert decode_answer(204, CaseInsensitiveDict(), b" \n") == {}
    headers = CaseInsensitiveDict({"X-Request-Id": "gw-1"})
    with pytest.raises(ServerError, match="not JSON: hi") as info:
        decode_answer(200, headers, b"<html>hi</html>")
    assert info.value.status == 200 and info.value.request_id == "gw-1"
    with pytest.raises(RateLimitError):
        decode_answer(429, CaseInsensitiveDict(), b'{"error": "slow down"}')
