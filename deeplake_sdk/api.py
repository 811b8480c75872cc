"""DeeplakeApi: the client of the Deeplake managed SQL API.

Plain synchronous Python: ``api.query(sql)`` returns rows. Inside, requests share one
keep-alive pool and one concurrency bound per endpoint (:mod:`deeplake_sdk.transport`), are
retried per :class:`~deeplake_sdk.retry.RetryPolicy`, and writes whose outcome is unknown
are never blindly re-sent (see :meth:`DeeplakeApi.execute`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from deeplake_sdk._coop import Failure, run_parallel
from deeplake_sdk._version import __version__
from deeplake_sdk.api_tables import TablesMixin
from deeplake_sdk.api_types import QueryResult, Timeout
from deeplake_sdk.config import Credentials, load_credentials
from deeplake_sdk.errors import (
    AmbiguousWriteError,
    ClosedError,
    NetworkError,
    QueryError,
    ServerError,
)
from deeplake_sdk.http_errors import is_ambiguous
from deeplake_sdk.limiter import DEFAULT_MAX_CONCURRENCY
from deeplake_sdk.retry import RetryCall, RetryEvent, RetryPolicy, is_already_exists, retried
from deeplake_sdk.sql import DDL, READ, check_params, statement_head, statement_kind
from deeplake_sdk.transport import Endpoint, get_endpoint

__all__ = ["Confirm", "DeeplakeApi", "QueryResult", "Statement", "Timeout"]

logger = logging.getLogger(__name__)

#: A check run after an ambiguous failure: "did the write take effect?"
Confirm = Callable[[], bool]
#: An item of :meth:`DeeplakeApi.query_many`: SQL text, or ``(sql, params)``.
Statement = str | tuple[str, Sequence[Any] | None]


def query_body(sql: str, params: Sequence[Any], timeout: Timeout) -> dict[str, Any]:
    """The JSON body of a query request.

    Args:
        sql: The statement.
        params: Its parameters; left out of the body when empty.
        timeout: Its statement timeout, sent as ``timeout_ms`` (at least 1).
    """
    body: dict[str, Any] = {"query": sql}
    if params:
        body["params"] = list(params)
    body["timeout_ms"] = max(1, int(timeout.statement * 1000))
    return body


@dataclass
class _Call:
    sql: str
    params: list[Any]
    timeout: Timeout
    resend: bool
    confirm: Confirm | None
    kind: str
    maybe_applied: bool = False
    first_error: BaseException | None = field(default=None, repr=False)


def _ddl_already_applied(stmt: _Call, error: QueryError) -> bool:
    """Whether a DDL re-sent after an ambiguous failure was refused because it had applied.

    ``CREATE`` answered "already exists", or ``DROP`` answered "does not exist", after the
    first attempt's answer was lost: the state the statement asked for is in place.
    """
    if stmt.kind != DDL or stmt.first_error is None:
        return False
    if is_already_exists(error):
        return True
    return statement_head(stmt.sql) == "DROP" and "does not exist" in (error.message or "")


class DeeplakeApi(TablesMixin):
    """Client of one workspace of the Deeplake SQL API.

    Args:
        token: API token (default: ``DEEPLAKE_TOKEN``, then the credentials file).
        org_id: Organisation id (default: ``DEEPLAKE_ORG_ID``, then the credentials file).
        workspace_id: Workspace id (default: ``DEEPLAKE_WORKSPACE_ID``, file, ``default``).
        api_url: Service URL (default: ``DEEPLAKE_API_URL``, file, ``https://api.deeplake.ai``).
        max_concurrency: This client's cap on requests in flight. Every client of one origin
            takes its slots from the origin's adaptive limit, shared by the whole process and
            the host's processes; the default (256) is that limit's ceiling, so only the
            adaptive limit applies. ``None`` with ``adaptive=False``: no bound at all.
        timeout: Statement timeout in seconds, or a :class:`Timeout` (connect 10 s, statement
            60 s, read = statement + 2 s by default).
        retries: Number of retries or a :class:`RetryPolicy` (default: 3 retries, 0.5 s
            backoff doubling up to 8 s, ``Retry-After`` up to 30 s, 120 s deadline per call).
        adaptive: Adapt a ``max_concurrency`` below the default to 429/503 answers within
            ``[1, max_concurrency]`` (AIMD); ``False`` makes it a fixed cap. See
            :doc:`concepts` (concurrency) for the origin's limit.

    Raises:
        ConfigError: No token or org id could be found.

    Example:
        >>> with DeeplakeApi() as api:                       # doctest: +SKIP
        ...     rows = api.query("SELECT path FROM memory WHERE size_bytes > $1", [1000])
    """

    def __init__(
        self,
        token: str | None = None,
        org_id: str | None = None,
        workspace_id: str | None = None,
        api_url: str | None = None,
        *,
        max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY,
        timeout: float | Timeout | None = None,
        retries: int | RetryPolicy | None = None,
        adaptive: bool = True,
    ) -> None:
        self.credentials: Credentials = load_credentials(token, org_id, workspace_id, api_url)
        self.timeout = Timeout.coerce(timeout)
        self.retry_policy = RetryPolicy.coerce(retries)
        self.max_concurrency = max_concurrency
        self.endpoint: Endpoint = get_endpoint(
            self.credentials.api_url, max_concurrency, adaptive=adaptive
        )
        self.retry_events: deque[RetryEvent] = deque(maxlen=1000)
        ws = quote(self.credentials.workspace_id, safe="")
        self._tables_path = f"/workspaces/{ws}/tables"
        self._query_path = f"{self._tables_path}/query"
        self._headers = {
            "Authorization": f"Bearer {self.credentials.token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Activeloop-Org-Id": self.credentials.org_id,
            "X-Deeplake-Client": f"deeplake-sdk/{__version__}",
            "User-Agent": f"deeplake-sdk/{__version__}",
        }
        self._closed = False

    @classmethod
    def from_env(cls, **kwargs: Any) -> DeeplakeApi:
        """Build a client from the environment / credentials file only.

        Args:
            **kwargs: Keyword options of :class:`DeeplakeApi` (``max_concurrency``, ...).
        """
        return cls(**kwargs)

    def __repr__(self) -> str:
        c = self.credentials
        return f"<DeeplakeApi {c.api_url} org={c.org_id} workspace={c.workspace_id}>"

    def __enter__(self) -> DeeplakeApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop using this client (the shared connection pool stays open for other clients)."""
        self._closed = True

    @property
    def workspace_id(self) -> str:
        """The workspace this client works in."""
        return self.credentials.workspace_id

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this DeeplakeApi is closed; create a new one")

    def _record_retry(self, event: RetryEvent) -> None:
        self.retry_events.append(event)

    def _request(
        self,
        call: RetryCall,
        method: str,
        path: str,
        body: Any = None,
        timeout: Timeout | None = None,
    ) -> Any:
        timeout = timeout or self.timeout
        return self.endpoint.request(
            method,
            path,
            headers=self._headers,
            body=body,
            timeout=(timeout.connect, timeout.read),
            acquire_timeout=call.remaining(),
            retry_of=call.last_error if call.attempt > 1 else None,
        )

    # -- SQL ---------------------------------------------------------------------------------
    def execute(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        *,
        timeout: float | Timeout | None = None,
        idempotent: bool | None = None,
        confirm: Confirm | None = None,
    ) -> QueryResult:
        r"""Run one SQL statement and return its full result.

        Failures are retried per the client's :class:`RetryPolicy`. A failure after which the
        statement may have run (reset after sending, read timeout, 500/502/504) is ambiguous:

        * reads (``SELECT``, ``WITH .. SELECT``, ``SHOW``, ...) and DDL are re-sent; a re-sent
          DDL refused with "already exists" (``CREATE``) or "does not exist" (``DROP``) had
          applied the first time: the result has ``confirmed=True``;
        * other writes are re-sent only if ``idempotent=True``; with ``confirm`` the check runs
          first and the write is re-sent only if it did not take effect (the result then has
          ``confirmed=True`` and no rows if it did); otherwise
          :class:`~deeplake_sdk.errors.AmbiguousWriteError` is raised and nothing is re-sent.
        * with both ``idempotent=True`` and ``confirm``, the write is re-sent without checking,
          and the check only settles a last ambiguous failure once the retries are spent.

        429/503 and connect failures were not executed and are always retried.

        Args:
            sql: One statement; ``$1..$n`` placeholders for ``params``.
            params: JSON scalars (``bytes`` become ``\x..`` text: write ``$n::bytea``).
            timeout: Statement timeout for this call, in seconds (or a :class:`Timeout`).
            idempotent: Override the inference from the statement kind.
            confirm: Zero-argument callable telling whether the write took effect; it may run
                queries of its own (they are retried normally).

        Returns:
            The :class:`QueryResult`.

        Raises:
            QueryError: The SQL was rejected (400, other 4xx, 408 statement timeout).
            AuthError: Token or org rejected (401/403).
            RateLimitError: 429/503 until the retries were spent.
            ServerError: 5xx until the retries were spent.
            NetworkError: No answer until the retries were spent.
            AmbiguousWriteError: A write may have been applied and could not be re-sent safely.
        """
        self._check_open()
        if not isinstance(sql, str) or not sql.strip():
            raise ValueError("sql must be a non-empty string")
        kind = statement_kind(sql)
        resend = kind in (READ, DDL) if idempotent is None else bool(idempotent)
        stmt = _Call(
            sql, check_params(params), Timeout.coerce(timeout, self.timeout), resend, confirm, kind
        )
        try:
            return self._execute(stmt)
        except QueryError as exc:
            if not _ddl_already_applied(stmt, exc):
                raise
            logger.info(
                "DDL re-sent after '%s' answered '%s': the first attempt applied it",
                stmt.first_error,
                exc.message,
            )
            return QueryResult(confirmed=True)
        except (ServerError, NetworkError) as exc:
            if (
                stmt.confirm is None
                or not stmt.maybe_applied
                or isinstance(exc, AmbiguousWriteError)
            ):
                raise
            if self._confirm(stmt, exc):
                return QueryResult(confirmed=True)
            raise

    def _confirm(self, stmt: _Call, error: BaseException) -> bool:
        assert stmt.confirm is not None
        try:
            applied = bool(stmt.confirm())
        except Exception as exc:
            raise AmbiguousWriteError(
                f"the outcome of a {stmt.kind} is unknown after '{error}' and the confirm "
                f"check failed ({exc}); check the data before writing again"
            ) from exc
        logger.info(
            "ambiguous %s: confirm check says %s",
            stmt.kind,
            "applied" if applied else "not applied",
        )
        return applied

    @retried
    def _execute(self, call: RetryCall, stmt: _Call) -> QueryResult:
        if stmt.maybe_applied and stmt.confirm is not None and not stmt.resend:
            if self._confirm(stmt, call.last_error or stmt.first_error):
                return QueryResult(confirmed=True)
            stmt.maybe_applied = False
        body = query_body(stmt.sql, stmt.params, stmt.timeout)
        try:
            answer = self._request(call, "POST", self._query_path, body, stmt.timeout)
        except (ServerError, NetworkError) as exc:
            if not is_ambiguous(exc):
                raise
            stmt.first_error = stmt.first_error or exc
            if stmt.confirm is not None:
                stmt.maybe_applied = True
            elif not stmt.resend:
                raise AmbiguousWriteError(
                    f"a {stmt.kind} statement may or may not have been applied ({exc}); it "
                    "was not re-sent because that could apply it twice. Pass confirm=<check "
                    "returning whether it took effect> or idempotent=True to execute()/query(),"
                    " or use insert_row() for inserts"
                ) from exc
            raise
        return QueryResult.from_answer(answer)

    def query(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        *,
        timeout: float | Timeout | None = None,
        idempotent: bool | None = None,
        confirm: Confirm | None = None,
    ) -> list[dict[str, Any]]:
        """Run one SQL statement and return its rows as dicts (``[]`` when it has none).

        Same arguments, retries and errors as :meth:`execute`.
        """
        return self.execute(
            sql, params, timeout=timeout, idempotent=idempotent, confirm=confirm
        ).dicts()

    def query_many(
        self,
        items: Iterable[Statement],
        *,
        timeout: float | Timeout | None = None,
        idempotent: bool | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """Run statements in parallel (on greenlets) and return their rows in input order.

        Parallelism is bounded by the endpoint's concurrency limit and works with or without
        ``gevent.monkey.patch_all()``. If the caller is interrupted (``gevent.Timeout``,
        ``kill``, ``KeyboardInterrupt``), every statement not yet sent is dropped and every
        request in flight is cancelled before the interruption propagates: nothing of this
        call runs on in the background (statements already sent may have run).

        Args:
            items: SQL strings or ``(sql, params)`` pairs.
            timeout: Statement timeout of each statement.
            idempotent: Passed to each :meth:`execute`.
            return_exceptions: Put a failed statement's exception in its place instead of
                raising.

        Returns:
            One list of row dicts per statement (or an exception, see ``return_exceptions``).

        Raises:
            DeeplakeError: The first failure in input order, once every statement has finished;
                its notes say how many failed.
        """
        jobs: list[tuple[str, Sequence[Any] | None]] = [
            (item, None) if isinstance(item, str) else (item[0], item[1]) for item in items
        ]
        if not jobs:
            return []

        def one(job: tuple[str, Sequence[Any] | None]) -> list[dict[str, Any]]:
            return self.query(job[0], job[1], timeout=timeout, idempotent=idempotent)

        results = run_parallel(one, jobs, self.endpoint.pool_size)
        failed = [r for r in results if isinstance(r, Failure)]
        if failed and not return_exceptions:
            first = failed[0].error
            if len(failed) > 1 and hasattr(first, "add_note"):
                first.add_note(
                    f"{len(failed)} of {len(jobs)} statements failed; this is the "
                    "first (pass return_exceptions=True to see each)"
                )
            raise first
        return [r.error if isinstance(r, Failure) else r for r in results]

    # -- idempotent inserts -----------------------------------------------------------------
