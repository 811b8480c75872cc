"""The WSGI application: Deeplake wire contract, auth, fault injection, admin endpoints.

Routes (DESIGN section 3):

- ``POST /workspaces/{ws}/tables/query`` ``{"query", "params"?, "timeout_ms"?}`` ->
  ``{"columns", "rows", "row_count"}``
- ``GET /workspaces/{ws}/tables`` -> ``{"tables": [{"table_name": ..}]}``
- ``POST /workspaces/{ws}/tables`` ``{"table_name", "table_schema": {col: TYPE}}`` (409 if it
  exists)
- ``DELETE /workspaces/{ws}/tables/{name}`` (404 if unknown)
- ``GET /_admin/stats``, ``POST /_admin/stats/reset``, ``GET /_admin/faults``,
  ``PUT /_admin/faults`` (never subject to faults, not counted in the stats; a PUT commits
  the writes still held back by a read lag before it answers). They need the admin token: a
  data token gets 403, and without an admin token they answer 403 to everyone. ``?org=ID``
  scopes the faults to one org (``GET``/``PUT``) and the stats to one org's requests.

Limits (:class:`~deeplake_sdk.server.limits.Limits`): a request body over
``max_body_bytes`` (counted as it is read, so a chunked body cannot pass) is a 413 and the
connection is closed without reading the rest; JSON ``NaN``/``Infinity`` and negative or
malformed ``Content-Length`` are 400; more than ``max_params`` parameters is a 400; a
result over ``max_result_bytes`` is a 400 ``result_too_large``.

Every error is JSON ``{"error", "code", "request_id"}`` (SQL errors add ``sqlstate``), except
two injected ones that copy the service: a 402 ``{"balance_cents": 0, "error": ..}`` and a
gateway's HTML 401/403. Every response has ``X-Request-Id``. Data requests go through: auth ->
fault decision (reset / random status / pattern) -> capacity (max in flight) -> per-org rate
limit -> added latency (and slow queries) -> execution (ALTER window, coalescing, read lag)
-> commit-then-fail.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, unquote

from deeplake_sdk.server.backend import Backend, BackendError, json_default
from deeplake_sdk.server.faults import FaultConfig, FaultDecision, FaultInjector
from deeplake_sdk.server.http import CLOSE_KEY, RAW_PATH_KEY, DropConnection
from deeplake_sdk.server.limits import EncodedRows, Limits
from deeplake_sdk.server.stats import Stats
from deeplake_sdk.server.trace import StatementTrace

logger = logging.getLogger(__name__)

_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_ROUTES = [
    (re.compile(r"^/workspaces/(?P<ws>[^/]+)/tables/query$"), {"POST": "query", "DELETE": "drop"}),
    (re.compile(r"^/workspaces/(?P<ws>[^/]+)/tables$"), {"GET": "list", "POST": "create"}),
    (re.compile(r"^/workspaces/(?P<ws>[^/]+)/tables/(?P<name>[^/]+)$"), {"DELETE": "drop"}),
]
_ORG_KEY = "deeplake.org"  # environ key: the authenticated org of a data request
_ADMIN = {
    ("/_admin/stats", "GET"): "stats",
    ("/_admin/stats/reset", "POST"): "stats_reset",
    ("/_admin/faults", "GET"): "faults",
    ("/_admin/faults", "PUT"): "set_faults",
}


#: The service's body when credits run out (HTTP 402).
INSUFFICIENT_BALANCE = {"balance_cents": 0, "error": "insufficient balance, please top up"}
_GATEWAY_HTML = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class HttpError(Exception):
    """An error answer: status, code, message, extra JSON fields and headers.

    ``payload`` replaces the whole JSON body and ``html`` sends an HTML page instead (the
    answers of the service's billing and of its gateway).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: list[tuple[str, str]] | None = None,
        *,
        payload: Any = None,
        html: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []
        self.payload = payload
        self.html = html
        self.extra = extra


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class App:
    """WSGI application of the local Deeplake-compatible server.

    Args:
        backend: the PostgreSQL backend.
        tokens: bearer token -> org id.
        injector: fault injector (every org's, unless one has its own: ``?org=``).
        stats: counters.
        admin_token: the token of ``/_admin`` (None: the admin endpoints answer 403).
        limits: request and result limits.
    """

    def __init__(
        self,
        backend: Backend,
        tokens: dict[str, str],
        injector: FaultInjector,
        stats: Stats,
        *,
        admin_token: str | None = None,
        limits: Limits | None = None,
        trace: StatementTrace | None = None,
    ) -> None:
        self.backend = backend
        self.trace = trace
        self.tokens = dict(tokens)
        self.injector = injector
        self.org_injectors: dict[str, FaultInjector] = {}
        self.stats = stats
        self.org_stats: dict[str, Stats] = {}
        self.admin_token = admin_token
        self.limits = limits or Limits()

    def injector_for(self, org: str | None) -> FaultInjector:
        """The fault injector of ``org`` (its own if it has one, else the server's)."""
        return self.org_injectors.get(org or "", self.injector)

    def _org_stats(self, org: str) -> Stats:
        found = self.org_stats.get(org)
        if found is None:
            found = self.org_stats.setdefault(org, Stats())
        return found

    # ------------------------------------------------------------------------ WSGI entry
    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Handle one request."""
        request_id = uuid.uuid4().hex
        method = environ.get("REQUEST_METHOD", "GET")
        raw_path = environ.get(RAW_PATH_KEY)
        if raw_path is None:  # another WSGI server: PATH_INFO is already decoded
            raw_path = quote(_decode_path(environ.get("PATH_INFO", "")), safe="/")
        path = unquote(raw_path)
        admin = path.startswith("/_admin/") or path == "/_admin"
        if not admin:
            self.stats.request(environ.get("HTTP_X_DEEPLAKE_CLIENT"), environ.get("CONTENT_TYPE"))
        try:
            if admin:
                status, body = self._admin(environ, method, path)
            else:
                status, body = self._data(environ, method, raw_path, path)
            return self._send(
                start_response,
                status,
                body,
                request_id=request_id,
                admin=admin,
                org=environ.get(_ORG_KEY),
            )
        except HttpError as exc:
            payload = exc.payload
            if payload is None and exc.html is None:
                payload = {"error": exc.message, "code": exc.code, "request_id": request_id}
                payload.update(exc.extra)
            return self._send(
                start_response,
                exc.status,
                payload,
                request_id=request_id,
                admin=admin,
                headers=exc.headers,
                html=exc.html,
                org=environ.get(_ORG_KEY),
            )
        except DropConnection:
            raise
        except Exception as exc:
            logger.exception("internal error on %s %s", method, path)
            payload = {
                "error": f"internal server error: {exc}",
                "code": "internal",
                "request_id": request_id,
            }
            return self._send(
                start_response,
                500,
                payload,
                request_id=request_id,
                admin=admin,
                org=environ.get(_ORG_KEY),
            )

    def _send(
        self,
        start_response: Callable[..., Any],
        status: int,
        payload: Any,
        *,
        request_id: str,
        admin: bool,
        headers: list[tuple[str, str]] | None = None,
        html: str | None = None,
        org: str | None = None,
    ) -> list[bytes]:
        if html is not None:
            parts, content_type = [html.encode()], "text/html"
        elif isinstance(payload, dict) and isinstance(payload.get("rows"), EncodedRows):
            parts, content_type = _result_parts(payload), "application/json"
        else:
            data = json.dumps(payload, ensure_ascii=False, default=json_default).encode()
            parts, content_type = [data], "application/json"
        if not admin:
            self.stats.status(status)
            if org is not None:
                self._org_stats(org).status(status)
        out = [
            ("Content-Type", content_type),
            ("Content-Length", str(sum(len(p) for p in parts))),
            ("X-Request-Id", request_id),
            *(headers or []),
        ]
        start_response(f"{status} {_REASONS.get(status, 'Error')}", out)
        return parts

    # ------------------------------------------------------------------------ helpers
    def _auth(self, environ: dict[str, Any]) -> str:
        token = _bearer(environ)
        org = self.tokens.get(token)
        if org is None:
            raise HttpError(401, "unauthorized", "invalid token")
        claimed = environ.get("HTTP_X_ACTIVELOOP_ORG_ID")
        if claimed is not None and claimed != org:
            raise HttpError(
                403, "forbidden", f"this token belongs to another organization than {claimed!r}"
            )
        return org

    def _admin_auth(self, environ: dict[str, Any]) -> None:
        token = _bearer(environ)
        if self.admin_token is not None and hmac.compare_digest(
            token.encode(), self.admin_token.encode()
        ):
            return
        if token not in self.tokens:
            raise HttpError(401, "unauthorized", "invalid token")
        if self.admin_token is None:
            raise HttpError(
                403,
                "forbidden",
                "the admin endpoints are off: start the server with --admin-token",
            )
        raise HttpError(403, "forbidden", "the admin endpoints need the admin token")

    def _body(self, environ: dict[str, Any], required: bool = True) -> Any:
        limit = self.limits.max_body_bytes
        text = environ.get("CONTENT_LENGTH") or ""
        if text and not text.isdigit():
            raise HttpError(400, "bad_request", f"invalid Content-Length {text!r}")
        length = int(text) if text else -1
        if length > limit:
            environ[CLOSE_KEY] = True
            raise HttpError(
                413, "too_large", f"request body of {length} bytes is over the {limit}-byte limit"
            )
        raw = _read_body(environ["wsgi.input"], length, limit)
        if len(raw) > limit:
            environ[CLOSE_KEY] = True  # do not read (or buffer) the rest of the body
            raise HttpError(413, "too_large", f"request body over the {limit}-byte limit")
        if not raw:
            if required:
                raise HttpError(400, "bad_request", "missing JSON request body")
            return {}
        try:
            body = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, "bad_request", f"request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise HttpError(400, "bad_request", "request body must be a JSON object")
        return body

    # ------------------------------------------------------------------------ data routes
    def _data(
        self, environ: dict[str, Any], method: str, raw_path: str, path: str
    ) -> tuple[int, Any]:
        for pattern, methods in _ROUTES:
            m = pattern.match(raw_path)
            if m is None:
                continue
            action = methods.get(method)
            if action is None:
                allow = ", ".join(methods)
                raise HttpError(
                    405,
                    "method_not_allowed",
                    f"{method} not allowed on {path} (allowed: {allow})",
                    headers=[("Allow", allow)],
                )
            args = {k: unquote(v) for k, v in m.groupdict().items()}
            if action == "drop" and "name" not in args:
                args["name"] = "query"
            org = self._auth(environ)
            environ[_ORG_KEY] = org
            self._org_stats(org).request(
                environ.get("HTTP_X_DEEPLAKE_CLIENT"), environ.get("CONTENT_TYPE")
            )
            body = self._body(environ, required=action in ("query", "create"))
            return self._dispatch(action, org, args, body)
        raise HttpError(404, "not_found", f"no route for {method} {path}")

    def _dispatch(
        self, action: str, org: str, args: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, Any]:
        query = timeout_ms = None
        if action == "query":
            query = body.get("query")
            if not isinstance(query, str) or not query.strip():
                raise HttpError(400, "bad_request", "'query' must be a non-empty string")
            timeout_ms = body.get("timeout_ms")
            if timeout_ms is not None and (
                isinstance(timeout_ms, bool)
                or not isinstance(timeout_ms, (int, float))
                or not math.isfinite(timeout_ms)
                or timeout_ms < 0
            ):
                raise HttpError(400, "bad_request", "'timeout_ms' must be a finite number >= 0")
            params = body.get("params")
            if isinstance(params, list) and len(params) > self.limits.max_params:
                raise HttpError(
                    400,
                    "too_many_params",
                    f"{len(params)} params: at most {self.limits.max_params} are allowed",
                )
        elif action == "create":
            if not isinstance(body.get("table_name"), str):
                raise HttpError(400, "bad_request", "'table_name' must be a string")
            schema = body.get("table_schema", {})
            if not isinstance(schema, dict) or not all(isinstance(v, str) for v in schema.values()):
                raise HttpError(400, "bad_request", "'table_schema' must map column -> type")
        injector = self.injector_for(org)
        decision = injector.decide(query)
        self._pre_execution_faults(decision, org, injector)
        self.stats.enter()
        try:
            if decision.slow_s > 0:
                self.stats.inject("slow")
            delay = decision.latency_s + decision.slow_s
            if delay > 0:
                time.sleep(delay)  # cooperative under gevent
            result = self._execute(action, org, args, body, timeout_ms, decision=decision)
            if decision.commit_fail is not None:
                self.stats.inject(decision.commit_fail)
                if decision.commit_fail == "commit_drop":
                    raise DropConnection()
                raise HttpError(502, "commit_502", "injected fault: bad gateway (after commit)")
            return result
        finally:
            self.stats.leave()

    def _pre_execution_faults(
        self, decision: FaultDecision, org: str, injector: FaultInjector
    ) -> None:
        cfg = injector.config
        if decision.kind == "reset":
            self.stats.inject("reset")
            raise DropConnection()
        if decision.kind is not None and decision.status is not None:
            self.stats.inject(decision.kind)
            if decision.kind == "error_402":
                raise HttpError(402, decision.kind, "", payload=INSUFFICIENT_BALANCE)
            if decision.kind.startswith("auth_html"):
                reason = _REASONS[decision.status]
                page = _GATEWAY_HTML.format(status=decision.status, reason=reason)
                raise HttpError(decision.status, decision.kind, reason, html=page)
            headers = []
            if decision.status in (429, 503):
                headers.append(("Retry-After", str(cfg.retry_after_s)))
            reason = _REASONS.get(decision.status, "Error")
            raise HttpError(
                decision.status,
                decision.kind,
                decision.message or f"injected fault: {decision.status} {reason}",
                headers=headers,
            )
        if cfg.max_inflight and self.stats.inflight >= cfg.max_inflight:
            self.stats.inject("capacity_503")
            raise HttpError(
                503,
                "capacity_503",
                f"server at capacity ({cfg.max_inflight} requests in flight)",
                headers=[("Retry-After", str(cfg.retry_after_s))],
            )
        wait = injector.take_token(org)
        if wait:
            self.stats.inject("rate_429")
            raise HttpError(
                429,
                "rate_429",
                f"rate limit of {cfg.rate_per_s:g} requests/s exceeded",
                headers=[("Retry-After", str(wait))],
            )

    def _execute(
        self,
        action: str,
        org: str,
        args: dict[str, str],
        body: dict[str, Any],
        timeout_ms: float | None,
        *,
        decision: FaultDecision,
    ) -> tuple[int, Any]:
        ws = args["ws"]
        try:
            if action == "query":
                timeout = None if timeout_ms is None else int(timeout_ms)
                return 200, self._query((org, ws), body, timeout, decision)
            if action == "list":
                names = self.backend.list_tables(org, ws)
                return 200, {"tables": [{"table_name": n} for n in names]}
            if action == "create":
                name = body["table_name"]
                self.backend.create_table(org, ws, name, body.get("table_schema") or {})
                return 200, {"table_name": name, "created": True}
            self.backend.drop_table(org, ws, args["name"])
            return 200, {"table_name": args["name"], "dropped": True}
        except BackendError as exc:
            headers = [("Retry-After", str(exc.retry_after))] if exc.status == 503 else []
            raise HttpError(exc.status, exc.code, exc.message, headers, **exc.extra) from exc

    def _query(
        self,
        where: tuple[str, str],
        body: dict[str, Any],
        timeout_ms: int | None,
        decision: FaultDecision,
    ) -> dict[str, Any]:
        """Run a query's statement, with its lines of the statement trace when tracing."""
        trace = self.trace
        run = functools.partial(
            self.backend.query, *where, body["query"], body.get("params"), timeout_ms
        )
        if trace is None:
            return run(faults=decision)
        trace_id, at = trace.new_id(), time.time()
        try:
            result = run(faults=decision, on_commit=functools.partial(trace.commit, trace_id))
        except BackendError as exc:
            outcome = f"HTTP {exc.status}"
            trace.statement(trace_id, at, where, body, outcome=outcome, fault=decision.commit_fail)
            raise
        outcome = result.get("row_count")
        trace.statement(trace_id, at, where, body, outcome=outcome, fault=decision.commit_fail)
        return result

    # ------------------------------------------------------------------------ admin
    def _admin(self, environ: dict[str, Any], method: str, path: str) -> tuple[int, Any]:
        """Admin routes; ``?org=ID`` scopes faults and stats to one org."""
        action = _ADMIN.get((path, method))
        if action is None:
            if any(p == path for p, _ in _ADMIN):
                allowed = ", ".join(m for p, m in _ADMIN if p == path)
                raise HttpError(
                    405,
                    "method_not_allowed",
                    f"{method} not allowed on {path}",
                    headers=[("Allow", allowed)],
                )
            raise HttpError(404, "not_found", f"no route for {method} {path}")
        self._admin_auth(environ)
        org = _query_arg(environ, "org")
        if action == "stats":
            return 200, (self._org_stats(org) if org else self.stats).snapshot()
        if action == "stats_reset":
            if org:
                self._org_stats(org).reset()
                self.injector_for(org).reset_sequence()
                return 200, self._org_stats(org).snapshot()
            self.stats.reset()
            for scoped in self.org_stats.values():
                scoped.reset()
            self.injector.reset_sequence()
            for injector in self.org_injectors.values():
                injector.reset_sequence()
            return 200, self.stats.snapshot()
        if action == "faults":
            return 200, self.injector_for(org).config.to_dict()
        body = self._body(environ, required=False)
        try:
            config = _fault_config(self.injector_for(org).config, body)
        except ValueError as exc:
            raise HttpError(400, "bad_request", str(exc)) from None
        if org:
            self.org_injectors[org] = FaultInjector(config)
        else:
            self.injector.configure(config)
            self.org_injectors.clear()  # the server's faults apply to every org again
        # writes held back by the previous read lag commit now: new faults start clean
        self.backend.pending.flush()
        return 200, self.injector_for(org).config.to_dict()


def _read_body(stream: Any, length: int, limit: int) -> bytes | bytearray:
    """The body (``length`` bytes, or up to ``limit + 1`` of a chunked one), read piecewise."""
    if length >= 0:
        return stream.read(length)
    body = bytearray()
    while len(body) <= limit:
        piece = stream.read(min(1 << 20, limit + 1 - len(body)))
        if not piece:
            break
        body += piece
    return body


def _query_arg(environ: dict[str, Any], name: str) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    return values[-1] if values else None


def _result_parts(payload: dict[str, Any]) -> list[bytes]:
    """The JSON body of a result whose rows are already encoded, as parts to send in turn."""
    rows: EncodedRows = payload["rows"]
    head = {k: v for k, v in payload.items() if k != "rows"}
    text = json.dumps(head, ensure_ascii=False, default=json_default)
    return [text[:-1].encode() + b', "rows": [', *rows.parts, b"]}"]


def _decode_path(path: str) -> str:
    try:
        return path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return path


def _fault_config(current: FaultConfig, body: dict[str, Any]) -> FaultConfig:
    overrides = dict(body)
    profile = overrides.pop("profile", None)
    overrides.setdefault("seed", current.seed)
    if profile is None:
        return current.replace(**overrides)
    return FaultConfig.from_profile(str(profile), **overrides)


def _bearer(environ: dict[str, Any]) -> str:
    """The token of the request's ``Authorization: Bearer`` header (401 without one)."""
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HttpError(
            401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'"
        )
    return token
