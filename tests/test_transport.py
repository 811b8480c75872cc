"""Transport and limiter tests against an in-process scripted HTTP stub (no PostgreSQL).

The stub runs in native threads (``http.server``), independent of gevent, so it can answer
while the client blocks, greenlets wait, or worker threads send. End-to-end behaviour against
the real local server is covered by the test_api_*.py files.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gevent
import pytest

from deeplake_sdk.errors import (
    AlreadyExistsError,
    AuthError,
    NetworkError,
    QueryError,
    RateLimitError,
    ServerError,
)
from deeplake_sdk.http_errors import error_for_status
from deeplake_sdk.limiter import Limiter
from deeplake_sdk.transport import Endpoint, get_endpoint


class Stub:
    """Scripted HTTP/1.1 keep-alive server: ``script(path) -> action`` decides each answer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.inflight = 0
        self.peak = 0
        self.requests = []
        self.script = lambda handler: ("json", 200, {}, {"columns": ["a"], "rows": [[1]]})
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with stub.lock:
                    stub.connections += 1

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.handle_one()

            def do_POST(self):
                self.handle_one()

            def do_DELETE(self):
                self.handle_one()

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub.lock:
                    stub.inflight += 1
                    stub.peak = max(stub.peak, stub.inflight)
                    stub.requests.append((self.path, dict(self.headers), body))
                try:
                    action = stub.script(self)
                    kind = action[0]
                    if kind == "sleep":
                        time.sleep(action[1])
                        action = action[2]
                        kind = action[0]
                    if kind == "reset":
                        self.connection.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()
                        self.close_connection = True
                        return
                    _, status, headers, payload = action
                    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with stub.lock:
                        stub.inflight -= 1

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients that gave up (read-timeout tests) break pipes: expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    s = Stub()
    yield s
    s.close()


HEADERS = {"Authorization": "Bearer t", "Content-Type": "application/json"}


def post(endpoint, timeout=(2.0, 5.0), body=None):
    return endpoint.request("POST", "/q", headers=HEADERS, body=body or {"query": "SELECT 1"},
                            timeout=timeout)


# -- error mapping -------------------------------------------------------------------------

def test_error_for_status_json_and_types():
    body = json.dumps({"error": 'syntax error at "SELEC"', "code": "42601",
                       "request_id": "r-1"}).encode()
    err = error_for_status(400, {}, body)
    assert type(err) is QueryError
    assert (err.status, err.message, err.code, err.request_id) == (
        400, 'syntax error at "SELEC"', "42601", "r-1")
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


# -- limiter -------------------------------------------------------------------------------

def test_limiter_bounds_greenlets():
    lim = Limiter(3)
    seen = []

    def work():
        with lim.slot():
            seen.append(lim.in_flight)
            gevent.sleep(0.01)

    gevent.joinall([gevent.spawn(work) for _ in range(20)])
    assert max(seen) == 3 and lim.peak == 3 and lim.in_flight == 0


def test_limiter_bounds_native_threads():
    lim = Limiter(2)
    seen = []

    def work():
        for _ in range(5):
            with lim.slot():
                seen.append(lim.in_flight)
                time.sleep(0.005)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(seen) == 30 and max(seen) <= 2 and lim.in_flight == 0


def test_limiter_acquire_timeout():
    lim = Limiter(1)
    lim.acquire()
    with pytest.raises(NetworkError, match="not sent"):
        lim.acquire(timeout=0.01)
    lim.release()
    lim.acquire(timeout=0.01)
    lim.release()


def test_adaptive_limiter_shrinks_and_grows_within_bounds():
    lim = Limiter(8, adaptive=True)
    lim.on_overload()
    assert lim.limit == 4
    for _ in range(10):
        lim.on_overload()
    assert lim.limit == 1
    # shrinking withholds tokens as slots are released: only one slot usable now
    lim.acquire()
    lim.release()
    assert lim._reserved == 1  # one token withheld so far
    for _ in range(200):
        lim.on_success()
    assert lim.limit == 8 and lim._reserved == 0
    # all 8 slots usable again
    for _ in range(8):
        lim.acquire(timeout=0.01)
    for _ in range(8):
        lim.release()


def test_adaptive_limiter_effective_bound():
    lim = Limiter(4, adaptive=True)
    for _ in range(3):
        lim.on_overload()
    assert lim.limit == 1
    seen = []

    def work():
        with lim.slot():
            seen.append(lim.in_flight)
            gevent.sleep(0.005)

    gevent.joinall([gevent.spawn(work) for _ in range(12)])
    # the first wave may still use the old tokens; afterwards one at a time
    assert seen[-4:] == [1, 1, 1, 1]


def test_non_adaptive_ignores_feedback():
    lim = Limiter(4)
    lim.on_overload()
    assert lim.limit == 4
    assert Limiter(None).limit is None


# -- endpoint against the stub ---------------------------------------------------------------

def test_registry_shares_endpoints(stub):
    a = get_endpoint(stub.url, 5)
    assert get_endpoint(stub.url + "/", 5) is a
    assert get_endpoint(stub.url, 3) is not a


def test_keepalive_and_bound_unpatched(stub):
    ep = Endpoint(stub.url, 4)
    stub.script = lambda h: ("sleep", 0.02, ("json", 200, {}, {"rows": [[1]]}))
    gs = [gevent.spawn(post, ep) for _ in range(40)]
    gevent.joinall(gs, raise_error=True)
    assert stub.peak == 4  # parallel without monkey-patching ...
    assert stub.connections <= 4  # ... over at most 4 keep-alive connections
    assert ep.limiter.in_flight == 0 and ep.limiter.peak == 4


def test_plain_synchronous_call(stub):
    ep = Endpoint(stub.url, 2)
    assert post(ep) == {"columns": ["a"], "rows": [[1]]}
    _path, headers, body = stub.requests[-1]
    assert json.loads(body) == {"query": "SELECT 1"}
    assert headers["Authorization"] == "Bearer t"


def test_native_threads_share_the_bound(stub):
    ep = Endpoint(stub.url, 3)
    stub.script = lambda h: ("sleep", 0.01, ("json", 200, {}, {}))
    errors = []

    def work():
        try:
            for _ in range(5):
                post(ep)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    assert stub.peak <= 3 and ep.limiter.in_flight == 0


def test_interrupted_waiter_keeps_slot_until_worker_finishes(stub):
    ep = Endpoint(stub.url, 1)
    stub.script = lambda h: ("sleep", 0.3, ("json", 200, {}, {}))
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.05):
        post(ep)
    # the worker thread is still sending: the slot must still be taken
    assert ep.limiter.in_flight == 1
    deadline = time.monotonic() + 5
    while ep.limiter.in_flight and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert ep.limiter.in_flight == 0
    stub.script = lambda h: ("json", 200, {}, {"ok": 1})
    assert post(ep) == {"ok": 1}
    assert stub.peak == 1


def test_network_error_classification(stub):
    ep = Endpoint(stub.url, 2)
    stub.script = lambda h: ("reset",)
    with pytest.raises(NetworkError) as info:
        post(ep)
    assert info.value.ambiguous  # sent, then the connection died: may have run
    stub.script = lambda h: ("sleep", 1.0, ("json", 200, {}, {}))
    with pytest.raises(NetworkError, match="no answer") as info:
        post(ep, timeout=(1.0, 0.2))
    assert info.value.ambiguous
    # nothing listens on this port: refused, surely not executed
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(NetworkError, match="cannot connect") as info:
        post(Endpoint(f"http://127.0.0.1:{port}", 1))
    assert not info.value.ambiguous
    assert ep.limiter.in_flight == 0


def test_http_errors_and_bodies(stub):
    ep = Endpoint(stub.url, 2)
    stub.script = lambda h: ("json", 503, {"Retry-After": "1"}, {"error": "busy"})
    with pytest.raises(RateLimitError) as info:
        post(ep)
    assert info.value.retry_after == 1.0 and info.value.message == "busy"
    stub.script = lambda h: ("json", 200, {}, b"")
    assert post(ep) == {}
    stub.script = lambda h: ("json", 200, {}, b"<html>hi</html>")
    with pytest.raises(ServerError, match="not JSON"):
        post(ep)


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
        (u3.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")), True,
         "reset"),
        (u3.SSLError("bad cert"), False, "bad cert"),
        (requests.exceptions.ReadTimeout("slow"), True, "no answer"),
        (requests.exceptions.ConnectTimeout("slow"), False, "could not connect"),
        (requests.exceptions.ConnectionError(
            u3.MaxRetryError(None, "/", u3.NewConnectionError(None, "refused"))), False,
         "cannot connect"),
        (ConnectionResetError(104, "reset by peer"), True, "lost before the answer"),
    ]
    for exc, ambiguous, text in cases:
        err = network_error(exc, url, timeout)
        assert isinstance(err, NetworkError), exc
        assert err.ambiguous is ambiguous, exc
        assert text in str(err), (exc, str(err))
    assert isinstance(network_error(u3.LocationParseError("x"), url, timeout), ConfigError)


def test_proxy_path_uses_the_session(stub):
    ep = Endpoint(stub.url, 2)
    ep._direct = False  # what a configured proxy selects
    assert post(ep) == {"columns": ["a"], "rows": [[1]]}
    stub.script = lambda h: ("reset",)
    with pytest.raises(NetworkError) as info:
        post(ep)
    assert info.value.ambiguous


def test_cooperative_sleep_creates_no_hub_in_plain_threads():
    from deeplake_sdk._coop import cooperative_sleep, hub_if_exists

    seen = []

    def plain():
        cooperative_sleep(0.01)
        seen.append(hub_if_exists())

    t = threading.Thread(target=plain)
    t.start()
    t.join()
    assert seen == [None]


def test_forked_child_gets_its_own_endpoints(stub):
    import os

    parent = get_endpoint(stub.url, 2)
    assert post(parent)  # a pooled keep-alive connection now exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not reuse the parent's endpoint (and its socket)
        try:
            child = get_endpoint(stub.url, 2)
            ok = child is not parent and post(child) == {"columns": ["a"], "rows": [[1]]}
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    assert post(parent)  # the parent's connection is intact
