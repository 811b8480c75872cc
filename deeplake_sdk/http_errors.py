"""Mapping of HTTP answers and transport failures to the SDK's typed errors.

* :func:`error_for_status` - an error answer (JSON ``{"error", "code"?, "request_id"?}`` or a
  gateway's HTML/text) to :class:`~deeplake_sdk.errors.ApiError` subclasses by status;
* :func:`network_error` - a requests/urllib3 failure to
  :class:`~deeplake_sdk.errors.NetworkError`, flagged ``ambiguous`` when the request may have
  executed;
* what an error means for the caller: :func:`is_ambiguous` (it may have executed),
  :func:`is_refusal` (resending cannot succeed), :func:`is_missing_schema` (a table or column
  is gone).

Every answer is classified here and only here: "already exists" (409, or the real service's
500 on ALTER/CREATE INDEX) becomes :class:`~deeplake_sdk.errors.AlreadyExistsError`, which the
retry policy never retries and ``ensure_*`` treat as success. This module sits below
:mod:`deeplake_sdk.retry` and :mod:`deeplake_sdk.transport`, which use it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from deeplake_sdk.errors import (
    AlreadyExistsError,
    ApiError,
    AuthError,
    ConfigError,
    ConnectError,
    NetworkError,
    QueryError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)

__all__ = [
    "error_for_status",
    "is_ambiguous",
    "is_missing_schema",
    "is_refusal",
    "is_unreachable",
    "network_error",
    "origin",
    "parse_retry_after",
    "summarise",
]

_ALREADY_EXISTS = re.compile(r"already exists", re.IGNORECASE)


def origin(url: str) -> str:
    """Return ``scheme://host:port`` of ``url``.

    Raises:
        ConfigError: Not an http(s) URL with a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"invalid API URL {url!r}: expected http(s)://host[:port]")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"


def service_base(url: str) -> str:
    """The normalised base URL of a service: scheme, host, port, path, without a final slash.

    Scheme and host are lower-cased, a default port (80, 443), credentials, query and
    fragment dropped: ``http://H``, ``http://h:80/`` and ``http://u@h`` give ``http://h``. It
    is the endpoint part of every key the SDK keeps per service (journal files, cache
    entries).

    Raises:
        ConfigError: Not an http(s) URL with a host.
    """
    parts = urlsplit(url)
    port = origin(url).rsplit(":", 1)[1]
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": "80", "https": "443"}[parts.scheme]
    netloc = host if port == default else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def network_error(exc: BaseException, url: str, timeout: tuple[float, float]) -> Exception:
    """Map a requests/urllib3 failure to a NetworkError (ambiguous or not) or a ConfigError.

    Not ambiguous (surely not executed): connect errors and timeouts, TLS and proxy errors.
    Ambiguous: read timeouts, resets and disconnects after the request was sent.
    """
    import requests  # imported by the transport that raised ``exc``: costs nothing here
    import urllib3.exceptions

    where = origin(url)
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
            urllib3.exceptions.LocationParseError,
        ),
    ):
        return ConfigError(f"invalid API URL {url!r}: {exc}")
    reason: BaseException = exc
    if (
        isinstance(exc, requests.exceptions.RequestException)
        and exc.args
        and isinstance(exc.args[0], BaseException)
    ):
        reason = exc.args[0]
    if isinstance(reason, urllib3.exceptions.MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    connect_timeout = isinstance(exc, requests.exceptions.ConnectTimeout) or (
        isinstance(reason, urllib3.exceptions.ConnectTimeoutError)
        and not isinstance(reason, urllib3.exceptions.NewConnectionError)
    )
    if connect_timeout:
        return ConnectError(
            f"could not connect to {where} within {timeout[0]:g}s; check the URL and the network",
            timed_out=True,
        )
    if isinstance(exc, requests.exceptions.ReadTimeout) or isinstance(
        reason, (urllib3.exceptions.ReadTimeoutError, TimeoutError)
    ):
        return NetworkError(
            f"no answer from {where} within {timeout[1]:g}s (the request may have run); "
            "raise the timeout or simplify the query",
            ambiguous=True,
        )
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return ConnectError(
            f"cannot connect to {where}: {_root_cause(reason)}; "
            "check the URL and that the service is reachable"
        )
    if isinstance(reason, (urllib3.exceptions.SSLError, urllib3.exceptions.ProxyError)):
        return ConnectError(f"cannot reach {where}: {_root_cause(reason)}")
    return NetworkError(
        f"connection to {where} lost before the answer arrived "
        f"({_root_cause(exc)}); the request may have run",
        ambiguous=True,
    )


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


def summarise(content: bytes, limit: int = 200) -> str:
    """Summarise a non-JSON body (a gateway's HTML page) in one line."""
    text = content.decode("utf-8", "replace")
    title = _TITLE.search(text)
    if title:
        text = title.group(1)
    text = " ".join(_TAG.sub(" ", text).split())
    return (text[:limit] + "...") if len(text) > limit else (text or "(empty body)")


def error_for_status(status: int, headers: Any, content: bytes) -> ApiError:
    """Build the typed error for an error answer.

    JSON bodies ``{"error", "code"?, "request_id"?}`` give the message; HTML or text bodies (a
    gateway's) are summarised. 401/403 -> AuthError (``gateway`` when the body is not a JSON
    object); 429 -> RateLimitError; 503 ->
    ServiceUnavailableError (a RateLimitError and a ServerError); other 5xx -> ServerError;
    409 or any "already exists" message -> AlreadyExistsError; other 4xx -> QueryError.

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
        message = summarise(content) if content else f"HTTP {status} with an empty body"
    request_id = request_id or (headers.get("x-request-id") if headers is not None else None)
    code = None if code is None else str(code)
    request_id = None if request_id is None else str(request_id)
    cls: type[ApiError]
    if status in (401, 403):
        cls = AuthError
    elif status == 429:
        cls = RateLimitError
    elif status == 503:
        cls = ServiceUnavailableError
    elif status == 409:
        cls = AlreadyExistsError
    elif status >= 500:
        cls = ServerError
    else:
        cls = QueryError
    error = cls(status, message, request_id, code)
    if cls in (ServerError, QueryError) and _ALREADY_EXISTS.search(message):
        error = AlreadyExistsError(status, message, request_id, code)
    if isinstance(error, AuthError):
        error.gateway = not isinstance(data, dict)  # not the service's JSON: a gateway's page
        error.message += " (check DEEPLAKE_TOKEN / DEEPLAKE_ORG_ID or ~/.deeplake/credentials.json)"
    retry_after = parse_retry_after(headers.get("retry-after")) if headers is not None else None
    if retry_after is not None:
        error.retry_after = retry_after
    return error


#: HTTP statuses by which a service refuses load: too many requests per second or in flight.
OVERLOAD_STATUSES = frozenset({429, 503})


def is_overload(error: BaseException | None) -> bool:
    """Tell whether ``error`` is the service refusing load (429, 503), not another failure."""
    return isinstance(error, ApiError) and error.status in OVERLOAD_STATUSES


def is_ambiguous(error: BaseException | None) -> bool:
    """Tell whether a failed request may have executed (5xx but 503, resets, read timeouts)."""
    if isinstance(error, NetworkError):
        return error.ambiguous
    return isinstance(error, ServerError) and error.status != 503


#: 4xx statuses that say nothing about the request itself (account, timeout, conflict, limit).
_NOT_REFUSALS = frozenset({401, 402, 403, 404, 408, 409, 429})
_MISSING = re.compile(r"(relation|table|column) .* does not exist", re.IGNORECASE)


def is_unreachable(error: BaseException | None) -> bool:
    """Tell whether ``error`` says the service could not answer, not that it refused.

    No connection or no answer, a 5xx, a 429, or a gateway's 401/403 in place of the
    service's: the same request may succeed later.
    """
    if isinstance(error, NetworkError):
        return True
    if isinstance(error, AuthError):
        return error.gateway
    return isinstance(error, ApiError) and (error.status >= 500 or error.status == 429)


def is_missing_schema(error: BaseException | None) -> bool:
    """Tell whether ``error`` says a table or column does not exist (stale knowledge)."""
    if not isinstance(error, ApiError):
        return False
    return error.code in ("42P01", "42703") or bool(_MISSING.search(error.message or ""))


def is_refusal(error: BaseException | None) -> bool:
    """Tell whether the service refused a request for good: resending it cannot succeed.

    A 4xx about the request itself (bad SQL or value, body too large), but not: 401/403
    (credentials), 402 (account balance), 404, 408 (statement timeout), 409, 429, nor a missing
    table or column (it may be created).
    """
    return (
        isinstance(error, QueryError)
        and 400 <= error.status < 500
        and error.status not in _NOT_REFUSALS
        and not is_missing_schema(error)
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header into seconds.

    Args:
        value: The header: delta-seconds (``"3"``; ``"1.5"`` tolerated) or an HTTP date.
        now: Current time for HTTP dates (tests); default the real UTC time.

    Returns:
        Seconds to wait (0 when the date is past), or ``None`` when absent or unparseable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        from email.utils import parsedate_to_datetime  # rare: most say seconds

        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
