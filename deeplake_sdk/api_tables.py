"""Table management and idempotent inserts of :class:`~deeplake_sdk.api.DeeplakeApi`.

Kept apart from the query core (:mod:`deeplake_sdk.api`) as a mixin: listing, creating,
ensuring (one ``information_schema`` probe giving each table's
:class:`~deeplake_sdk.statements.layout.TableLayout`; existing tables altered only on request),
indexing, syncing and dropping tables, and inserts that are safe to re-send.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from deeplake_sdk import statements
from deeplake_sdk._coop import Failure, run_parallel
from deeplake_sdk.errors import AlreadyExistsError, QueryError
from deeplake_sdk.http_errors import is_ambiguous
from deeplake_sdk.retry import RetryCall, retried
from deeplake_sdk.statements.layout import MEMORY, SESSIONS, LayoutKind, TableLayout, columns_of

if TYPE_CHECKING:
    from deeplake_sdk.api_types import QueryResult, Timeout
    from deeplake_sdk.config import Credentials

__all__ = ["TablesMixin"]

logger = logging.getLogger(__name__)

# Layouts of the tables ensured by this process: (api_url, org, workspace, table) -> layout.
_ensured: dict[tuple[str, str, str, str], TableLayout] = {}
_ensured_lock = threading.Lock()


class TablesMixin:
    """Table operations of :class:`~deeplake_sdk.api.DeeplakeApi` (see there)."""

    credentials: Credentials
    _tables_path: str

    if TYPE_CHECKING:  # provided by DeeplakeApi

        @property
        def workspace_id(self) -> str:
            """See DeeplakeApi."""

        def _check_open(self) -> None: ...

        def _request(
            self,
            call: RetryCall,
            method: str,
            path: str,
            body: Any = None,
            timeout: Timeout | None = None,
        ) -> Any: ...

        def execute(self, sql: str, params: Sequence[Any] | None = None, **kw: Any) -> QueryResult:
            """See DeeplakeApi."""

        def query(
            self, sql: str, params: Sequence[Any] | None = None, **kw: Any
        ) -> list[dict[str, Any]]:
            """See DeeplakeApi."""

        def query_many(self, items: Any, **kw: Any) -> list[Any]:
            """See DeeplakeApi."""

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
        chunk_size: int = 100,
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
        for start in range(0, len(prepared), chunk_size):
            chunk = prepared[start : start + chunk_size]
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

    def forget_table(self, name: str) -> None:
        """Forget what this process knows of table ``name``: the next ensure probes it again.

        For a table that was dropped or altered behind the SDK's back.
        """
        with _ensured_lock:
            _ensured.pop(
                (self.credentials.api_url, self.credentials.org_id, self.workspace_id, name), None
            )

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

        See :meth:`ensure_table`. Layouts are remembered per process under (API URL, org,
        workspace, table).

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
        base = (self.credentials.api_url, self.credentials.org_id, self.workspace_id)
        out: dict[str, TableLayout] = {}
        todo: dict[str, LayoutKind] = {}
        with _ensured_lock:
            for table, kind in tables.items():
                known = _ensured.get((*base, table))
                if known is not None and known.kind == kind and not (migrate and known.to_add()):
                    out[table] = known
                else:
                    todo[table] = kind
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
