"""HTTP transport: one pooled, bounded endpoint per service URL, shared by the process.

An :class:`Endpoint` owns a :class:`requests.Session` (keep-alive pool of ``max_concurrency``
connections, ``pool_block=False``, no urllib3-level retries) and a
:class:`~deeplake_sdk.limiter.Limiter`. Clients created with the same URL and the same
concurrency settings share one endpoint (:func:`get_endpoint`), so the bound holds for the
whole process however many clients exist. The bound is the limiter's, never the pool's
(requests passes no pool timeout, so ``pool_block=True`` would wait forever).

Requests go straight to the session adapter's urllib3 connection pool (same pool, TLS and
timeout settings), skipping requests' per-call preparation, which cost about twice the CPU of
the whole rest of a query; with a proxy configured the full ``session.request`` path is used.

Cooperative execution without global side effects (importing the SDK patches nothing):

* if the user ran ``gevent.monkey.patch_all()``, the request runs in the calling greenlet
  (sockets are cooperative);
* otherwise, if the calling thread runs a gevent hub (greenlets may be waiting to run), the
  blocking call is dispatched to a per-hub :class:`gevent.threadpool.ThreadPool` and the caller
  waits cooperatively; other greenlets keep running;
* otherwise (a plain synchronous caller or a native thread without greenlets) the call simply
  blocks the calling thread.

If a waiting greenlet is interrupted (``gevent.Timeout``, ``kill``) while a worker thread is
still sending, its slot is released only when the worker finishes, so the in-flight bound is
never exceeded.

Timeouts: every request has a connect timeout (default 10 s) and a read timeout (the
statement timeout plus a margin, see :class:`deeplake_sdk.api.Timeout`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from typing import Any
from urllib.parse import urlsplit

import gevent
import requests
import urllib3
from gevent.threadpool import ThreadPool
from requests.adapters import HTTPAdapter

from deeplake_sdk._coop import hub_if_exists, sockets_patched
from deeplake_sdk.errors import ServerError
from deeplake_sdk.http_errors import error_for_status, network_error, origin, summarise
from deeplake_sdk.limiter import Limiter

__all__ = ["UNBOUNDED_POOL", "Endpoint", "close_endpoints", "decode_answer", "get_endpoint"]

logger = logging.getLogger(__name__)

#: Connection-pool and thread-pool size used when concurrency is unbounded.
UNBOUNDED_POOL = 64


class Endpoint:
    """A keep-alive connection pool and a concurrency limit for one service origin.

    Use :func:`get_endpoint` rather than building one: that is what makes the pool and the
    limit shared by every client of the process.

    Args:
        base_url: Service base URL; requests go to ``base_url + path``.
        max_concurrency: Maximum requests in flight (``None``: unbounded).
        adaptive: Adapt the limit to 429/503 answers (see :class:`~deeplake_sdk.limiter.Limiter`).
    """

    def __init__(self, base_url: str, max_concurrency: int | None = 5, *, adaptive: bool = True):
        self.origin = origin(base_url)
        self.base_url = base_url.rstrip("/")
        self.limiter = Limiter(max_concurrency, adaptive=adaptive)
        self.pool_size = max_concurrency or UNBOUNDED_POOL
        session = requests.Session()
        adapter = HTTPAdapter(
            pool_connections=1, pool_maxsize=self.pool_size, pool_block=False, max_retries=0
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # Resolve proxy / CA settings once instead of scanning the environment per request.
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            session.verify = ca_bundle
        self.session = session
        self._adapter = adapter
        self._http_pool: Any = None
        self._prefix = urlsplit(self.base_url).path
        # With a proxy, requests' full machinery is used; otherwise its adapter's urllib3
        # pool is driven directly, which costs about a third of the CPU per request.
        self._direct = not any(
            session.proxies.get(k) for k in (urlsplit(self.base_url).scheme, "all")
        )
        self._pools: weakref.WeakKeyDictionary[Any, ThreadPool] = weakref.WeakKeyDictionary()
        self._pools_lock = threading.Lock()
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"<Endpoint {self.origin} limit={self.limiter.max_limit}>"

    def close(self) -> None:
        """Close pooled connections (the endpoint stays usable; new connections are opened)."""
        self._http_pool = None
        self.session.close()

    def _connection_pool(self) -> Any:
        """The adapter's urllib3 pool for this origin, with the session's TLS settings."""
        pool = self._http_pool
        if pool is None:
            request = requests.Request("GET", self.base_url + "/").prepare()
            verify = self.session.verify
            if hasattr(self._adapter, "get_connection_with_tls_context"):
                pool = self._adapter.get_connection_with_tls_context(request, verify)
            else:  # requests < 2.32
                pool = self._adapter.get_connection(request.url)
            self._adapter.cert_verify(pool, request.url, verify, None)
            self._http_pool = pool
        return pool

    # -- execution strategy ------------------------------------------------------------------
    def _threadpool(self, hub: Any) -> ThreadPool:
        pool = self._pools.get(hub)
        if pool is None:
            with self._pools_lock:
                pool = self._pools.get(hub)
                if pool is None:
                    pool = ThreadPool(self.pool_size, hub=hub)
                    self._pools[hub] = pool
        return pool

    def _run(self, fn: Any, *args: Any, acquire_timeout: float | None) -> Any:
        """Run ``fn(*args)`` holding a slot, cooperatively (see the module documentation)."""
        limiter = self.limiter
        limiter.acquire(acquire_timeout)
        hub = None if sockets_patched() else hub_if_exists()
        if hub is None or gevent.getcurrent() is hub:
            try:
                return fn(*args)
            finally:
                limiter.release()
        try:
            result = self._threadpool(hub).spawn(_capture, fn, *args)
        except BaseException:
            limiter.release()
            raise
        # Released when the worker is done, even if this greenlet stops waiting earlier.
        result.rawlink(lambda _result: limiter.release())
        value, error = result.get()
        if error is not None:
            raise error
        return value

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
    ) -> Any:
        """Send one HTTP request (no retry) and return its decoded JSON body.

        Args:
            method: HTTP method.
            path: Absolute path, e.g. ``/workspaces/default/tables/query``.
            headers: Request headers (authentication included).
            body: JSON-serialisable body, or ``None``.
            timeout: ``(connect, read)`` timeouts in seconds.
            acquire_timeout: Longest wait for a free slot, in seconds (``None``: no limit).

        Returns:
            The decoded JSON answer (``{}`` for an empty 2xx body).

        Raises:
            ApiError: The service answered with an error status (typed by status).
            NetworkError: No usable answer; ``ambiguous`` tells whether it may have executed.
        """
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        started = time.perf_counter()
        status, answer_headers, content = self._run(
            self._send, method, path, headers, data, timeout, acquire_timeout=acquire_timeout
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug("%s %s -> %s in %.1f ms", method, path, status, elapsed_ms)
        if status in (429, 503):
            self.limiter.on_overload()
        elif status < 500:
            self.limiter.on_success()
        return decode_answer(status, answer_headers, content)

    def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        data: bytes | None,
        timeout: tuple[float, float],
    ) -> tuple[int, Any, bytes]:
        self.requests_sent += 1
        try:
            if not self._direct:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    headers=headers,
                    data=data,
                    timeout=timeout,
                    allow_redirects=False,
                )
                return response.status_code, response.headers, response.content
            answer = self._connection_pool().urlopen(
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


def _capture(fn: Any, *args: Any) -> tuple[Any, BaseException | None]:
    """Run ``fn`` in a worker thread, returning its error instead of raising it.

    (gevent prints the traceback of every thread-pool task that raises.)
    """
    try:
        return fn(*args), None
    except Exception as exc:
        return None, exc


_registry: dict[tuple[str, int | None, bool], Endpoint] = {}
_registry_lock = threading.Lock()


def get_endpoint(
    base_url: str, max_concurrency: int | None = 5, *, adaptive: bool = True
) -> Endpoint:
    """Return the process-wide endpoint for ``base_url`` and these concurrency settings.

    Every client of the process asking for the same origin (scheme, host, port), limit and
    mode gets the same object: one pool and one bound. A client asking for different settings
    gets an endpoint of its own.

    Args:
        base_url: Service base URL.
        max_concurrency: Maximum requests in flight (``None``: unbounded).
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


def _forget_after_fork() -> None:
    # A forked child must not share the parent's keep-alive sockets or its hub's primitives:
    # it starts with no endpoints (the parent's stay untouched).
    global _registry_lock
    _registry.clear()
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def close_endpoints() -> None:
    """Close and forget every endpoint of the process (tests, or before ``fork``)."""
    with _registry_lock:
        endpoints = list(_registry.values())
        _registry.clear()
    for endpoint in endpoints:
        endpoint.close()
