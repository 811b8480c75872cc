"""HTTP transport: one pooled, bounded endpoint per service URL, shared by the process.

An :class:`Endpoint` owns keep-alive connections (a :class:`requests.Session` whose adapter
pools ``max_concurrency`` connections, ``pool_block=False``, no urllib3-level retries) and a
:class:`~deeplake_sdk.limiter.Limiter`. Clients created with the same URL and the same
concurrency settings share one endpoint (:func:`get_endpoint`), so the bound holds for the
whole process however many clients and threads use it. The bound is the limiter's, never the
pool's (requests passes no pool timeout, so ``pool_block=True`` would wait forever).

Requests go straight to the adapter's urllib3 connection pool (same pool, TLS and timeout
settings), skipping requests' per-call preparation, which cost about twice the CPU of the whole
rest of a query; with a proxy configured the full ``session.request`` path is used.

Execution strategy (importing the SDK patches nothing), chosen per request:

* sockets monkey-patched (``gevent.monkey.patch_all()``): the request runs in the calling
  greenlet on a connection pool *of the calling thread's hub*: a patched socket belongs to the
  hub that created it and cannot be used from another thread's hub;
* not patched, and the caller is a greenlet of a running hub: the blocking call is handed to
  the endpoint's native worker threads (at most one per slot, shared by every thread and hub)
  and the greenlet waits on its own hub; other greenlets keep running;
* otherwise (a plain synchronous caller, a native thread without greenlets, or the hub
  itself) the call simply blocks the calling thread.

Cancellation: a caller interrupted while its request is in flight (``gevent.Timeout``,
``kill``, ``KeyboardInterrupt``) does not leave it behind. Running in the caller's greenlet, the
request stops with it (its connection is discarded); running on a worker thread, its socket is
shut down, which ends the blocking read at once, and the caller waits for the worker to let go
before the interruption propagates. Either way the slot is free when the caller's exception is
raised, and the request's fate on the server is unknown (it may have run).

Processes: an endpoint notices on first use in a forked child (a pid check) that it was
inherited, and starts over there with new connections, worker threads and limiter state; the
parent keeps its own. At the fork itself, the child's copies of the endpoint's sockets are
replaced by a closed socket, so that no inherited greenlet of the child can read an answer meant
for the parent.

Timeouts: every request has a connect timeout (default 10 s) and a read timeout (the
statement timeout plus a margin, see :class:`deeplake_sdk.api.Timeout`).
"""

from __future__ import annotations

import _socket
import atexit
import contextlib
import json
import logging
import os
import socket
import time
import weakref
from _queue import SimpleQueue  # the C queue: blocks natively, whatever is patched
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from deeplake_sdk._coop import (
    Completion,
    allocate_lock,
    hub_if_exists,
    in_greenlet,
    load_gevent,
    original,
    sockets_patched,
)
from deeplake_sdk.errors import NetworkError, ServerError, ServiceUnavailableError
from deeplake_sdk.hostshare import HostShare, share_for
from deeplake_sdk.http_errors import (
    OVERLOAD_STATUSES,
    error_for_status,
    is_overload,
    network_error,
    origin,
    parse_retry_after,
    summarise,
)
from deeplake_sdk.limiter import (
    DEFAULT_MAX_CONCURRENCY,
    ERROR,
    OK,
    OVERLOAD,
    Limiter,
    Sample,
    policy_for,
)

__all__ = [
    "UNBOUNDED_POOL",
    "Endpoint",
    "close_endpoints",
    "close_thread_connections",
    "decode_answer",
    "get_endpoint",
    "origin_limiter",
]

logger = logging.getLogger(__name__)

#: Connection-pool and worker-thread count used when concurrency is unbounded.
UNBOUNDED_POOL = 64

_start_new_thread = original("_thread", "start_new_thread")
_thread_local = original("_thread", "_local")


# -- connections that an attempt can cancel and a forked child can disown -----------------------
class _Worker(_thread_local):  # type: ignore[misc]
    """Per native thread: the attempt a worker thread is running (``None`` elsewhere)."""

    attempt: _Attempt | None = None


_worker = _Worker()
#: Every connection the endpoints opened, so that a forked child can disown their sockets.
_connections: weakref.WeakSet[HTTPConnection] = weakref.WeakSet()


class _TrackedConnection:
    """Mixin for urllib3 connections: registered for fork, reachable by a cancelling caller."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _connections.add(self)  # type: ignore[arg-type]
        _attach(self)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _attach(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


def _attach(conn: Any) -> None:
    attempt = _worker.attempt
    if attempt is not None:
        attempt.attach(conn)


class _HTTPConnection(_TrackedConnection, HTTPConnection):
    pass


class _HTTPSConnection(_TrackedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    """requests' adapter, with pools whose connections are tracked (direct and proxied)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


class _Connections:
    """One keep-alive pool: a requests session, its adapter, and the adapter's urllib3 pool."""

    def __init__(self, base_url: str, pool_size: int) -> None:
        session = requests.Session()
        adapter = _Adapter(
            pool_connections=1, pool_maxsize=pool_size, pool_block=False, max_retries=0
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # Resolve proxy / CA settings once instead of scanning the environment per request.
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            session.verify = ca_bundle
        self.base_url = base_url
        self.session = session
        self.adapter = adapter
        self.http_pool: Any = None
        # With a proxy, requests' full machinery is used; otherwise its adapter's urllib3
        # pool is driven directly, which costs about a third of the CPU per request.
        scheme = urlsplit(base_url).scheme
        self.direct = not any(session.proxies.get(k) for k in (scheme, "all"))

    def pool(self) -> Any:
        """The adapter's urllib3 pool for this origin, with the session's TLS settings."""
        pool = self.http_pool
        if pool is None:
            request = requests.Request("GET", self.base_url + "/").prepare()
            verify = self.session.verify
            if hasattr(self.adapter, "get_connection_with_tls_context"):
                pool = self.adapter.get_connection_with_tls_context(request, verify)
            else:  # requests < 2.32
                pool = self.adapter.get_connection(request.url)
            self.adapter.cert_verify(pool, request.url, verify, None)
            self.http_pool = pool
        return pool

    def close(self) -> None:
        """Close every pooled connection now.

        ``Session.close()`` only forgets urllib3's pools: urllib3 2 closes a pool's connections
        when the pool is garbage collected. Something still holding the pool would delay that,
        maybe until the hub of the connections' sockets is gone (a thread's own hub), where
        closing them fails. So each pool is closed here.
        """
        self.http_pool = None
        adapter = self.adapter
        for manager in (adapter.poolmanager, *adapter.proxy_manager.values()):
            for key in manager.pools.keys():  # noqa: SIM118 (no iteration: not thread-safe)
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
        self.session.close()


# -- one attempt, and the worker threads that run them --------------------------------------------
class _Attempt:
    """One HTTP attempt holding one slot; it releases the slot itself when it ends."""

    __slots__ = (
        "args",
        "conn",
        "done",
        "endpoint",
        "error",
        "forks",
        "limiter",
        "lock",
        "result",
        "stopped",
    )

    def __init__(self, endpoint: Endpoint, args: tuple) -> None:
        self.endpoint = endpoint
        self.limiter = endpoint.limiter  # the slot is taken from, and given back to, this one
        self.forks = _forks  # a copy inherited by a forked child gives no slot back there
        self.args = args
        self.result: Any = None
        self.error: BaseException | None = None
        # Set for a worker thread's attempt only (an inline one needs no hand-over).
        self.done: Completion | None = None
        self.lock: Any = None
        self.conn: Any = None
        self.stopped = False

    def run(self) -> None:
        """Send, record the outcome, release the slot (never raises ``Exception``)."""
        endpoint = self.endpoint
        outcome = ERROR
        retry_after = None
        started = time.perf_counter()
        try:
            if self.stopped:
                raise ConnectionAbortedError("the caller gave up before the request was sent")
            self.result = endpoint._send(*self.args)  # (connections, request)
            status = self.result[0]
            outcome = OVERLOAD if status in OVERLOAD_STATUSES else OK if status < 500 else ERROR
            if outcome == OVERLOAD:
                retry_after = parse_retry_after(self.result[1].get("retry-after"))
        except Exception as exc:  # handed to the caller
            self.error = exc
        finally:
            if self.forks == _forks:
                rtt = time.perf_counter() - started
                limited = self.result is not None and self.result[0] == 429
                self.limiter.release(
                    Sample(outcome, rtt, retry_after=retry_after, rate_limited=limited)
                )
            if self.done is not None:
                with self.lock:
                    self.conn = None
                self.done.set()

    def attach(self, conn: Any) -> None:
        """The connection this attempt is using (called on the worker thread)."""
        with self.lock:
            self.conn = conn
            stopped = self.stopped
        if stopped:
            raise ConnectionAbortedError("the caller gave up; the request was cancelled")

    def cancel(self) -> None:
        """Stop the attempt from another thread: shut its socket down (its read ends now)."""
        with self.lock:
            self.stopped = True
            sock = getattr(self.conn, "sock", None)
        if sock is not None:
            # The plain socket's shutdown (SSLSocket's would drop its SSL object); an error
            # means already closed: the attempt ends by itself.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Workers:
    """Native worker threads of one endpoint (one per concurrent attempt at most)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.queue: SimpleQueue = SimpleQueue()
        self.lock = allocate_lock()
        self.threads = 0
        self.idle = 0
        self.pending: set[_Attempt] = set()  # queued or running

    def submit(self, attempt: _Attempt) -> None:
        """Queue ``attempt``; an idle worker takes it, or a new one if none is idle."""
        with self.lock:
            start = not self.idle and self.threads < self.cap
            if start:
                self.threads += 1
            elif self.idle:
                self.idle -= 1  # that idle worker is this attempt's
            self.pending.add(attempt)
        if start:
            try:  # started first: if that fails, nothing was queued
                _start_new_thread(self._main, ())
            except BaseException:
                with self.lock:
                    self.threads -= 1
                    self.pending.discard(attempt)
                raise
        self.queue.put(attempt)

    def _main(self) -> None:
        get, lock = self.queue.get, self.lock
        while True:
            attempt = get()
            if attempt is None:
                return
            _worker.attempt = attempt
            try:
                attempt.run()
            except BaseException:  # a bug: say so, and keep the worker serving
                logger.exception("request worker: unexpected error")
            finally:
                _worker.attempt = None
            with lock:
                self.idle += 1
                self.pending.discard(attempt)

    def orphan(self) -> None:
        """In a forked child: fail the attempts of worker threads that stayed in the parent.

        A greenlet inherited while waiting for one of them is woken with an ambiguous
        :class:`~deeplake_sdk.errors.NetworkError` (its answer goes to the parent), instead
        of waiting forever for a thread that does not exist here.
        """
        for attempt in list(self.pending):
            attempt.error = NetworkError(
                "the request was sent by the parent process before it forked; its answer "
                "went to the parent (the request may have run)",
                ambiguous=True,
            )
            if attempt.done is not None:
                attempt.done.set_in_forked_child()
        self.pending.clear()

    def stop(self) -> None:
        """Let every worker thread end (after the attempts already queued)."""
        with self.lock:
            count, self.threads, self.idle = self.threads, 0, 0
        for _ in range(count):
            self.queue.put(None)


class Endpoint:
    """A keep-alive connection pool and a concurrency limit for one service origin.

    Use :func:`get_endpoint` rather than building one: that is what makes the pool and the
    limit shared by every client of the process. An endpoint may be used by any number of
    greenlets and native threads at once, with or without monkey-patching, and keeps working
    in a forked child (which gets connections, workers and limiter state of its own).

    Every endpoint of one origin (scheme, host, port), whatever its settings, takes its slots
    from the origin's limiter (:func:`origin_limiter`: adaptive, shared by the processes of
    the host), so that clients of one process never add up their bounds. A ``max_concurrency``
    below that limiter's ceiling caps the endpoint's own attempts on top (a fixed cap, or an
    AIMD one when ``adaptive``). Only ``max_concurrency=None, adaptive=False`` opts out of
    every bound (the benchmark's baseline).

    Args:
        base_url: Service base URL; requests go to ``base_url + path``.
        max_concurrency: This endpoint's cap on requests in flight (``None``: no cap of its
            own; the default is the ceiling of the origin's adaptive limit).
        adaptive: Adapt the cap to 429/503 answers (see :func:`~deeplake_sdk.limiter.policy_for`).
    """

    def __init__(
        self,
        base_url: str,
        max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY,
        *,
        adaptive: bool = True,
    ):
        self.origin = origin(base_url)
        self.base_url = base_url.rstrip("/")
        self.pool_size = max_concurrency or UNBOUNDED_POOL
        self.max_concurrency = max_concurrency
        self.adaptive = adaptive
        self._prefix = urlsplit(self.base_url).path
        self._count_lock = allocate_lock()
        self.limiter = self._make_limiter()
        self._start()

    def _make_limiter(self) -> Limiter:
        """The limiter of this endpoint's attempts: the origin's, under a cap of its own."""
        cap, adaptive = self.max_concurrency, self.adaptive
        if cap is None and not adaptive:
            return Limiter(None, name=self.origin)  # unbounded: counted only
        shared = origin_limiter(self.origin)
        if adaptive and (cap is None or cap >= (shared.max_limit or 0)):
            return shared
        return Limiter(None, policy=policy_for(cap, adaptive), parent=shared, name=self.origin)

    def _start(self) -> None:
        """Connections, workers and counters of this process (again in a forked child)."""
        self._pid = os.getpid()
        self._shared = _Connections(self.base_url, self.pool_size)
        self._direct = self._shared.direct
        self._per_hub = _thread_local()
        self._workers = _Workers(self.pool_size)
        weakref.finalize(self, self._workers.stop)
        self._sent = 0

    def _check_process(self) -> None:
        """Start over if this object was inherited by a forked child."""
        if self._pid == os.getpid():
            return
        with _fork_lock:
            if self._pid != os.getpid():
                logger.debug("%r: first use in forked child %d: new connections", self, os.getpid())
                inherited = self._workers
                self._count_lock = allocate_lock()
                self.limiter = self._make_limiter()
                self._start()
                inherited.orphan()

    def __repr__(self) -> str:
        return f"<Endpoint {self.origin} limit={self.limiter.max_limit}>"

    @property
    def session(self) -> requests.Session:
        """The requests session of the shared pool (used when sockets are not patched)."""
        return self._shared.session

    def connect_hung_for(self) -> float | None:
        """Seconds since a connection to this origin last hung until its connect timeout.

        ``None`` when none did since the origin last answered (in this process, whatever the
        endpoint): see :attr:`RetryPolicy.connect_cooldown <deeplake_sdk.retry.RetryPolicy>`.
        """
        at = _connect_hung.get(self.origin)
        return None if at is None else time.monotonic() - at

    @property
    def requests_sent(self) -> int:
        """HTTP attempts sent by this process through this endpoint (exact across threads)."""
        return self._sent

    def close(self) -> None:
        """Close pooled connections (the endpoint stays usable; new connections are opened).

        Closes the shared pool and the calling thread's own pool (patched sockets); pools of
        other hubs are closed by their own threads' exit.
        """
        self._shared.close()
        self.close_own()

    def close_own(self) -> None:
        """Close the calling thread's own pool (patched sockets), if it has one."""
        own = getattr(self._per_hub, "connections", None)
        if own is not None:
            own[1].close()
            self._per_hub.connections = None

    def _connections(self, patched: bool) -> _Connections:
        """The pool to use from here: the shared one, or this hub's if sockets are ``patched``."""
        if not patched:
            return self._shared
        hub = load_gevent().get_hub()  # patched socket I/O needs (and would create) it anyway
        own = getattr(self._per_hub, "connections", None)
        if own is None or own[0] is not hub:
            own = (hub, _Connections(self.base_url, self.pool_size))
            self._per_hub.connections = own
        return own[1]

    # -- one HTTP attempt --------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        body: Any = None,
        timeout: tuple[float, float],
        acquire_timeout: float | None = None,
        retry_of: BaseException | None = None,
        urgent: bool = False,
    ) -> Any:
        """Send one HTTP request (no retry) and return its decoded JSON body.

        Args:
            method: HTTP method.
            path: Absolute path, e.g. ``/workspaces/default/tables/query``.
            headers: Request headers (authentication included).
            body: JSON-serialisable body, or ``None``.
            timeout: ``(connect, read)`` timeouts in seconds.
            acquire_timeout: Longest wait for a free slot, in seconds (``None``: no limit).
            retry_of: The failure this request retries, if it is a retry. The retry of a
                refusal for load (429, 503) is spent from the origin's retry budget: when that
                is exhausted ``retry_of`` is raised again, marked ``budget_spent`` (not to be
                retried), and nothing is sent. Other failures say nothing about load: their
                retries are bounded by the call's policy alone.
            urgent: Wait for a slot ahead of the others (see
                :meth:`~deeplake_sdk.limiter.Limiter.acquire`).

        Returns:
            The decoded JSON answer (``{}`` for an empty 2xx body).

        Raises:
            ApiError: The service answered with an error status (typed by status).
            NetworkError: No usable answer; ``ambiguous`` tells whether it may have executed.
        """
        self._check_process()
        if is_overload(retry_of) and not self.limiter.allow_retry():
            retry_of.budget_spent = True  # type: ignore[attr-defined]
            logger.info("%s: retry budget spent, not retrying: %s", self.origin, retry_of)
            raise retry_of
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        started = time.perf_counter()
        request = (method, path, headers, data, timeout)
        patched = sockets_patched()
        attempt = _Attempt(self, (self._connections(patched), request))
        hub = None if patched else hub_if_exists()
        inline = hub is None or not in_greenlet(hub)
        attempt.limiter.acquire(acquire_timeout, urgent=urgent)
        if inline:
            attempt.run()  # in this greenlet / thread; an interruption stops it right here
        else:
            self._run_on_worker(attempt)
        if attempt.error is not None:
            if getattr(attempt.error, "timed_out", False):
                _connect_hung[self.origin] = time.monotonic()
            raise attempt.error
        _connect_hung.pop(self.origin, None)
        status, answer_headers, content = attempt.result
        logger.debug(
            "%s %s -> %s in %.1f ms", method, path, status, (time.perf_counter() - started) * 1000
        )
        try:
            return decode_answer(status, answer_headers, content)
        except ServiceUnavailableError as exc:
            exc.requeue = self.limiter.allows_requeue()
            raise

    def _run_on_worker(self, attempt: _Attempt) -> None:
        """Run ``attempt`` on a worker thread; the calling greenlet waits on its own hub."""
        attempt.done = done = Completion()
        attempt.lock = allocate_lock()
        try:
            self._workers.submit(attempt)
        except BaseException:
            attempt.limiter.release()
            raise
        try:
            done.wait()
        except BaseException:
            # The caller gave up: cancel the request and wait for the worker to let go of
            # it, so that nothing is left in flight when the interruption propagates.
            attempt.cancel()
            done.wait()
            raise

    def _send(self, connections: _Connections, request: tuple) -> tuple[int, Any, bytes]:
        """One HTTP exchange: ``request`` is ``(method, path, headers, body bytes, timeout)``."""
        method, path, headers, data, timeout = request
        with self._count_lock:
            self._sent += 1
        try:
            if not (self._direct and connections.direct):
                response = connections.session.request(
                    method,
                    self.base_url + path,
                    headers=headers,
                    data=data,
                    timeout=timeout,
                    allow_redirects=False,
                )
                return response.status_code, response.headers, response.content
            answer = connections.pool().urlopen(
                method,
                self._prefix + path,
                body=data,
                headers=headers,
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                retries=False,
                redirect=False,
                preload_content=True,
                assert_same_host=False,
            )
            return answer.status, answer.headers, answer.data
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise network_error(exc, self.base_url, timeout) from exc


def decode_answer(status: int, headers: Any, content: bytes) -> Any:
    """Decode one HTTP answer: the JSON body of a 2xx, else the typed error it stands for.

    Args:
        status: HTTP status.
        headers: Answer headers (case-insensitive mapping).
        content: Raw body.

    Returns:
        The decoded JSON body (``{}`` for an empty 2xx body).

    Raises:
        ServerError: A 2xx whose body is not JSON (a gateway page, say).
        ApiError: The typed error of a non-2xx status (see ``error_for_status``).
    """
    if 200 <= status < 300:
        if not content.strip():
            return {}
        try:
            return json.loads(content)
        except ValueError:
            raise ServerError(
                status, f"answer is not JSON: {summarise(content)}", headers.get("x-request-id")
            ) from None
    raise error_for_status(status, headers, content)


# -- the process-wide registry, and fork -------------------------------------------------------
_registry: dict[tuple[str, int | None, bool], Endpoint] = {}
_origins: dict[str, Limiter] = {}
_origins_pid = os.getpid()
_origins_lock = allocate_lock()
#: The host-share files this process's origin limiters joined (left at exit, in one place:
#: :func:`leave_host_shares`).
_shares: dict[str, HostShare] = {}  # by file
#: When a connection to an origin last hung until its connect timeout (monotonic seconds),
#: until the origin answers again.
_connect_hung: dict[str, float] = {}
_registry_lock = allocate_lock()
_fork_lock = allocate_lock()
#: Forks this process descends from (since this module was imported).
_forks = 0


def origin_limiter(origin_url: str) -> Limiter:
    """The process's limiter of one origin (a new one in a forked child).

    Its policy is :class:`~deeplake_sdk.limiter.GradientLimit` with the default ceiling, its
    limit is shared with the other processes of the host (:mod:`deeplake_sdk.hostshare`), and
    it holds the origin's retry budget and ``Retry-After`` pauses.

    Args:
        origin_url: A normalised origin (``Endpoint.origin``).
    """
    global _origins_pid
    with _origins_lock:
        if _origins_pid != os.getpid():
            _origins.clear()
            _origins_pid = os.getpid()
        limiter = _origins.get(origin_url)
        if limiter is None:
            share = share_for(origin_url)
            limiter = Limiter(
                None, policy=policy_for(DEFAULT_MAX_CONCURRENCY, True), share=share, name=origin_url
            )
            _origins[origin_url] = limiter
            if share is not None:
                _shares[str(share.path)] = share
    return limiter


def leave_host_shares() -> None:
    """Remove this process's entries from the host's shared budgets.

    Done at exit; for a process that ends with :func:`os._exit`, which skips the exit
    handlers (its entry would stay in the file of an origin no other process uses again; see
    :mod:`~deeplake_sdk.hostshare`).
    """
    with _origins_lock:
        shares = [s for s in _shares.values() if s.pid == os.getpid()]
    for share in shares:
        share.leave()


atexit.register(leave_host_shares)


def get_endpoint(
    base_url: str, max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY, *, adaptive: bool = True
) -> Endpoint:
    """Return the process-wide endpoint for ``base_url`` and these concurrency settings.

    Every client of the process asking for the same origin (scheme, host, port), limit and
    mode gets the same object: one pool and one bound. A client asking for different settings
    gets an endpoint of its own.

    Args:
        base_url: Service base URL.
        max_concurrency: The endpoint's cap on requests in flight (see :class:`Endpoint`).
        adaptive: Adaptive limit.
    """
    key = (base_url.rstrip("/").lower(), max_concurrency, bool(adaptive))
    endpoint = _registry.get(key)
    if endpoint is None:
        with _registry_lock:
            endpoint = _registry.get(key)
            if endpoint is None:
                endpoint = Endpoint(base_url, max_concurrency, adaptive=adaptive)
                _registry[key] = endpoint
    return endpoint


def close_endpoints() -> None:
    """Close and forget every endpoint and origin limiter of the process.

    For tests, or to drop idle connections; clients keep the endpoint they have.
    """
    with _registry_lock:
        endpoints = list(_registry.values())
        _registry.clear()
    with _origins_lock:
        _origins.clear()
    for endpoint in endpoints:
        endpoint.close()


def close_thread_connections() -> None:
    """Close the calling thread's own pools of every endpoint, before its hub goes away.

    A thread that ran patched requests on a hub of its own (the journal's flusher) calls this
    before destroying the hub: a socket closed later, by the garbage collector, would touch
    the destroyed loop.
    """
    with _registry_lock:
        endpoints = list(_registry.values())
    for endpoint in endpoints:
        endpoint.close_own()


def _after_fork_in_child() -> None:
    """Runs in a forked child, before anything else: locks anew, inherited sockets disowned.

    Locks held by other threads of the parent at the fork would stay held forever here. The
    child's copies of the parent's sockets are pointed at a closed socket (``dup2``): a
    greenlet inherited in the middle of a request then fails in the child instead of racing
    the parent for its answer, and nothing in the child can write on the parent's
    connections. The parent's connections are untouched (closing a copy does not end them).
    Endpoints themselves start over lazily, on first use (:meth:`Endpoint._check_process`).
    """
    global _registry_lock, _fork_lock, _forks, _origins_lock
    _forks += 1
    _registry_lock = allocate_lock()
    _origins_lock = allocate_lock()
    _fork_lock = allocate_lock()
    inherited = [getattr(conn, "sock", None) for conn in list(_connections)]
    _connections.clear()
    fds = [fd for fd in (s.fileno() for s in inherited if s is not None) if fd >= 0]
    if not fds:
        return
    dead, peer = _socket.socketpair()
    peer.close()  # reads on ``dead`` see end-of-file, writes fail
    try:
        for fd in fds:
            os.dup2(dead.fileno(), fd)
    finally:
        dead.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
