"""DeeplakeApi: the client of the Deeplake managed SQL API.

Plain synchronous Python: ``api.query(sql)`` returns rows. Inside, requests share one
keep-alive pool and one concurrency bound per endpoint (:mod:`deeplake_sdk.transport`), are
retried per :class:`~deeplake_sdk.retry.RetryPolicy`, and writes whose outcome is unknown
are never blindly re-sent (see :meth:`DeeplakeApi.execute`). Tables are listed, created,
ensured (one ``information_schema`` probe giving each table's
:class:`~deeplake_sdk.statements.layout.TableLayout`; existing tables altered only on
request), indexed, synced and dropped here too, and rows inserted exactly once.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from deeplake_sdk import statements
from deeplake_sdk._coop import Failure, run_parallel
from deeplake_sdk._version import __version__
from deeplake_sdk.api_types import DEFAULT_MAX_CONCURRENCY, QUICK_CONNECT_S, QueryResult, Timeout
from deeplake_sdk.config import Credentials, load_credentials
from deeplake_sdk.errors import (
    AlreadyExistsError,
    AmbiguousWriteError,
    ClosedError,
    ConnectError,
    NetworkError,
    QueryError,
    ServerError,
)
from deeplake_sdk.http_errors import is_ambiguous, is_missing_schema, origin, service_base
from deeplake_sdk.layout_memo import LayoutMemo
from deeplake_sdk.retry import RetryCall, RetryEvent, RetryPolicy, retried
from deeplake_sdk.shared_reads import read_key, shared_reads
from deeplake_sdk.sql import CHUNK, DDL, READ, check_params, chunks, statement_head, statement_kind
from deeplake_sdk.statements.layout import MEMORY, SESSIONS, LayoutKind, TableLayout, columns_of
from deeplake_sdk.stats import ClientStats

if TYPE_CHECKING:
    from deeplake_sdk.transport import Endpoint

__all__ = ["Confirm", "DeeplakeApi", "QueryResult", "Statement", "Timeout"]

logger = logging.getLogger(__name__)

# Layouts of the tables ensured by this process: (api_url, org, workspace, table) -> layout.
_ensured: dict[tuple[str, str, str, str], TableLayout] = {}
_ensured_lock = threading.Lock()
# The same, remembered on disk for the next processes (with a time to live).
_layout_memo = LayoutMemo()

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
    confirm: Confirm | None
    idempotent: bool | None = None
    maybe_applied: bool = False
    first_error: BaseException | None = field(default=None, repr=False)

    @functools.cached_property
    def kind(self) -> str:
        """``"read"``, ``"ddl"`` or ``"write"`` (:func:`~deeplake_sdk.sql.statement_kind`).

        Classified when first asked: a caller who says whether the statement may be re-sent
        spares the tokenising of a long statement (a multi-row INSERT) that succeeds.
        """
        return statement_kind(self.sql)

    @property
    def resend(self) -> bool:
        """Whether an ambiguous failure may be followed by sending the statement again."""
        return self.kind in (READ, DDL) if self.idempotent is None else self.idempotent


def _ddl_already_applied(stmt: _Call, error: QueryError) -> bool:
    """Whether a DDL re-sent after an ambiguous failure was refused because it had applied.

    ``CREATE`` answered "already exists", or ``DROP`` answered "does not exist", after the
    first attempt's answer was lost: the state the statement asked for is in place.
    """
    if stmt.first_error is None or stmt.kind != DDL:
        return False
    if isinstance(error, AlreadyExistsError):
        return True
    return statement_head(stmt.sql) == "DROP" and "does not exist" in (error.message or "")


def _shared_endpoint(api_url: str, max_concurrency: int | None, adaptive: bool) -> Endpoint:
    """The process's endpoint for these settings; the HTTP stack is imported at the first call."""
    from deeplake_sdk.transport import get_endpoint

    return get_endpoint(api_url, max_concurrency, adaptive=adaptive)


class DeeplakeApi:
    """Client of one workspace of the Deeplake SQL API.

    Args:
        token: API token (default: ``DEEPLAKE_TOKEN``, then the credentials file).
        org_id: Organisation id (default: ``DEEPLAKE_ORG_ID``, then the credentials file).
        workspace_id: Workspace id (default: ``DEEPLAKE_WORKSPACE_ID``, file, ``default``).
        api_url: Service URL (default: ``DEEPLAKE_API_URL``, file, ``https://api.deeplake.ai``).
        table: Memory table of this client (default: ``DEEPLAKE_TABLE``, else ``memory``):
            what :class:`~deeplake_sdk.DeeplakeFs`, :meth:`ensure_table` and the CLI use
            when no table is named.
        sessions_table: Sessions table of this client (default: ``DEEPLAKE_SESSIONS_TABLE``,
            else ``sessions``), used likewise by :class:`~deeplake_sdk.SessionLog`.
        max_concurrency: This client's cap on requests in flight. Every client of one origin
            takes its slots from the origin's adaptive limit, shared by the whole process and
            the host's processes; the default (256) is that limit's ceiling, so only the
            adaptive limit applies. ``None`` with ``adaptive=False``: no bound at all.
        timeout: Statement timeout in seconds, or a :class:`Timeout` (connect 10 s, statement
            60 s, read = statement + 2 s by default).
        retries: Number of retries or a :class:`RetryPolicy` (default: 3 retries, 0.5 s
            backoff doubling up to 8 s, a fifth of it before the first retry of a transient
            failure, ``Retry-After`` up to 30 s, 120 s deadline per call).
        adaptive: Adapt a ``max_concurrency`` below the default to 429/503 answers within
            ``[1, max_concurrency]`` (AIMD); ``False`` makes it a fixed cap. See
            :doc:`concepts` (concurrency) for the origin's limit.

    Attributes:
        stats: What this client has done: requests sent, retries, the concurrency limit
            (a :class:`~deeplake_sdk.stats.ClientStats`, safe to read from any thread).

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
        table: str | None = None,
        sessions_table: str | None = None,
        max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY,
        timeout: float | Timeout | None = None,
        retries: int | RetryPolicy | None = None,
        adaptive: bool = True,
    ) -> None:
        self.credentials: Credentials = load_credentials(
            token, org_id, workspace_id, api_url, table=table, sessions_table=sessions_table
        )
        self.timeout = Timeout.coerce(timeout)
        self.retry_policy = RetryPolicy.coerce(retries)
        self.max_concurrency = max_concurrency
        origin(self.credentials.api_url)  # a bad URL is refused here, not at the first request
        self._endpoint: Endpoint | None = None
        # Not a method of self: a client must not be kept alive by its own statistics.
        self._make_endpoint = functools.partial(
            _shared_endpoint, self.credentials.api_url, max_concurrency, adaptive
        )
        self.stats = ClientStats(self._make_endpoint)
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
        #: Requests wait for a slot ahead of other clients' (the journal's drain sets it).
        self.urgent = False

    def __repr__(self) -> str:
        c = self.credentials
        return f"<DeeplakeApi {c.api_url} org={c.org_id} workspace={c.workspace_id}>"

    def __enter__(self) -> DeeplakeApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def with_retries(self, retries: int | RetryPolicy | None) -> DeeplakeApi:
        """A client like this one (same credentials, endpoint and settings) retrying otherwise.

        Args:
            retries: As the constructor's ``retries``.
        """
        clone = copy.copy(self)
        clone.retry_policy = RetryPolicy.coerce(retries)
        return clone

    def connect_once(self) -> DeeplakeApi:
        """A client like this one that does not retry, nor wait long for, a connection.

        A :class:`~deeplake_sdk.errors.ConnectError` is raised at once (other failures are
        retried as by this client's policy): for callers that have somewhere else to go while
        the service cannot be reached (see :attr:`RetryPolicy.retry_connect
        <deeplake_sdk.retry.RetryPolicy>`). Its connect timeout is at most
        :data:`QUICK_CONNECT_S`, and for :attr:`RetryPolicy.connect_cooldown
        <deeplake_sdk.retry.RetryPolicy>` seconds after a connection to the origin hung, its
        requests are not sent.
        """
        clone = self.with_retries(replace(self.retry_policy, retry_connect=False))
        clone.timeout = replace(self.timeout, connect=min(self.timeout.connect, QUICK_CONNECT_S))
        return clone

    def close(self) -> None:
        """Stop using this client (the shared connection pool stays open for other clients)."""
        self._closed = True

    @property
    def endpoint(self) -> Endpoint:
        """The origin's shared connection pool and limiter, made at the first request.

        The HTTP stack is imported then: a process that only journals never pays for it.
        Threads racing here get the same endpoint (:func:`~deeplake_sdk.transport.get_endpoint`).
        """
        endpoint = self._endpoint
        if endpoint is None:
            endpoint = self._endpoint = self._make_endpoint()
        return endpoint

    @property
    def workspace_id(self) -> str:
        """The workspace this client works in."""
        return self.credentials.workspace_id

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this DeeplakeApi is closed; create a new one")

    @property
    def retry_events(self) -> list[RetryEvent]:
        """The latest retry decisions of this client, oldest first (see :attr:`stats`)."""
        return self.stats.retry_events

    def _record_retry(self, event: RetryEvent) -> None:
        self.stats.record_retry(event)

    def _request(
        self,
        call: RetryCall,
        method: str,
        path: str,
        body: Any = None,
        timeout: Timeout | None = None,
    ) -> Any:
        timeout = timeout or self.timeout
        endpoint = self.endpoint
        hung_for = endpoint.connect_hung_for()
        if self.retry_policy.skips_connect(hung_for):
            raise ConnectError(
                f"not sent: connecting to {endpoint.origin} timed out {hung_for:.1f}s ago; "
                "check the URL and the network (not tried again for "
                f"{self.retry_policy.connect_cooldown:g}s)",
                timed_out=True,
            )
        return endpoint.request(
            method,
            path,
            headers=self._headers,
            body=body,
            timeout=(timeout.connect, timeout.read),
            acquire_timeout=call.remaining(),
            retry_of=call.last_error if call.attempt > 1 else None,
            urgent=self.urgent,
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
        stmt = _Call(
            sql,
            check_params(params),
            Timeout.coerce(timeout, self.timeout),
            confirm,
            None if idempotent is None else bool(idempotent),
        )
        try:
            return self._execute(stmt)
        except QueryError as exc:
            if is_missing_schema(exc):
                self.forget_tables()
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

    def query_shared(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        *,
        derive: Callable[[list[dict[str, Any]]], Any] | None = None,
    ) -> Any:
        """:meth:`query` a read that many callers of this process may send at the same time.

        Identical reads (same tenant, statement, parameters and ``derive``) waiting at the
        same time are sent once per round (:class:`~deeplake_sdk.shared_reads.SharedReads`):
        each caller gets the answer of a statement sent after it called, as fresh as its own
        would be. For large reads many callers repeat, such as the metadata behind
        ``/index.md``.

        Args:
            sql: A read statement.
            params: Its parameters.
            derive: A function of the rows, computed once per round; its value is what every
                caller of the round gets (the same object: treat it as read-only). Without
                it, each caller gets its own list of the (shared) row dicts.

        Raises:
            ValueError: ``sql`` is not a read.
            DeeplakeError: As :meth:`query`. A round that fails after its sender's retries
                fails its sender; its other callers join one more round when the failure is
                one :attr:`retry_policy` retries (a 5xx, a 429, no answer), and get that
                round's error if it fails too.
        """
        if statement_kind(sql) != READ:
            raise ValueError(f"only reads are shared, not: {statement_head(sql)}")
        self._check_open()
        c = self.credentials
        tenant = (service_base(c.api_url), c.org_id, c.workspace_id, c.token)
        key = (read_key(tenant, sql, params), derive)

        def send() -> Any:
            rows = self.query(sql, params)
            return rows if derive is None else derive(rows)

        value = shared_reads.read(key, send, again=self.retry_policy.should_retry)
        return list(value) if derive is None else value

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
    def insert_row(
        self,
        table: str,
        row: Mapping[str, Any],
        *,
        id_column: str = "id",
        casts: Mapping[str, str] | None = None,
        timeout: float | Timeout | None = None,
    ) -> str:
        """Insert one row exactly once, however often the request has to be re-sent.

        The row gets a client-generated id (``uuid4().hex``) unless ``row[id_column]`` is set;
        the statement inserts nothing when a row with that id exists, so it is re-sent safely
        after an ambiguous failure. If the last attempt still fails ambiguously, one read
        checks whether the row is there before an error is raised.

        Args:
            table: Table name.
            row: Column -> value (JSON scalars or bytes).
            id_column: Column holding the row id.
            casts: SQL type per column for parameters PostgreSQL cannot type by itself
                (``bytes`` values get ``bytea`` automatically).
            timeout: Statement timeout.

        Returns:
            The row id.
        """
        values = dict(row)
        if values.get(id_column) is None:
            values[id_column] = uuid.uuid4().hex
        columns = list(values)
        sql = statements.guarded_insert(table, columns, id_column, _casts(values, casts))
        row_id = values[id_column]
        probe = statements.row_exists(table, id_column)
        self.execute(
            sql,
            [values[c] for c in columns],
            timeout=timeout,
            idempotent=True,
            confirm=lambda: bool(self.query(probe, [row_id])),
        )
        return str(row_id)

    def insert_rows(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        id_column: str = "id",
        casts: Mapping[str, str] | None = None,
        chunk_size: int = CHUNK,
        timeout: float | Timeout | None = None,
    ) -> list[str]:
        """Insert rows exactly once, ``chunk_size`` per statement, chunks in parallel.

        Like :meth:`insert_row` with a multi-row ``VALUES`` list; every row must have the same
        columns. Parameters inside ``VALUES`` are typed from the first row's values (bytes,
        bool, int, float); text going to a non-text column needs ``casts``
        (``{"message": "jsonb"}``).

        Returns:
            The row ids, in input order.
        """
        prepared = []
        for row in rows:
            values = dict(row)
            if values.get(id_column) is None:
                values[id_column] = uuid.uuid4().hex
            prepared.append(values)
        if not prepared:
            return []
        columns = list(prepared[0])
        if any(list(v) != columns and set(v) != set(columns) for v in prepared):
            raise ValueError("insert_rows() needs the same columns in every row")
        all_casts = _casts(prepared[0], casts, by_type=True)
        jobs = []
        for chunk in chunks(prepared, chunk_size):
            sql = statements.guarded_insert_many(table, columns, len(chunk), id_column, all_casts)
            jobs.append((sql, [v[c] for v in chunk for c in columns]))
        self.query_many(jobs, timeout=timeout, idempotent=True)
        return [str(v[id_column]) for v in prepared]

    # -- tables ------------------------------------------------------------------------------
    def list_tables(self) -> list[str]:
        """Return the names of the workspace's tables (retried like any read)."""
        self._check_open()
        return self._list_tables()

    @retried
    def _list_tables(self, call: RetryCall) -> list[str]:
        answer = self._request(call, "GET", self._tables_path)
        tables = answer.get("tables") or [] if isinstance(answer, dict) else []
        return [t["table_name"] if isinstance(t, dict) else str(t) for t in tables]

    def create_table(self, name: str, schema: Mapping[str, str], *, exists_ok: bool = True) -> bool:
        """Create a table through the tables endpoint (``POST /workspaces/{ws}/tables``).

        Args:
            name: Table name.
            schema: Column -> SQL type.
            exists_ok: Treat "already exists" (409) as success.

        Returns:
            ``True`` if created, ``False`` if it already existed.
        """
        self._check_open()
        statements.validate_identifier(name)
        body = {"table_name": name, "table_schema": dict(schema)}
        try:
            self._create_table(body)
        except AlreadyExistsError:
            if not exists_ok:
                raise
            return False
        return True

    @retried
    def _create_table(self, call: RetryCall, body: dict[str, Any]) -> None:
        self._request(call, "POST", self._tables_path, body)

    def drop_table(self, name: str, missing_ok: bool = False) -> None:
        """Drop a table (``DELETE /workspaces/{ws}/tables/{name}``).

        Args:
            name: Table name.
            missing_ok: Do not raise when the table does not exist.

        Raises:
            QueryError: The table does not exist (404) and ``missing_ok`` is false.
        """
        self._check_open()
        statements.validate_identifier(name)
        self.forget_table(name)
        try:
            self._drop_table(name)
        except QueryError as exc:
            if exc.status == 404 and missing_ok:
                return
            raise

    @retried
    def _drop_table(self, call: RetryCall, name: str) -> None:
        try:
            self._request(call, "DELETE", f"{self._tables_path}/{name}")
        except QueryError as exc:
            # A 404 after an attempt that may have dropped it: that attempt did.
            if exc.status == 404 and call.attempt > 1 and is_ambiguous(call.last_error):
                return
            raise

    def sync_table(self, name: str) -> None:
        """Make the latest commits of a table visible (``SELECT deeplake_sync_table('t')``)."""
        self.execute(statements.sync_table(name))

    def create_index(self, table: str, column: str, index_type: str | None = None) -> None:
        """Create an index ``USING deeplake_index`` (e.g. ``index_type="bm25"``) if missing."""
        try:
            self.execute(statements.create_index(table, column, index_type))
        except AlreadyExistsError:
            logger.debug("index on %s.%s already exists", table, column)

    def _layout_base(self) -> tuple[str, str, str]:
        """Where layouts are remembered: (normalised endpoint, org, workspace)."""
        c = self.credentials
        return (service_base(c.api_url), c.org_id, c.workspace_id)

    def forget_table(self, name: str) -> None:
        """Forget what is remembered of table ``name``: the next ensure probes it again.

        For a table that was dropped or altered behind the SDK's back (this process's memory
        and the one on disk, see :mod:`deeplake_sdk.layout_memo`).
        """
        base = self._layout_base()
        with _ensured_lock:
            _ensured.pop((*base, name), None)
        _layout_memo.forget(base, name)

    def forget_tables(self) -> None:
        """Forget the layouts of every table of the workspace (see :meth:`forget_table`).

        Done by :meth:`execute` when the service says a table or column does not exist.
        """
        base = self._layout_base()
        with _ensured_lock:
            for key in [k for k in _ensured if k[:3] == base]:
                del _ensured[key]
        _layout_memo.forget(base)

    def ensure_table(self, name: str | None = None, *, migrate: bool = False) -> TableLayout:
        """Make sure the memory table exists and return its layout.

        One ``information_schema.columns`` probe (the current schema: the workspace). A
        missing table is created with the agent-memory plugin's columns plus ``content
        BYTEA`` (:data:`~deeplake_sdk.statements.MEMORY_COLUMNS`). An existing table is
        **never altered** unless ``migrate`` is true: the SDK then works with the columns it
        has (a table without ``content`` holds text files only). Each table is ensured once
        per process: later calls cost nothing.

        Args:
            name: Table name (default: the configured memory table, ``memory``).
            migrate: Add the SDK's columns an existing table lacks, one ``ALTER TABLE .. ADD
                COLUMN`` each ("already exists" is success), except ``content``, which is
                never added to a table the SDK did not create. On the service, INSERTs into
                the table fail for about 30 s after an ``ADD COLUMN`` (its other writers'
                too): migrate when nothing else writes to it.

        Returns:
            The table's :class:`~deeplake_sdk.statements.layout.TableLayout`.

        Raises:
            TableLayoutError: The table lacks a column the SDK cannot do without (``path``,
                ``id``, ``size_bytes``, or both ``summary`` and ``content``) and
                ``migrate`` is false.
        """
        name = name or self.credentials.table
        return self.ensure_tables({name: MEMORY}, migrate=migrate)[name]

    def ensure_sessions_table(
        self, name: str | None = None, *, migrate: bool = False
    ) -> TableLayout:
        """Like :meth:`ensure_table`, for the sessions table (default ``sessions``).

        A table without ``id``, ``path`` or ``message`` raises
        :class:`~deeplake_sdk.statements.layout.TableLayoutError`.
        """
        name = name or self.credentials.sessions_table
        return self.ensure_tables({name: SESSIONS}, migrate=migrate)[name]

    def ensure_tables(
        self, tables: Mapping[str, LayoutKind] | None = None, *, migrate: bool = False
    ) -> dict[str, TableLayout]:
        """Ensure several tables with one probe, creating (or migrating) them in parallel.

        See :meth:`ensure_table`. Layouts are remembered under (endpoint, org, workspace,
        table): by the process, and on disk for a day (:mod:`deeplake_sdk.layout_memo`), so a
        new process does not probe again; a statement that finds a table or column missing
        makes the SDK forget them (:meth:`forget_tables`).

        Args:
            tables: Table name -> kind (``"memory"`` or ``"sessions"``); default: the
                configured memory and sessions tables.
            migrate: See :meth:`ensure_table`.

        Returns:
            Table name -> its layout.
        """
        self._check_open()
        if tables is None:
            tables = {self.credentials.table: MEMORY, self.credentials.sessions_table: SESSIONS}
        base = self._layout_base()
        out: dict[str, TableLayout] = {}
        todo: dict[str, LayoutKind] = {}
        with _ensured_lock:
            for table, kind in tables.items():
                known = _ensured.get((*base, table))
                if known is not None and known.kind == kind and not (migrate and known.to_add()):
                    out[table] = known
                else:
                    todo[table] = kind
        for table, kind in list(todo.items()):
            known = _layout_memo.get(base, table)
            if known is not None and known.kind == kind and not (migrate and known.to_add()):
                out[table] = known
                del todo[table]
                with _ensured_lock:
                    _ensured[(*base, table)] = known
        if todo:
            found = self._probe_layouts(todo)
            created = [t for t in todo if not found[t].columns]
            plans = {t: [statements.create_table(t, columns_of(todo[t]))] for t in created}
            if migrate:
                plans.update(
                    {
                        t: [statements.add_column(t, c) for c in found[t].to_add()]
                        for t in todo
                        if found[t].columns and found[t].to_add()
                    }
                )
            failed = self._run_ddl(plans)
            if created:
                # The probe again: another client may have created one of them first (then
                # our CREATE may also have failed on PostgreSQL's catalog race).
                again = self._probe_layouts({t: todo[t] for t in created})
                for t in created:
                    if again[t].columns:
                        found[t] = again[t]
                        failed.pop(t, None)
                    elif t not in failed:  # created, not visible yet (read lag)
                        found[t] = TableLayout.full(t, todo[t])
            for error in failed.values():
                raise error
            if migrate:
                for t in todo:
                    if t not in created:
                        found[t] = found[t].with_columns(c.name for c in found[t].to_add())
            layouts = {t: found[t].check() for t in todo}
            with _ensured_lock:
                _ensured.update({(*base, t): layout for t, layout in layouts.items()})
            _layout_memo.put(base, layouts)
            out.update(layouts)
        return {t: out[t] for t in tables}

    def _probe_layouts(self, tables: Mapping[str, LayoutKind]) -> dict[str, TableLayout]:
        """One ``information_schema.columns`` probe; a missing table has no columns."""
        sql, params = statements.columns_probe(list(tables))
        columns: dict[str, set[str]] = {t: set() for t in tables}
        for row in self.query(sql, params):
            columns.setdefault(row["table_name"], set()).add(row["column_name"])
        return {t: TableLayout(t, kind, frozenset(columns[t])) for t, kind in tables.items()}

    def _run_ddl(self, plans: Mapping[str, list[str]]) -> dict[str, Exception]:
        """Run each table's DDL in order, tables in parallel; "already exists" is success.

        Returns:
            Table -> the error that stopped its DDL.
        """

        def run(ddl: list[str]) -> None:
            for sql in ddl:
                try:
                    self.execute(sql)
                except AlreadyExistsError:
                    logger.debug("already exists (fine): %s", sql)

        tables = list(plans)
        outcomes = run_parallel(run, [plans[t] for t in tables], len(tables))
        return {t: o.error for t, o in zip(tables, outcomes, strict=True) if isinstance(o, Failure)}


def _casts(
    values: Mapping[str, Any], casts: Mapping[str, str] | None, *, by_type: bool = False
) -> dict[str, str]:
    """Parameter casts: bytes -> bytea always; with ``by_type`` also bool/int/float."""
    out: dict[str, str] = {}
    for column, value in values.items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            out[column] = "bytea"
        elif by_type and isinstance(value, bool):
            out[column] = "boolean"
        elif by_type and isinstance(value, int):
            out[column] = "bigint"
        elif by_type and isinstance(value, float):
            out[column] = "double precision"
    out.update(casts or {})
    return out
