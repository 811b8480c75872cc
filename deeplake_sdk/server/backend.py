"""PostgreSQL access: workspace provisioning, query execution, JSON conversion.

Import this module only after ``gevent.monkey.patch_all()``: psycopg picks its wait function
when it is first imported, and only a patched ``select`` makes it cooperative.

Isolation model: every (org, workspace) has its own schema and its own LOGIN role (not a
superuser, NOINHERIT, member of nothing, no CREATEROLE/CREATEDB) owning that schema; the
role's ``search_path`` is its schema plus the shared ``deeplake`` shim schema. A workspace's
requests run on connections logged in as its role, so PostgreSQL's privilege checks, not SQL
parsing, keep workspaces apart. ``CREATE`` and ``TEMP`` on the database and every privilege on
schema ``public`` are revoked from ``PUBLIC``. Only provisioning uses the superuser connection.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.adapt import AdaptersMap, Loader
from psycopg.conninfo import make_conninfo
from psycopg.types.string import TextLoader

from deeplake_sdk.server import shims
from deeplake_sdk.server.pool import ConnectionPool, PooledConnection, PoolTimeout

logger = logging.getLogger(__name__)

_SETUP_LOCK = 0x646C_7365_7475  # advisory lock key of the cluster-wide setup
_ROLE_LOCK_NS = 0x646C_726C  # advisory lock namespace of role provisioning
_MAX_NAME_BYTES = 63
# statements that may leave session state behind (reset with DISCARD ALL after the request)
_SESSION_STATE = re.compile(
    r"(?:^|;)\s*(?:SET|RESET|DISCARD|PREPARE|DEALLOCATE|LISTEN|DECLARE|LOAD)\b|\bset_config\b",
    re.IGNORECASE,
)


class BackendError(Exception):
    """A request failed; carries the HTTP status and the error code to answer with.

    Attributes:
        status: HTTP status.
        code: machine-readable code (a PostgreSQL SQLSTATE for SQL errors).
        message: human-readable message.
        extra: more JSON fields (``detail``, ``hint``, ``position``) when PostgreSQL gave them.
    """

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = {k: v for k, v in extra.items() if v is not None}


def workspace_role(org: str, workspace: str) -> str:
    """The role and schema name of a workspace: ``ws_<org>_<workspace>_<hash>``, <= 63 bytes.

    Deterministic; the hash keeps names that clean up alike (case, punctuation, length) apart.
    """

    def clean(value: str, limit: int) -> str:
        return re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")[:limit]

    digest = hashlib.sha256(f"{org}\0{workspace}".encode()).hexdigest()[:10]
    return f"ws_{clean(org, 20)}_{clean(workspace, 24)}_{digest}"


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


def _sql_error(exc: psycopg.Error) -> BackendError:
    state = exc.sqlstate
    diag = exc.diag
    if state == "57014" and "statement timeout" in str(exc):
        return BackendError(
            408,
            "statement_timeout",
            "statement timeout: the query ran longer than its timeout_ms and was cancelled",
        )
    if state is None:
        if isinstance(exc, psycopg.OperationalError):
            # the statement may or may not have run: answer like any ambiguous server failure
            return BackendError(
                500,
                "database_connection_lost",
                f"the database connection was lost during the query (it may have run): {exc}",
            )
        return BackendError(400, "invalid_request", str(exc))
    return BackendError(
        400,
        state,
        diag.message_primary or str(exc),
        detail=diag.message_detail,
        hint=diag.message_hint,
        position=int(diag.statement_position) if diag.statement_position else None,
    )


class Backend:
    """PostgreSQL side of the server.

    Args:
        dsn: superuser connection string.
        pool_size: cap on open connections (all workspaces together, admin included).
        default_timeout_ms: statement timeout of queries sent without ``timeout_ms``
            (0 = none).
        on_execute: called with the number of statements each time SQL runs for a request.
    """

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 100,
        default_timeout_ms: int = 0,
        on_execute: Callable[[int], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.default_timeout_ms = default_timeout_ms
        self._on_execute = on_execute or (lambda n: None)
        self._adapters = _adapters()
        self._secret = b""
        self._provisioned: set[str] = set()
        self._provision_locks: dict[str, threading.Lock] = {}
        self.pool = ConnectionPool(self._connect, max_size=pool_size)

    # ------------------------------------------------------------------------ connections
    def _password(self, role: str) -> str:
        return hmac.new(self._secret, role.encode(), hashlib.sha256).hexdigest()

    def _connect(self, role: str | None) -> psycopg.Connection[Any]:
        kwargs: dict[str, Any] = {"application_name": "deeplake-sdk-server"}
        if role is not None:
            # the search_path comes with the connection: ALTER ROLE .. SET cannot change it
            kwargs.update(
                user=role,
                password=self._password(role),
                options=f"-c search_path={role},{shims.SHIM_SCHEMA}",
            )
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

    def close(self) -> None:
        """Close the connection pool."""
        self.pool.close()

    # ------------------------------------------------------------------------ provisioning
    def bootstrap(self) -> None:
        """Cluster-wide setup: privileges, shim schema, secret. Idempotent, safe to race."""
        with self.pool.connection(None) as pc:
            conn = pc.conn
            row = conn.execute(
                "SELECT rolsuper, current_database() FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if not row or not row[0]:
                raise BackendError(
                    500,
                    "not_superuser",
                    "the server's PostgreSQL user must be a superuser (it creates a role and a "
                    "schema per workspace)",
                )
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock($1)", [_SETUP_LOCK])
                db = sql.Identifier(row[1]).as_string(conn)
                conn.execute(f"REVOKE CREATE, TEMPORARY ON DATABASE {db} FROM PUBLIC")
                conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
                conn.execute(shims.bootstrap_sql())
                conn.execute("CREATE SCHEMA IF NOT EXISTS deeplake_private")
                conn.execute("REVOKE ALL ON SCHEMA deeplake_private FROM PUBLIC")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS deeplake_private.secret "
                    "(id int PRIMARY KEY, value text NOT NULL)"
                )
                conn.execute(
                    "INSERT INTO deeplake_private.secret VALUES (1, $1) ON CONFLICT DO NOTHING",
                    [secrets.token_hex(32)],
                )
                secret = conn.execute("SELECT value FROM deeplake_private.secret").fetchone()
        assert secret is not None
        self._secret = secret[0].encode()

    def ensure_workspace(self, org: str, workspace: str) -> str:
        """Create the workspace's role and schema on first use; returns the role name."""
        role = workspace_role(org, workspace)
        if role in self._provisioned:
            return role
        # one provisioning per role at a time; concurrent first requests wait for it
        with self._provision_locks.setdefault(role, threading.Lock()):
            if role not in self._provisioned:
                self._provision(org, workspace, role)
        return role

    def _provision(self, org: str, workspace: str, role: str) -> None:
        ident = sql.Identifier(role)
        for attempt in range(3):
            try:
                with self.pool.connection(None) as pc, pc.conn.transaction():
                    conn = pc.conn
                    q = ident.as_string(conn)
                    conn.execute(
                        "SELECT pg_advisory_xact_lock($1, hashtext($2))", [_ROLE_LOCK_NS, role]
                    )
                    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = $1", [role])
                    verb = "ALTER" if exists.fetchone() else "CREATE"
                    conn.execute(
                        f"{verb} ROLE {q} WITH LOGIN NOINHERIT NOSUPERUSER NOCREATEDB "
                        f"NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '{self._password(role)}'"
                    )
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q} AUTHORIZATION {q}")
                    conn.execute(f"ALTER ROLE {q} SET search_path = {q}, deeplake")
                break
            except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                if attempt == 2:
                    raise
                logger.debug("concurrent provisioning of %s; retrying", role)
        self._provisioned.add(role)
        logger.info("workspace %s/%s -> role and schema %s", org, workspace, role)

    # ------------------------------------------------------------------------ queries
    def query(
        self,
        org: str,
        workspace: str,
        query: str,
        params: Any = None,
        timeout_ms: int | None = None,
    ) -> dict[str, Any]:
        """Run ``query`` in the workspace; returns ``{columns, rows, row_count}``.

        Raises:
            BackendError: SQL error (400, code = SQLSTATE), timeout (408), bad params (400),
                database unavailable (503).
        """
        bound = _check_params(params)
        try:
            text = shims.rewrite(query)
        except shims.ShimError as exc:
            raise BackendError(400, exc.sqlstate, str(exc)) from exc
        role = self.ensure_workspace(org, workspace)
        return self._run(role, text, bound, timeout_ms)

    def list_tables(self, org: str, workspace: str) -> list[str]:
        """Names of the workspace's tables, sorted."""
        role = self.ensure_workspace(org, workspace)
        res = self._run(
            role,
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = $1 ORDER BY 1",
            [role],
            None,
        )
        return [r[0] for r in res["rows"]]

    def create_table(self, org: str, workspace: str, name: str, schema: dict[str, str]) -> None:
        """``CREATE TABLE .. USING deeplake`` in the workspace (409 if it exists)."""
        role = self.ensure_workspace(org, workspace)
        _check_name(name, "table_name")
        cols = []
        for col, typ in schema.items():
            _check_name(col, "column name")
            masked = shims.mask(typ)
            if not typ.strip() or ";" in masked or "--" in masked or "/*" in masked:
                raise BackendError(400, "invalid_request", f"invalid type {typ!r} for {col!r}")
            cols.append(f"{_quote(col)} {typ}")
        stmt = f"CREATE TABLE {_quote(role)}.{_quote(name)} ({', '.join(cols)}) USING deeplake"
        try:
            self._run(role, stmt, None, None)
        except BackendError as exc:
            if exc.code == "42P07":
                raise BackendError(409, "already_exists", f'table "{name}" already exists') from exc
            raise

    def drop_table(self, org: str, workspace: str, name: str) -> None:
        """``DROP TABLE`` in the workspace (404 if unknown)."""
        role = self.ensure_workspace(org, workspace)
        _check_name(name, "table_name")
        try:
            self._run(role, f"DROP TABLE {_quote(role)}.{_quote(name)}", None, None)
        except BackendError as exc:
            if exc.code == "42P01":
                raise BackendError(404, "not_found", f'table "{name}" does not exist') from exc
            raise

    def _run(
        self, role: str, text: str, params: list[Any] | None, timeout_ms: int | None
    ) -> dict[str, Any]:
        want = self.default_timeout_ms if timeout_ms is None else int(timeout_ms)
        try:
            with self.pool.connection(role) as pc:
                return self._execute(pc, text, params, want)
        except PoolTimeout as exc:
            raise BackendError(503, "database_busy", str(exc)) from exc

    def _execute(
        self, pc: PooledConnection, text: str, params: list[Any] | None, timeout_ms: int
    ) -> dict[str, Any]:
        conn = pc.conn
        try:
            if pc.statement_timeout_ms != timeout_ms:
                conn.execute(f"SET statement_timeout = {timeout_ms:d}")
                pc.statement_timeout_ms = timeout_ms
            cur = conn.cursor()
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
            raise _sql_error(exc) from exc
        finally:
            self._after(pc, text)

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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name or "\0" in name:
        raise BackendError(400, "invalid_request", f"{what} must be a non-empty string")
    if len(name.encode()) > _MAX_NAME_BYTES:
        raise BackendError(400, "invalid_request", f"{what} {name!r} is longer than 63 bytes")
