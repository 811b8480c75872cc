"""PostgreSQL access: query execution, JSON conversion, the write-dependent faults.

Import this module only after ``gevent.monkey.patch_all()``: psycopg picks its wait function
when it is first imported, and only a patched ``select`` makes it cooperative.

Where workspaces live and how they are kept apart: :mod:`~deeplake_sdk.server.provision`.
What differs from plain PostgreSQL: :mod:`~deeplake_sdk.server.dialect`. The faults that
depend on earlier writes (read lag, coalesced UPDATEs, the ALTER window) are applied here,
from the request's :class:`~deeplake_sdk.server.faults.FaultDecision`:

- a write (INSERT/UPDATE/DELETE, see :func:`~deeplake_sdk.server.sqlscan.scan`) under
  ``read_lag_ms`` runs in a transaction that is answered first and committed
  ``read_lag_ms`` later (:class:`~deeplake_sdk.server.writes.PendingCommits`);
- a single-statement UPDATE under ``p_coalesce`` runs in a transaction that returns the ``id``
  of each row it touches (the whole table stands for its rows when it has no ``id`` column);
  if one of them was updated within ``coalesce_window_ms`` (50 ms) before the UPDATE arrived
  and the seeded draw says so, it is rolled back and answered 200 with the row count it had;
- after ``ALTER TABLE t ADD COLUMN`` under ``alter_window_s``, INSERTs into ``t`` are refused
  with the service's 500 for that long, without running.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import gevent
import psycopg
from psycopg import pq
from psycopg.adapt import AdaptersMap, Loader
from psycopg.conninfo import make_conninfo
from psycopg.types.string import TextLoader

from deeplake_sdk.server import shims, sqlscan
from deeplake_sdk.server.dialect import DIALECT_SETTING, DIALECTS, QUERY_ERROR, Dialect
from deeplake_sdk.server.errors import BackendError
from deeplake_sdk.server.faults import FaultDecision
from deeplake_sdk.server.limits import Limits, ResultTooLarge, RowEncoder
from deeplake_sdk.server.options import DEFAULT_POOL_SIZE
from deeplake_sdk.server.pool import ConnectionPool, PooledConnection, PoolTimeout
from deeplake_sdk.server.provision import (
    Provisioner,
    Workspace,
    quote_ident,
    workspace_role,
)
from deeplake_sdk.server.writes import (
    AlterWindows,
    PendingCommits,
    RecentUpdates,
)

__all__ = ["Backend", "BackendError", "json_default", "workspace_role"]

logger = logging.getLogger(__name__)

_MAX_NAME_BYTES = 63
# statements that may leave session state behind (reset with DISCARD ALL after the request,
# which also releases session advisory locks)
_SESSION_STATE = re.compile(
    r"(?:^|;)\s*(?:SET|RESET|DISCARD|PREPARE|DEALLOCATE|LISTEN|DECLARE|LOAD)\b|\bset_config\b"
    r"|\bpg_(?:try_)?advisory_lock",
    re.IGNORECASE,
)
#: The service's answer to an INSERT shortly after ``ALTER TABLE .. ADD COLUMN``.
ALTER_WINDOW_MESSAGE = "Failed to insert tuple: vector::at out of range"
_NO_FAULTS = FaultDecision(-1)
_HAS_ID = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1) "
    "AND attname = 'id' AND attnum > 0 AND NOT attisdropped)"
)


# ----------------------------------------------------------------------------- conversion
class _NumericLoader(Loader):
    def load(self, data: Any) -> Any:
        text = bytes(data).decode()
        if text in ("NaN", "Infinity", "-Infinity"):
            return text
        if "." in text or "e" in text or "E" in text:
            return float(text)
        return int(text)


class _FloatLoader(Loader):
    def load(self, data: Any) -> Any:
        value = float(bytes(data))
        return value if value - value == 0 else bytes(data).decode()  # NaN/inf as text


class _TimestampLoader(Loader):
    def load(self, data: Any) -> str:
        return bytes(data).decode().replace(" ", "T", 1)


def _adapters() -> AdaptersMap:
    adapters = AdaptersMap(psycopg.adapters)
    for name in ("bytea", "uuid", "date", "time", "timetz", "interval", "money"):
        adapters.register_loader(name, TextLoader)  # bytea text output is already \x<hex>
    adapters.register_loader("numeric", _NumericLoader)
    for name in ("float4", "float8"):
        adapters.register_loader(name, _FloatLoader)
    for name in ("timestamp", "timestamptz"):
        adapters.register_loader(name, _TimestampLoader)
    return adapters


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` hook for values psycopg loads as Python objects."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _check_params(params: Any) -> list[Any] | None:
    if params is None:
        return None
    if not isinstance(params, list):
        raise BackendError(400, "invalid_params", "params must be a JSON array")
    for i, p in enumerate(params, 1):
        if p is not None and not isinstance(p, (str, int, float, bool)):
            raise BackendError(
                400,
                "invalid_params",
                f"params[{i - 1}] (${i}) must be a JSON scalar (string, number, boolean or "
                f"null), got {type(p).__name__}",
            )
    return params or None


def _options(settings: dict[str, str]) -> str:
    """Libpq ``options``: ``-c name=value`` each, spaces and backslashes escaped."""
    parts = []
    for name, value in settings.items():
        escaped = value.replace("\\", "\\\\").replace(" ", "\\ ")
        parts.append(f"-c {name}={escaped}")
    return " ".join(parts)


class Backend:
    """PostgreSQL side of the server.

    Each org (its database) may hold at most ``limits.org_cap(pool_size)`` connections; a
    request waits at most ``limits.connection_wait_s`` for one (then 503 ``database_busy``).
    Statements run under ``limits.statement_timeout(timeout_ms)`` and are cancelled by the
    server after ``limits.max_statement_timeout_ms`` whatever they ``SET``. A lost database
    connection is a 503 ``database_unavailable`` and drops the idle connections (they died
    with it); new ones are opened on the next requests.

    Args:
        dsn: superuser connection string (its database is the admin database).
        pool_size: cap on open connections (all workspaces together, admin included).
        limits: statement timeouts, result size, per-org connections, connection wait.
        dialect: the service's behaviours or plain PostgreSQL (default ``deeplake``).
        on_execute: called with the number of statements each time SQL runs for a request.
        on_inject: called with the kind of each fault injected while executing
            (``coalesce``, ``alter_window``, ``read_lag``).
    """

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        limits: Limits | None = None,
        dialect: Dialect | None = None,
        on_execute: Callable[[int], None] | None = None,
        on_inject: Callable[[str], None] | None = None,
    ) -> None:
        if pool_size < 2:
            raise ValueError("pool_size must be >= 2 (provisioning holds two connections)")
        self.dsn = dsn
        self.limits = limits or Limits()
        self.dialect = dialect or DIALECTS["deeplake"]
        self._on_execute = on_execute or (lambda n: None)
        self._on_inject = on_inject or (lambda kind: None)
        self._adapters = _adapters()
        self._secret = b""
        self.pool = ConnectionPool(
            self._connect,
            max_size=pool_size,
            acquire_timeout=self.limits.connection_wait_s,
            group_of=_org_group,
            group_cap=self.limits.org_cap(pool_size),
        )
        self.pending = PendingCommits(self.pool)
        self.pool.on_exhausted = self.pending.commit_oldest
        self.recent_updates = RecentUpdates()
        self.alter_windows = AlterWindows()
        self.provisioner = Provisioner(self.pool, self._password)

    # ------------------------------------------------------------------------ connections
    def _password(self, role: str) -> str:
        return hmac.new(self._secret, role.encode(), hashlib.sha256).hexdigest()

    def _connect(self, key: tuple[str | None, str | None, str | None]) -> psycopg.Connection[Any]:
        role, database, schema = key
        kwargs: dict[str, Any] = {"application_name": "deeplake-sdk-server"}
        if database is not None:
            kwargs["dbname"] = database
        if role is not None:
            # the search_path comes with the connection: ALTER ROLE .. SET cannot change it
            settings = {
                "search_path": f"{quote_ident(schema or '')}, {shims.SHIM_SCHEMA}",
                DIALECT_SETTING: self.dialect.name,
            }
            kwargs.update(user=role, password=self._password(role), options=_options(settings))
        try:
            return psycopg.connect(
                make_conninfo(self.dsn, **kwargs),
                autocommit=True,
                prepare_threshold=None,
                cursor_factory=psycopg.RawCursor,
                context=self._adapters,
                connect_timeout=10,
            )
        except psycopg.OperationalError as exc:
            raise BackendError(503, "database_unavailable", f"cannot connect: {exc}") from exc

    def close(self, timeout: float = 30.0) -> None:
        """Commit the writes still waiting for their read lag, then close the pool."""
        pending = self.pending.flush(timeout)
        if pending:
            logger.info("committed %d pending writes before closing", pending)
        self.pool.close()

    # ------------------------------------------------------------------------ provisioning
    def bootstrap(self) -> None:
        """Cluster-wide setup (privileges, private state, secret). Idempotent, safe to race."""
        self._secret = self.provisioner.bootstrap().encode()

    def migrate_old_layout(
        self, names: dict[str, tuple[str, str]] | None = None, orgs: Iterable[str] = ()
    ) -> int:
        """Move workspaces of the old layout into org databases (:mod:`.migrate`).

        Args:
            names: old schema -> (org, workspace), for names that cannot be guessed.
            orgs: org ids worth trying when guessing (the server's tokens' orgs).

        Returns:
            How many workspaces moved.

        Raises:
            BackendError: old-layout workspaces that cannot be moved (nothing is changed).
        """
        from deeplake_sdk.server.migrate import Migrator

        return Migrator(self.dsn, self.pool, self.provisioner).run(names or {}, orgs)

    def ensure_workspace(self, org: str, workspace: str) -> Workspace:
        """Create the org's database and the workspace's role and schema on first use."""
        return self.provisioner.ensure_workspace(org, workspace)

    def pool_stats(self) -> dict[str, Any]:
        """Connection pool and pending-commit figures for the stats."""
        return {
            "size": self.pool.max_size,
            "org_cap": self.pool.group_cap,
            "org_waits": self.pool.group_waits,
            "open": self.pool.open_count,
            "busy": self.pool.busy_count,
            "busy_peak": self.pool.busy_peak,
            "exhausted": self.pool.exhausted,
            "pending_commits": self.pending.snapshot(),
        }

    def reset_stats(self) -> None:
        """Restart the peaks and counters of :meth:`pool_stats`."""
        self.pool.reset_peak()
        self.pending.reset_peak()

    # ------------------------------------------------------------------------ queries
    def query(
        self,
        org: str,
        workspace: str,
        query: str,
        params: Any = None,
        timeout_ms: int | None = None,
        *,
        faults: FaultDecision | None = None,
        on_commit: Callable[[], Any] | None = None,
    ) -> dict[str, Any]:
        """Run ``query`` in the workspace; returns ``{columns, rows, row_count}``.

        Args:
            org: org id.
            workspace: workspace id.
            query: SQL text.
            params: ``$n`` parameters (JSON scalars).
            timeout_ms: statement timeout (None: the server's default).
            faults: the request's fault decision (read lag, coalescing, ALTER window).
            on_commit: called once a write whose commit the read lag deferred is committed.

        Raises:
            BackendError: SQL error (400, or 500 for the service's "already exists"), timeout
                (408), bad params (400), database unavailable (503), ALTER window (500).
        """
        arrived = time.monotonic()
        bound = _check_params(params)
        ws = self.ensure_workspace(org, workspace)
        faults = faults or _NO_FAULTS
        try:
            text = shims.rewrite(self.dialect.rewrite(query))
        except shims.ShimError as exc:
            raise BackendError(
                400, self.dialect.error_code(exc.sqlstate), str(exc), sqlstate=exc.sqlstate
            ) from exc
        want = self.limits.statement_timeout(timeout_ms)
        if not (faults.alter_window_s > 0 or faults.read_lag_s > 0 or faults.track_updates):
            return self._run(ws.key, text, bound, want, encode=True)  # no fault reads it
        scan = sqlscan.scan(text)
        if faults.alter_window_s > 0 and scan.insert_tables:
            keys = [(org, workspace, t) for t in scan.insert_tables]
            if self.alter_windows.blocked(keys):
                self._on_inject("alter_window")
                code = QUERY_ERROR if self.dialect.service_errors else "alter_window"
                raise BackendError(500, code, ALTER_WINDOW_MESSAGE)
        tracked = scan.single_update() if faults.track_updates else None
        if scan.kind == sqlscan.WRITE and (faults.read_lag_s > 0 or tracked is not None):
            result = self._run_write(
                ws,
                scan,
                bound,
                timeout_ms=want,
                faults=faults,
                tracked=tracked,
                arrived=arrived,
                on_commit=on_commit,
            )
        else:
            result = self._run(ws.key, text, bound, want, encode=True)
        if faults.alter_window_s > 0 and scan.added_column_tables:
            keys = [(org, workspace, t) for t in scan.added_column_tables]
            self.alter_windows.open(keys, faults.alter_window_s)
        return result

    def list_tables(self, org: str, workspace: str) -> list[str]:
        """Names of the workspace's tables, sorted."""
        ws = self.ensure_workspace(org, workspace)
        res = self._run(
            ws.key,
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = $1 ORDER BY 1",
            [ws.workspace],
            None,
        )
        return [r[0] for r in res["rows"]]

    def create_table(self, org: str, workspace: str, name: str, schema: dict[str, str]) -> None:
        """``CREATE TABLE .. USING deeplake`` in the workspace (409 if it exists)."""
        ws = self.ensure_workspace(org, workspace)
        _check_name(name, "table_name")
        cols = []
        for col, typ in schema.items():
            _check_name(col, "column name")
            masked = shims.mask(typ)
            if not typ.strip() or ";" in masked or "--" in masked or "/*" in masked:
                raise BackendError(400, "invalid_request", f"invalid type {typ!r} for {col!r}")
            cols.append(f"{quote_ident(col)} {typ}")
        table = f"{quote_ident(ws.workspace)}.{quote_ident(name)}"
        stmt = f"CREATE TABLE {table} ({', '.join(cols)}) USING deeplake"
        try:
            self._run(ws.key, stmt, None, None)
        except BackendError as exc:
            if exc.extra.get("sqlstate") == "42P07":
                raise BackendError(409, "already_exists", f'table "{name}" already exists') from exc
            raise

    def drop_table(self, org: str, workspace: str, name: str) -> None:
        """``DROP TABLE`` in the workspace (404 if unknown)."""
        ws = self.ensure_workspace(org, workspace)
        _check_name(name, "table_name")
        try:
            self._run(
                ws.key, f"DROP TABLE {quote_ident(ws.workspace)}.{quote_ident(name)}", None, None
            )
        except BackendError as exc:
            if exc.extra.get("sqlstate") == "42P01":
                raise BackendError(404, "not_found", f'table "{name}" does not exist') from exc
            raise

    # ------------------------------------------------------------------------ execution
    def _acquire(self, key: Any) -> PooledConnection:
        try:
            return self.pool.acquire(key)
        except PoolTimeout as exc:
            raise BackendError(503, "database_busy", str(exc)) from exc

    def _run(
        self,
        key: Any,
        text: str,
        params: list[Any] | None,
        timeout_ms: int | None,
        *,
        encode: bool = False,
    ) -> dict[str, Any]:
        want = self.limits.statement_timeout(timeout_ms)
        pc = self._acquire(key)
        watchdog = gevent.spawn_later(
            self.limits.max_statement_timeout_ms / 1000 + 1, _cancel, pc.conn
        )
        try:
            self._set_timeout(pc, want)
            if encode and _streamable(text):
                return self._stream(pc, text, params)
            result = self._execute(pc, text, params)
            if encode:
                encoder = RowEncoder(self.limits.max_result_bytes, json_default)
                try:
                    result["rows"] = encoder.extend(result["rows"])
                except ResultTooLarge as exc:
                    raise _too_large(exc) from exc
            return result
        except BackendError as exc:
            self._lost(exc)
            raise
        finally:
            watchdog.kill(block=False)
            self._after(pc, text)
            self.pool.release(pc, discard=pc.conn.closed or pc.conn.broken)

    def _lost(self, exc: BackendError) -> None:
        """After a lost connection: close the idle ones too (they died with the database)."""
        if exc.code == "database_unavailable":
            dropped = self.pool.discard_idle()
            logger.warning("database connection lost (%d idle closed): %s", dropped, exc)

    def _stream(self, pc: PooledConnection, text: str, params: list[Any] | None) -> dict[str, Any]:
        """Run one reading statement, encoding its rows as they arrive (bounded memory)."""
        encoder = RowEncoder(self.limits.max_result_bytes, json_default)
        cur = pc.conn.cursor()
        self._on_execute(1)
        rows = cur.stream(text, params, size=100)
        try:
            for row in rows:
                encoder.add(row)
            encoded = encoder.finish()
        except ResultTooLarge as exc:
            rows.close()  # cancels the query
            raise _too_large(exc) from exc
        except psycopg.Error as exc:
            raise self.dialect.sql_error(exc, text) from exc
        desc = cur.description
        if desc:
            columns = [d.name for d in desc]
        else:  # no row came: the columns are those of the statement just run (unnamed)
            res = pc.conn.pgconn.describe_prepared(b"")
            columns = [(res.fname(i) or b"").decode() for i in range(res.nfields)]
        return {"columns": columns, "rows": encoded, "row_count": encoded.count}

    def _run_write(
        self,
        ws: Workspace,
        scan: sqlscan.Scan,
        params: list[Any] | None,
        *,
        timeout_ms: int,
        faults: FaultDecision,
        tracked: str | None,
        arrived: float,
        on_commit: Callable[[], Any] | None = None,
    ) -> dict[str, Any]:
        """A write in an explicit transaction: coalesced, deferred or committed now."""
        text = scan.text
        pc = self._acquire(ws.key)
        conn = pc.conn
        handed_over = False
        watchdog = gevent.spawn_later(
            self.limits.max_statement_timeout_ms / 1000 + 1, _cancel, pc.conn
        )
        try:
            self._set_timeout(pc, timeout_ms)
            conn.execute("BEGIN")
            id_column = tracked is not None and self._has_id(conn, ws, tracked)
            if id_column:  # the UPDATE also returns the id of each row it touches
                end = scan.statement_end()
                extra = ', "id"' if scan.has_returning() else ' RETURNING "id"'
                text = text[:end] + extra + text[end:]
            result = self._execute(pc, text, params)
            if tracked is not None:
                keys: list[tuple[Any, ...]] = [(ws.org, ws.workspace, tracked, None)]
                if id_column:
                    keys = [(ws.org, ws.workspace, tracked, row[-1]) for row in result["rows"]]
                    result["columns"] = result["columns"][:-1]
                    rows = [row[:-1] for row in result["rows"]]
                    result["rows"] = rows if result["columns"] else []
                window = faults.coalesce_window_s
                if faults.coalesce and self.recent_updates.any_since(keys, arrived - window):
                    conn.execute("ROLLBACK")
                    self._on_inject("coalesce")
                    return result
                self.recent_updates.touch(keys, time.monotonic(), keep_s=2 * window)
            if faults.read_lag_s > 0:
                self._on_inject("read_lag")
                self.pending.defer(
                    pc, faults.read_lag_s, after=lambda: self._committed(pc, text, on_commit)
                )
                handed_over = True
            else:
                conn.execute("COMMIT")
            return result
        except psycopg.Error as exc:  # BEGIN, the id probe, COMMIT or ROLLBACK
            error = self.dialect.sql_error(exc, text)
            self._lost(error)
            raise error from exc
        except BackendError as exc:
            self._lost(exc)
            raise
        finally:
            watchdog.kill(block=False)
            if not handed_over:
                self._after(pc, text)
                self.pool.release(pc, discard=conn.closed or conn.broken)

    def _committed(
        self, pc: PooledConnection, text: str, on_commit: Callable[[], Any] | None
    ) -> None:
        """After a deferred commit: reset the connection, then tell ``on_commit``."""
        self._after(pc, text)
        if on_commit is not None:
            on_commit()

    @staticmethod
    def _has_id(conn: psycopg.Connection[Any], ws: Workspace, table: str) -> bool:
        """Whether ``table`` of the workspace has an ``id`` column."""
        target = f"{quote_ident(ws.workspace)}.{quote_ident(table)}"
        row = conn.execute(_HAS_ID, [target]).fetchone()
        return bool(row and row[0])

    def _set_timeout(self, pc: PooledConnection, timeout_ms: int) -> None:
        if pc.statement_timeout_ms != timeout_ms:
            try:
                pc.conn.execute(f"SET statement_timeout = {timeout_ms:d}")
            except psycopg.Error as exc:
                raise self.dialect.sql_error(exc) from exc
            pc.statement_timeout_ms = timeout_ms

    def _execute(
        self,
        pc: PooledConnection,
        text: str,
        params: list[Any] | None,
    ) -> dict[str, Any]:
        try:
            cur = pc.conn.cursor()
            self._on_execute(1)
            cur.execute(text, params)
            while True:  # keep the last result set of a multi-statement query
                desc = cur.description
                columns = [d.name for d in desc] if desc else []
                rows = [list(r) for r in cur.fetchall()] if desc else []
                count = len(rows) if desc else max(cur.rowcount, 0)
                if not cur.nextset():
                    break
            return {"columns": columns, "rows": rows, "row_count": count}
        except psycopg.Error as exc:
            raise self.dialect.sql_error(exc, text) from exc

    def _after(self, pc: PooledConnection, text: str) -> None:
        conn = pc.conn
        if conn.closed or conn.broken:
            return
        try:
            if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                conn.rollback()  # the request left a transaction open (BEGIN without COMMIT)
            if _SESSION_STATE.search(text) and _SESSION_STATE.search(shims.mask(text)):
                conn.execute("DISCARD ALL")
                pc.statement_timeout_ms = None
        except psycopg.Error:
            logger.debug("resetting a connection failed; closing it", exc_info=True)
            conn.close()


def _org_group(key: Any) -> Hashable | None:
    """Pool group of a connection key: the org's database for a workspace role, else None."""
    role, database, _ = key
    return database if role is not None else None


def _cancel(conn: psycopg.Connection[Any]) -> None:
    """Cancel what ``conn`` runs (it ran past the server's longest statement time)."""
    logger.warning("cancelling a statement that ran past the longest statement time")
    with contextlib.suppress(Exception):
        conn.cancel_safe(timeout=5)


def _streamable(text: str) -> bool:
    """Whether ``text`` is one reading statement (its rows can be streamed)."""
    scan = sqlscan.scan(text)
    return scan.kind == sqlscan.READ and len(scan.statements) == 1


def _too_large(exc: ResultTooLarge) -> BackendError:
    return BackendError(400, "result_too_large", str(exc), limit_bytes=exc.limit)


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name or "\0" in name:
        raise BackendError(400, "invalid_request", f"{what} must be a non-empty string")
    if len(name.encode()) > _MAX_NAME_BYTES:
        raise BackendError(400, "invalid_request", f"{what} {name!r} is longer than 63 bytes")
