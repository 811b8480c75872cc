"""Where a workspace lives: a database per org, a schema named after the workspace, a role.

Layout (as on the service, a workspace's schema is named exactly after the workspace id):

- each org has its own database, :func:`org_database` (``dl_<org>_<hash>``), created on first
  use from ``template0``, with ``CONNECT``, ``CREATE`` and ``TEMP`` revoked from ``PUBLIC``,
  its ``public`` schema dropped and the pg_deeplake shims (:mod:`~deeplake_sdk.server.shims`)
  installed in a ``deeplake`` schema;
- each workspace has a schema named exactly its id in its org's database, owned by the
  workspace's own LOGIN role, :func:`workspace_role` (``ws_<org>_<workspace>_<hash>``; roles
  are cluster-wide, so their names stay hashed), which is no superuser, inherits nothing and
  may connect to its org's database only.

A workspace's requests run on connections logged in as its role, to its org's database, with
``search_path`` set to its schema and ``deeplake``: PostgreSQL's privilege checks, not SQL
parsing, keep workspaces apart, and orgs cannot reach each other at all (PostgreSQL has no
cross-database queries). The admin database (the one of the superuser DSN) holds only the
server's private state (``deeplake_private``: the role password secret and the org registry).

Tenants cannot get in the way of setup, nor see other orgs' names:

- every advisory lock of the setup is taken in the admin database, which no workspace role
  may connect to (advisory locks are per database), so no tenant can hold one of its keys;
- in each org database, ``PUBLIC`` loses ``SELECT`` on the catalogs that list the whole
  cluster's roles, databases and sessions (:data:`CLUSTER_CATALOGS`): a tenant sees its own
  org's schemas and tables (``pg_namespace``, ``information_schema``), nothing of other orgs.
  Functions that turn an oid into a role name (``pg_get_userbyid``, ``::regrole``) still
  answer, given an oid.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from deeplake_sdk.server import shims
from deeplake_sdk.server.errors import BackendError
from deeplake_sdk.server.pool import ConnectionPool

logger = logging.getLogger(__name__)

_SETUP_LOCK = 0x646C_7365_7475  # advisory lock key of the cluster-wide setup
_ORG_LOCK_NS = 0x646C_6F72  # advisory lock namespace of org databases (creation, access rights)
_ROLE_LOCK_NS = 0x646C_726C  # advisory lock namespace of role provisioning
#: Catalogs and views of an org database that name other orgs' roles, databases or sessions.
CLUSTER_CATALOGS = (
    "pg_catalog.pg_roles",
    "pg_catalog.pg_user",
    "pg_catalog.pg_group",
    "pg_catalog.pg_auth_members",
    "pg_catalog.pg_database",
    "pg_catalog.pg_db_role_setting",
    "pg_catalog.pg_shdescription",
    "pg_catalog.pg_shseclabel",
    "pg_catalog.pg_seclabels",
    "pg_catalog.pg_stat_activity",
    "pg_catalog.pg_stat_database",
    "pg_catalog.pg_stat_database_conflicts",
    "pg_catalog.pg_stat_progress_analyze",
    "pg_catalog.pg_stat_progress_basebackup",
    "pg_catalog.pg_stat_progress_cluster",
    "pg_catalog.pg_stat_progress_copy",
    "pg_catalog.pg_stat_progress_create_index",
    "pg_catalog.pg_stat_progress_vacuum",
    "pg_catalog.pg_locks",
    "pg_catalog.pg_replication_origin_status",
    "pg_catalog.pg_stat_replication",
    "pg_catalog.pg_stat_subscription",
    "pg_catalog.pg_prepared_xacts",
)
_REVOKE_CATALOGS = (
    "DO $do$ DECLARE r text; BEGIN FOREACH r IN ARRAY ARRAY["
    + ", ".join(f"'{name}'" for name in CLUSTER_CATALOGS)
    + "] LOOP IF to_regclass(r) IS NOT NULL THEN "
    "EXECUTE format('REVOKE SELECT ON %s FROM PUBLIC', r); END IF; END LOOP; END $do$"
)
MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL would silently truncate longer names
#: Workspace ids that cannot be schema names in an org database, besides the ``pg_`` prefix.
RESERVED_WORKSPACES = frozenset({"information_schema", shims.SHIM_SCHEMA})
# the default public schema of a new database goes (a workspace may be called "public")
_DROP_DEFAULT_PUBLIC = """
DO $do$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r
             ON r.oid = n.nspowner
             WHERE n.nspname = 'public' AND (r.rolsuper OR r.rolname = 'pg_database_owner')) THEN
    DROP SCHEMA public;
  END IF;
END $do$
"""


def _clean(value: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")[:limit]


def workspace_role(org: str, workspace: str) -> str:
    """The login role of a workspace: ``ws_<org>_<workspace>_<hash>``, <= 63 bytes.

    Deterministic; the hash keeps names that clean up alike (case, punctuation, length) apart.
    """
    digest = hashlib.sha256(f"{org}\0{workspace}".encode()).hexdigest()[:10]
    return f"ws_{_clean(org, 20)}_{_clean(workspace, 24)}_{digest}"


def org_database(org: str) -> str:
    """The database of an org: ``dl_<org>_<hash>``, <= 63 bytes, deterministic."""
    digest = hashlib.sha256(org.encode()).hexdigest()[:10]
    return f"dl_{_clean(org, 40)}_{digest}"


def check_workspace_id(workspace: str) -> None:
    """Refuse a workspace id PostgreSQL cannot hold as a schema name (400 ``invalid_workspace``).

    Any text is quoted and kept as is, except: an empty id, NUL characters, more than 63
    bytes (PostgreSQL would truncate it), the ``pg_`` prefix (reserved for system schemas),
    and ``information_schema`` and ``deeplake`` (schemas every org database has).
    """
    problem = None
    if not workspace or "\0" in workspace:
        problem = "must be a non-empty text without NUL characters"
    elif len(workspace.encode()) > MAX_NAME_BYTES:
        problem = f"is longer than {MAX_NAME_BYTES} bytes, the limit of a PostgreSQL schema name"
    elif workspace.startswith("pg_"):
        problem = "starts with pg_, a prefix PostgreSQL reserves for system schemas"
    elif workspace in RESERVED_WORKSPACES:
        problem = "is the name of a schema every org database already has"
    if problem is not None:
        raise BackendError(400, "invalid_workspace", f"workspace id {workspace!r} {problem}")


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Workspace:
    """Where a workspace lives.

    Attributes:
        org: org id.
        workspace: workspace id (also its schema name).
        role: its login role.
        database: its org's database.
    """

    org: str
    workspace: str
    role: str
    database: str

    @property
    def key(self) -> tuple[str, str, str]:
        """The connection pool key of its connections."""
        return (self.role, self.database, self.workspace)


#: Pool key of superuser connections: (None, database or None for the admin one, None).
def admin_key(database: str | None = None) -> tuple[None, str | None, None]:
    """The pool key of a superuser connection to ``database`` (None: the admin database)."""
    return (None, database, None)


class Provisioner:
    """Creates org databases, workspace roles and schemas on first use (safe to race).

    Args:
        pool: the backend's connection pool (superuser keys from :func:`admin_key`).
        password: role name -> its password.
    """

    def __init__(self, pool: ConnectionPool, password: Callable[[str], str]) -> None:
        self.pool = pool
        self._password = password
        self._orgs: dict[str, str] = {}
        self._workspaces: dict[tuple[str, str], Workspace] = {}
        self._locks: dict[Any, threading.Lock] = {}
        # one setup at a time: each holds two connections (the admin lock's and the work's)
        self._setup = threading.Lock()

    # ------------------------------------------------------------------------ admin database
    def bootstrap(self) -> str:
        """Cluster-wide setup in the admin database; returns the role password secret.

        Raises:
            BackendError: the DSN's user is not a superuser.
        """
        with self.pool.connection(admin_key()) as pc:
            conn = pc.conn
            row = conn.execute(
                "SELECT rolsuper, current_database() FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if not row or not row[0]:
                raise BackendError(
                    500,
                    "not_superuser",
                    "the server's PostgreSQL user must be a superuser (it creates a database "
                    "per org and a role and a schema per workspace)",
                )
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock($1)", [_SETUP_LOCK])
                db = sql.Identifier(row[1]).as_string(conn)
                conn.execute(f"REVOKE CREATE, TEMPORARY ON DATABASE {db} FROM PUBLIC")
                conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
                conn.execute("CREATE SCHEMA IF NOT EXISTS deeplake_private")
                conn.execute("REVOKE ALL ON SCHEMA deeplake_private FROM PUBLIC")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS deeplake_private.secret "
                    "(id int PRIMARY KEY, value text NOT NULL)"
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS deeplake_private.orgs (org text PRIMARY KEY, "
                    "database text NOT NULL UNIQUE, created timestamptz NOT NULL DEFAULT now())"
                )
                conn.execute(
                    "INSERT INTO deeplake_private.secret VALUES (1, $1) ON CONFLICT DO NOTHING",
                    [secrets.token_hex(32)],
                )
                secret = conn.execute("SELECT value FROM deeplake_private.secret").fetchone()
        assert secret is not None
        return str(secret[0])

    # ------------------------------------------------------------------------ orgs
    def _lock(self, key: Any) -> threading.Lock:
        return self._locks.setdefault(key, threading.Lock())

    def ensure_org(self, org: str) -> str:
        """Create the org's database on first use (idempotent); returns its name."""
        database = self._orgs.get(org)
        if database is not None:
            return database
        with self._lock(("org", org)):
            if org not in self._orgs:
                with self._setup:
                    self._orgs[org] = self._provision_org(org)
        return self._orgs[org]

    @contextlib.contextmanager
    def _admin_lock(self, *locks: tuple[int, str]) -> Iterator[psycopg.Connection[Any]]:
        """Hold advisory locks ``(namespace, name)`` in the admin database, taken in order.

        The admin database is out of every tenant's reach; one connection holds them all.
        """
        with self.pool.connection(admin_key()) as pc, contextlib.ExitStack() as held:
            conn = pc.conn
            for namespace, name in locks:
                conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", [namespace, name])
                held.callback(
                    conn.execute,
                    "SELECT pg_advisory_unlock($1, hashtext($2))",
                    [namespace, name],
                )
            yield conn

    def _provision_org(self, org: str) -> str:
        database = org_database(org)
        ident = quote_ident(database)
        created = False
        with self._admin_lock((_ORG_LOCK_NS, database)) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = $1", [database])
            if exists.fetchone() is None:
                conn.execute(f"CREATE DATABASE {ident} TEMPLATE template0")
                created = True
            conn.execute(f"REVOKE ALL ON DATABASE {ident} FROM PUBLIC")
            conn.execute(
                "INSERT INTO deeplake_private.orgs (org, database) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING",
                [org, database],
            )
            with self.pool.connection(admin_key(database)) as pc, pc.conn.transaction():
                pc.conn.execute(_DROP_DEFAULT_PUBLIC)
                pc.conn.execute(shims.bootstrap_sql())
                pc.conn.execute(_REVOKE_CATALOGS)
        if created:
            logger.info("org %s -> database %s", org, database)
        return database

    # ------------------------------------------------------------------------ workspaces
    def ensure_workspace(self, org: str, workspace: str) -> Workspace:
        """Create the workspace's role and schema on first use; returns where it lives.

        Raises:
            BackendError: 400 ``invalid_workspace`` for an id that cannot be a schema name.
        """
        found = self._workspaces.get((org, workspace))
        if found is not None:
            return found
        check_workspace_id(workspace)
        database = self.ensure_org(org)
        ws = Workspace(org, workspace, workspace_role(org, workspace), database)
        # one provisioning per workspace at a time; concurrent first requests wait for it
        with self._lock(("ws", org, workspace)):
            if (org, workspace) not in self._workspaces:
                with self._setup:
                    self._provision_workspace(ws)
                self._workspaces[(org, workspace)] = ws
        return ws

    def _provision_workspace(self, ws: Workspace) -> None:
        role = quote_ident(ws.role)
        for attempt in range(3):
            try:
                with (
                    # the GRANT below and an org's first-use REVOKE change one catalog row:
                    # PostgreSQL refuses the second of two at once ("tuple concurrently updated")
                    self._admin_lock((_ROLE_LOCK_NS, ws.role), (_ORG_LOCK_NS, ws.database)),
                    self.pool.connection(admin_key(ws.database)) as pc,
                    pc.conn.transaction(),
                ):
                    conn = pc.conn
                    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = $1", [ws.role])
                    verb = "ALTER" if exists.fetchone() else "CREATE"
                    conn.execute(
                        f"{verb} ROLE {role} WITH LOGIN NOINHERIT NOSUPERUSER NOCREATEDB "
                        f"NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                        f"PASSWORD '{self._password(ws.role)}'"
                    )
                    database, schema = quote_ident(ws.database), quote_ident(ws.workspace)
                    conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
                break
            except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                if attempt == 2:
                    raise
                logger.debug("concurrent provisioning of %s; retrying", ws.role)
        logger.info(
            "workspace %s/%s -> schema in %s, role %s", ws.org, ws.workspace, ws.database, ws.role
        )
