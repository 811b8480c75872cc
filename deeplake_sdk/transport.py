"""HTTP transport: one pooled, bounded endpoint per service URL, shared by the process.

An :class:`Endpoint` owns a :class:`requests.Session` (keep-alive pool of ``max_concurrency``
connections, ``pool_block=False``, no urllib3-level retries) and a
:class:`~deeplake_sdk.limiter.Limiter`. Clients created with the same URL and the same
concurrency settings share one endpoint (:func:`get_endpoint`), so the bound holds for the
whole process however many clients exist.

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
import re
import threading
import time
import weakref
from typing import Any
from urllib.parse import urlsplit

import gevent
import requests
import urllib3.exceptions
from gevent.monkey import is_module_patched
from gevent.threadpool import ThreadPool
from requests.adapters import HTTPAdapter

from deeplake_sdk.errors import (
    AlreadyExistsError,
    ApiError,
    AuthError,
    ConfigError,
    NetworkError,
    QueryError,
    RateLimitError,
    ServerError,
)
from deeplake_sdk.limiter import Limiter
from deeplake_sdk.retry import is_already_exists, parse_retry_after

try:  # gevent >= 20: tells whether this thread already has a hub, without creating one
    from gevent._hub_local import get_hub_if_exists as _hub_if_exists
except ImportError:  # pragma: no cover
    from gevent.hub import _get_hub as _hub_if_exists  # type: ignore[attr-defined,no-redef]

__all__ = ["UNBOUNDED_POOL", "Endpoint", "close_endpoints", "error_for_status", "get_endpoint"]

logger = logging.getLogger(__name__)

#: Connection-pool and thread-pool size used when concurrency is unbounded.
UNBOUNDED_POOL = 64


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"invalid API URL {url!r}: expected http(s)://host[:port]")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"


class Endpoint:
    """A keep-alive connection pool and a concurrency limit for one service origin.

    Use :func:`get_endpoint` rather than building one: that is what makes the pool and the
    limit shared by every client of the process.

    Args:
        base_url: Service base URL; requests go to ``base_url + path``.
        max_concurrency: Maximum requests in flight (``None``: unbounded).
        adaptive: Adapt the limit to 429/503 answers (see :class:`~deeplake_sdk.limiter.Limiter`).
    """

    def __init__(self, base_url: str, max_concurrency: int | None = 5, *, adaptive: bool = False):
        self.origin = _origin(base_url)
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
        self._pools: weakref.WeakKeyDictionary[Any, ThreadPool] = weakref.WeakKeyDictionary()
        self._pools_lock = threading.Lock()
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"<Endpoint {self.origin} limit={self.limiter.max_limit}>"

    def close(self) -> None:
        """Close pooled connections (the endpoint stays usable; new connections are opened)."""
        self.session.close()

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
        hub = None if is_module_patched("socket") else _hub_if_exists()
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
        url = self.base_url + path
        started = time.perf_counter()
        status, answer_headers, content = self._run(
            self._send, method, url, headers, data, timeout, acquire_timeout=acquire_timeout
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug("%s %s -> %s in %.1f ms", method, path, status, elapsed_ms)
        if status in (429, 503):
            self.limiter.on_overload()
        elif status < 500:
            self.limiter.on_success()
        if 200 <= status < 300:
            if not content.strip():
                return {}
            try:
                return json.loads(content)
            except ValueError:
                raise ServerError(
                    status, f"answer is not JSON: {_summarise(content)}",
                    answer_headers.get("x-request-id"),
                ) from None
        raise error_for_status(status, answer_headers, content)

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: bytes | None,
        timeout: tuple[float, float],
    ) -> tuple[int, Any, bytes]:
        self.requests_sent += 1
        try:
            response = self.session.request(
                method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
            )
            return response.status_code, response.headers, response.content
        except requests.exceptions.RequestException as exc:
            raise _network_error(exc, url, timeout) from exc


def _capture(fn: Any, *args: Any) -> tuple[Any, BaseException | None]:
    """Run ``fn`` in a worker thread, returning its error instead of raising it.

    (gevent prints the traceback of every thread-pool task that raises.)
    """
    try:
        return fn(*args), None
    except Exception as exc:
        return None, exc


def _network_error(exc: BaseException, url: str, timeout: tuple[float, float]) -> Exception:
    """Map a requests exception to a NetworkError (ambiguous or not) or a ConfigError."""
    where = _origin(url)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                        requests.exceptions.MissingSchema)):
        return ConfigError(f"invalid API URL {url!r}: {exc}")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return NetworkError(f"could not connect to {where} within {timeout[0]:g}s; "
                            "check the URL and the network", ambiguous=False)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return NetworkError(
            f"no answer from {where} within {timeout[1]:g}s (the request may have run); "
            "raise the timeout or simplify the query", ambiguous=True)
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        if isinstance(reason, (urllib3.exceptions.NewConnectionError,
                               urllib3.exceptions.ConnectTimeoutError)):
            return NetworkError(f"cannot connect to {where}: {_root_cause(reason)}; "
                                "check the URL and that the service is reachable",
                                ambiguous=False)
        return NetworkError(f"connection to {where} lost before the answer arrived "
                            f"({_root_cause(exc)}); the request may have run", ambiguous=True)
    return NetworkError(f"request to {where} failed: {_root_cause(exc)}", ambiguous=True)


def _root_cause(exc: BaseException) -> str:
    while True:
        inner = exc.__cause__ or exc.__context__
        if inner is None and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if inner is None or inner is exc:
            break
        exc = inner
    text = str(exc) or type(exc).__name__
    return text.split(": ", 1)[-1] if "object at 0x" in text else text


_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _summarise(content: bytes, limit: int = 200) -> str:
    text = content.decode("utf-8", "replace")
    title = _TITLE.search(text)
    if title:
        text = title.group(1)
    text = " ".join(_TAG.sub(" ", text).split())
    return (text[:limit] + "...") if len(text) > limit else (text or "(empty body)")


def error_for_status(status: int, headers: Any, content: bytes) -> ApiError:
    """Build the typed error for an error answer.

    JSON bodies ``{"error", "code"?, "request_id"?}`` give the message; HTML or text bodies (a
    gateway's) are summarised. 401/403 -> AuthError; 429/503 -> RateLimitError; other 5xx ->
    ServerError; 409 or any "already exists" message -> AlreadyExistsError; other 4xx ->
    QueryError.

    Args:
        status: HTTP status.
        headers: Answer headers (case-insensitive mapping).
        content: Raw body.
    """
    message, code, request_id = None, None, None
    try:
        data = json.loads(content) if content else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        raw = data.get("error") or data.get("message") or data.get("detail")
        if isinstance(raw, dict):
            raw = raw.get("message") or json.dumps(raw)
        message = None if raw is None else str(raw)
        code = data.get("code")
        request_id = data.get("request_id") or data.get("requestId")
    if message is None:
        message = _summarise(content) if content else f"HTTP {status} with an empty body"
    request_id = request_id or (headers.get("x-request-id") if headers is not None else None)
    code = None if code is None else str(code)
    request_id = None if request_id is None else str(request_id)
    cls: type[ApiError]
    if status in (401, 403):
        cls = AuthError
    elif status in (429, 503):
        cls = RateLimitError
    elif status == 409:
        cls = AlreadyExistsError
    elif status >= 500:
        cls = ServerError
    else:
        cls = QueryError
    error = cls(status, message, request_id, code)
    if cls in (ServerError, QueryError) and is_already_exists(error):
        error = AlreadyExistsError(status, message, request_id, code)
    if status in (401, 403):
        error.message += (
            " (check DEEPLAKE_TOKEN / DEEPLAKE_ORG_ID or ~/.deeplake/credentials.json)"
        )
    retry_after = parse_retry_after(headers.get("retry-after")) if headers is not None else None
    if retry_after is not None:
        error.retry_after = retry_after
    return error


_registry: dict[tuple[str, int | None, bool], Endpoint] = {}
_registry_lock = threading.Lock()


def get_endpoint(base_url: str, max_concurrency: int | None = 5, *, adaptive: bool = False
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


def close_endpoints() -> None:
    """Close and forget every endpoint of the process (tests, or before ``fork``)."""
    with _registry_lock:
        endpoints = list(_registry.values())
        _registry.clear()
    for endpoint in endpoints:
        endpoint.close()
