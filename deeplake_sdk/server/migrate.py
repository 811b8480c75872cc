"""Data dirs of the old layout: every workspace in one database, schema ``ws_<org>_<ws>_<hash>``.

Servers before the database-per-org layout (:mod:`~deeplake_sdk.server.provision`) kept each
workspace in a schema named like its role, :func:`~.provision.workspace_role`, in the admin
database. At start the server looks for such schemas (a schema owned by the role of the same
name, shaped ``ws_..._<10 hex>``) and moves each into its org's database under the workspace
id, with ``pg_dump | psql`` (tables, rows, defaults, indexes, comments, owners) in one
transaction that also renames it; the row counts are compared before the old schema is dropped.

The org and workspace ids are recovered from the schema name when the name's hash confirms a
guess (ids that are lower-case letters, digits, ``_`` and ``-`` and short enough to survive
in the name; orgs of the server's tokens are tried too). Otherwise the server refuses to
start, changes nothing, and says how to name them: ``--migrate-workspace
SCHEMA=ORG/WORKSPACE`` (checked against the hash). Large objects are not moved (the SDK uses
none).
"""

from __future__ import annotations

import itertools
import logging
import re
import subprocess
from collections.abc import Iterable
from typing import Any

from psycopg.conninfo import make_conninfo

from deeplake_sdk.server.errors import BackendError
from deeplake_sdk.server.pool import ConnectionPool
from deeplake_sdk.server.provision import Provisioner, admin_key, quote_ident, workspace_role

logger = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x646C_6D69  # advisory lock key of the migration (admin database)
_OLD_SCHEMA = re.compile(r"ws_(?P<mid>[a-z0-9_]*)_(?P<digest>[0-9a-f]{10})")
_MAX_DASH_GUESSES = 10  # underscores of a name tried as '-' in every combination (2^n)
_FIND_OLD = r"""
SELECT n.nspname,
       coalesce(string_agg(c.relname, ', ' ORDER BY c.relname)
                FILTER (WHERE c.relkind IN ('r', 'p')), '')
FROM pg_catalog.pg_namespace n
JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner AND r.rolname = n.nspname
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid
WHERE n.nspname ~ '^ws_[a-z0-9_]*_[0-9a-f]{10}$'
GROUP BY n.nspname ORDER BY n.nspname
"""
_TABLES = (
    "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
    "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1"
)


class LayoutError(BackendError):
    """The data dir holds old-layout workspaces the server cannot migrate (start refused)."""

    def __init__(self, message: str) -> None:
        super().__init__(500, "old_layout", message)


def _variants(part: str) -> Iterable[str]:
    """``part`` and its spellings with some ``_`` read as ``-`` (cleaning made both ``_``)."""
    holes = [i for i, ch in enumerate(part) if ch == "_"]
    if len(holes) > _MAX_DASH_GUESSES:
        yield part
        return
    for dashes in itertools.product("_-", repeat=len(holes)):
        chars = list(part)
        for i, ch in zip(holes, dashes, strict=True):
            chars[i] = ch
        yield "".join(chars)


def attribute(schema: str, orgs: Iterable[str] = ()) -> tuple[str, str] | None:
    """The (org, workspace) whose old schema name is ``schema``, when a guess checks out."""
    m = _OLD_SCHEMA.fullmatch(schema)
    if m is None:
        return None
    mid = m.group("mid")
    known = list(dict.fromkeys(orgs))
    for i in [-1, *(i for i, ch in enumerate(mid) if ch == "_")]:
        org_part, ws_part = (mid[:i], mid[i + 1 :]) if i >= 0 else ("", mid)
        for org in [*known, *_variants(org_part)]:
            for ws in _variants(ws_part):
                if workspace_role(org, ws) == schema:
                    return org, ws
    return None


class Migrator:
    """Moves old-layout workspaces into org databases (see the module docstring).

    Args:
        dsn: the superuser DSN (its database is the admin database).
        pool: the backend's connection pool.
        provisioner: creates the org databases.
    """

    def __init__(self, dsn: str, pool: ConnectionPool, provisioner: Provisioner) -> None:
        self.dsn = dsn
        self.pool = pool
        self.provisioner = provisioner

    def run(self, names: dict[str, tuple[str, str]], orgs: Iterable[str]) -> int:
        """Migrate every old-layout workspace; returns how many moved.

        Args:
            names: schema -> (org, workspace) given by the operator.
            orgs: org ids worth trying when guessing (the server's tokens' orgs).

        Raises:
            LayoutError: some workspaces cannot be attributed or moved (nothing lost).
        """
        with self.pool.connection(admin_key()) as pc:
            conn = pc.conn
            conn.execute("SELECT pg_advisory_lock($1)", [_MIGRATION_LOCK])
            try:
                found = [(r[0], r[1]) for r in conn.execute(_FIND_OLD).fetchall()]
                if not found:
                    return 0
                plan = self._plan(found, names, list(orgs))
                for schema, (org, workspace) in plan.items():
                    self._move(conn, schema, org, workspace)
                return len(plan)
            finally:
                conn.execute("SELECT pg_advisory_unlock($1)", [_MIGRATION_LOCK])

    def _plan(
        self, found: list[tuple[str, str]], names: dict[str, tuple[str, str]], orgs: list[str]
    ) -> dict[str, tuple[str, str]]:
        plan: dict[str, tuple[str, str]] = {}
        unknown = []
        for schema, tables in found:
            given = names.get(schema)
            if given is not None:
                if workspace_role(*given) != schema:
                    raise LayoutError(
                        f"--migrate-workspace {schema}={given[0]}/{given[1]}: that org and "
                        f"workspace would be schema {workspace_role(*given)}, not {schema}; "
                        "check the ids you used with the older server"
                    )
                plan[schema] = given
                continue
            guess = attribute(schema, orgs)
            if guess is None:
                unknown.append(f"{schema} (tables: {tables or 'none'})")
            else:
                plan[schema] = guess
        if unknown:
            raise LayoutError(
                f"this data dir holds {len(unknown)} workspace(s) written by an older "
                f"deeplake-sdk server whose org and workspace ids cannot be read back from "
                f"their schema names: {'; '.join(unknown)}. Nothing was changed. Start again "
                "with --migrate-workspace SCHEMA=ORG/WORKSPACE for each (the ids used with "
                "the older server; they are checked against the name) to move them into "
                "the new layout, or keep using the older deeplake-sdk on this data dir"
            )
        return plan

    def _counts(self, conn: Any, schema: str) -> dict[str, int]:
        tables = [r[0] for r in conn.execute(_TABLES, [schema]).fetchall()]
        return {
            t: conn.execute(
                f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(t)}"
            ).fetchone()[0]
            for t in tables
        }

    def _move(self, admin: Any, schema: str, org: str, workspace: str) -> None:
        database = self.provisioner.ensure_org(org)
        before = self._counts(admin, schema)
        with self.pool.connection(admin_key(database)) as pc:
            exists = pc.conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = $1", [workspace])
            if exists.fetchone() is None:
                self._copy(schema, workspace, database)
            after = self._counts(pc.conn, workspace)
            if after != before:
                raise LayoutError(
                    f"old workspace schema {schema} and schema {workspace!r} of {database} "
                    f"both exist with different rows ({before} vs {after}); nothing was "
                    "dropped: compare them and drop the one to discard"
                )
        admin.execute(f"DROP SCHEMA {quote_ident(schema)} CASCADE")
        admin.execute(f"ALTER ROLE {quote_ident(schema)} RESET search_path")  # set by old servers
        logger.warning(
            "moved old-layout workspace %s/%s (schema %s: %s) into database %s",
            org,
            workspace,
            schema,
            ", ".join(f"{t} {n} rows" for t, n in before.items()) or "no tables",
            database,
        )

    def _copy(self, schema: str, workspace: str, database: str) -> None:
        """``pg_dump -n schema | psql`` into ``database``, renamed, in one transaction."""
        from deeplake_sdk.server.postgres import pg_bin

        bin_dir = pg_bin()
        rename = f"\nALTER SCHEMA {quote_ident(schema)} RENAME TO {quote_ident(workspace)};\n"
        dump_cmd = [str(bin_dir / "pg_dump"), "--dbname", self.dsn, "-n", schema]
        load_cmd = [
            str(bin_dir / "psql"),
            "--dbname",
            make_conninfo(self.dsn, dbname=database),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-1",
            "-f",
            "-",
        ]
        with (
            subprocess.Popen(dump_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as dump,
            subprocess.Popen(
                load_cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            ) as load,
        ):
            assert dump.stdout is not None and load.stdin is not None
            try:
                for chunk in iter(lambda: dump.stdout.read(1 << 16), b""):  # type: ignore[union-attr]
                    load.stdin.write(chunk)
                dumped = dump.wait() == 0
                if dumped:
                    load.stdin.write(rename.encode())
                load.stdin.close()
            except BrokenPipeError:
                dumped = dump.wait() == 0
            loaded = load.wait() == 0
            dump_err = dump.stderr.read().decode(errors="replace") if dump.stderr else ""
            load_err = load.stderr.read().decode(errors="replace") if load.stderr else ""
        if not (dumped and loaded):
            raise LayoutError(
                f"moving old-layout workspace schema {schema} into {database} failed; nothing "
                f"was dropped: {(dump_err or load_err).strip()[:500]}"
            )
