r"""Every SQL shape the SDK emits, in one place, to be reviewed against DESIGN section 3.

Rules every shape here follows:

* table and column names pass :func:`~deeplake_sdk.sql.validate_identifier` and are
  double-quoted; values travel as ``$n`` parameters (or, where text is unavoidable, through
  :func:`~deeplake_sdk.sql.quote_literal`);
* tables are created ``USING deeplake``, indexes ``USING deeplake_index``;
* every ``LIKE``/``ILIKE`` says ``ESCAPE '\'``; ``IN`` lists are chunked;
* no ``SUM(..) GROUP BY`` (the real backend returned NULL: use ``MAX``), no ``<#>`` predicate.

This module holds the table DDL, migration and generic insert shapes;
:mod:`deeplake_sdk.statements.layout` the columns a table really has (and the rule that picks
one row of several), and :mod:`deeplake_sdk.statements.files` the shapes of the memory
filesystem, session logs and grep, built from such a layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from deeplake_sdk.sql import quote_ident, quote_literal, validate_identifier

__all__ = [
    "MEMORY_COLUMNS",
    "SESSIONS_COLUMNS",
    "Column",
    "add_column",
    "columns_probe",
    "create_index",
    "create_table",
    "guarded_insert",
    "guarded_insert_many",
    "index_name",
    "row_exists",
    "sync_table",
]


@dataclass(frozen=True)
class Column:
    """One column of a table the SDK creates.

    Attributes:
        name: Column name (a plain identifier).
        type: SQL type (``TEXT``, ``BYTEA``, ``BIGINT``, ``JSONB``, ``FLOAT4[]``).
        default: SQL text of the default (``''``, ``0``), or ``None`` for none.
        not_null: Whether the column is ``NOT NULL``.
    """

    name: str
    type: str
    default: str | None = "''"
    not_null: bool = True

    def definition(self) -> str:
        """Return the column definition, e.g. ``"path" TEXT NOT NULL DEFAULT ''``."""
        parts = [quote_ident(validate_identifier(self.name)), self.type]
        if self.not_null:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        return " ".join(parts)


def _text(name: str) -> Column:
    return Column(name, "TEXT")


def _float4_array(name: str) -> Column:
    return Column(name, "FLOAT4[]", None, not_null=False)


#: The memory table as the SDK creates it: the agent-memory plugin's columns (DESIGN section
#: 10) plus ``content BYTEA``, which holds the exact bytes of every file (``summary`` keeps a
#: text copy, ``''`` for binary files). Embeddings stay NULL.
MEMORY_COLUMNS: tuple[Column, ...] = (
    _text("id"),
    _text("path"),
    _text("filename"),
    _text("summary"),
    _float4_array("summary_embedding"),
    _text("author"),
    Column("mime_type", "TEXT", "'text/plain'"),
    Column("size_bytes", "BIGINT", "0"),
    _text("project"),
    _text("description"),
    _text("agent"),
    _text("plugin_version"),
    _text("creation_date"),
    _text("last_update_date"),
    Column("content", "BYTEA", "''::bytea"),
)

#: The sessions table as the SDK (and the plugin) creates it: one event per row.
SESSIONS_COLUMNS: tuple[Column, ...] = (
    _text("id"),
    _text("path"),
    _text("filename"),
    Column("message", "JSONB", None, not_null=False),
    _float4_array("message_embedding"),
    _text("author"),
    Column("mime_type", "TEXT", "'application/json'"),
    Column("size_bytes", "BIGINT", "0"),
    _text("project"),
    _text("description"),
    _text("agent"),
    _text("plugin_version"),
    _text("creation_date"),
    _text("last_update_date"),
)


def create_table(table: str, columns: Sequence[Column]) -> str:
    """``CREATE TABLE IF NOT EXISTS "t" (...) USING deeplake``.

    Args:
        table: Table name.
        columns: Its columns.
    """
    body = ", ".join(column.definition() for column in columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {quote_ident(validate_identifier(table))} ({body}) "
        "USING deeplake"
    )


def columns_probe(tables: Sequence[str]) -> tuple[str, list[str]]:
    """The one ``information_schema.columns`` probe of a migration.

    Returns ``(table_name, column_name)`` rows of the given tables in the current schema (the
    workspace); a table without rows does not exist yet.

    Args:
        tables: Table names to probe.

    Returns:
        The SQL and its parameters.
    """
    names = [validate_identifier(t) for t in tables]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    sql = (
        "SELECT table_name, column_name FROM information_schema.columns "
        f"WHERE table_schema = current_schema() AND table_name IN ({placeholders})"
    )
    return sql, names


def add_column(table: str, column: Column) -> str:
    """``ALTER TABLE "t" ADD COLUMN "c" TYPE [NOT NULL] [DEFAULT ..]`` (one missing column).

    Args:
        table: Table name.
        column: The column to add.
    """
    return f"ALTER TABLE {quote_ident(validate_identifier(table))} ADD COLUMN {column.definition()}"


def index_name(table: str, column: str) -> str:
    """Deterministic index name ``idx_<table>_<column>`` (shortened to fit 63 bytes)."""
    name = f"idx_{validate_identifier(table)}_{validate_identifier(column)}"
    if len(name) > 63:
        import hashlib

        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:54]}_{digest}"
    return name


def create_index(table: str, column: str, index_type: str | None = None) -> str:
    """``CREATE INDEX IF NOT EXISTS "idx" ON "t" USING deeplake_index ("c") [WITH (..)]``.

    Args:
        table: Table name.
        column: Indexed column.
        index_type: Optional ``index_type`` option, e.g. ``"bm25"``.
    """
    sql = (
        f"CREATE INDEX IF NOT EXISTS {quote_ident(index_name(table, column))} ON "
        f"{quote_ident(validate_identifier(table))} USING deeplake_index "
        f"({quote_ident(validate_identifier(column))})"
    )
    if index_type:
        sql += f" WITH (index_type = {quote_literal(index_type)})"
    return sql


def sync_table(table: str) -> str:
    """``SELECT deeplake_sync_table('t')``: make the table's latest commits visible."""
    return f"SELECT deeplake_sync_table({quote_literal(validate_identifier(table))})"


def _placeholder(index: int, cast: str | None) -> str:
    return f"${index}::{cast}" if cast else f"${index}"


def guarded_insert(
    table: str,
    columns: Sequence[str],
    id_column: str = "id",
    casts: Mapping[str, str] | None = None,
) -> str:
    """An INSERT that is safe to re-send: it adds nothing when the row id already exists.

    ``INSERT INTO "t" ("c1", ..) SELECT $1, .. WHERE NOT EXISTS (SELECT 1 FROM "t" WHERE
    "id" = $k)`` where ``$k`` is the parameter of ``id_column`` (no extra parameter).

    Args:
        table: Table name.
        columns: Inserted columns, in parameter order; must include ``id_column``.
        id_column: Column holding the client-generated row id.
        casts: Optional SQL type per column (``{"content": "bytea"}``) added as ``$n::type``.
    """
    casts = casts or {}
    cols = [validate_identifier(c) for c in columns]
    key = cols.index(validate_identifier(id_column)) + 1
    qt = quote_ident(validate_identifier(table))
    values = ", ".join(_placeholder(i, casts.get(c)) for i, c in enumerate(cols, start=1))
    return (
        f"INSERT INTO {qt} ({', '.join(quote_ident(c) for c in cols)}) SELECT {values} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {qt} WHERE {quote_ident(id_column)} = "
        f"{_placeholder(key, casts.get(id_column))})"
    )


def guarded_insert_many(
    table: str,
    columns: Sequence[str],
    rows: int,
    id_column: str = "id",
    casts: Mapping[str, str] | None = None,
) -> str:
    """Multi-row form of :func:`guarded_insert` (one VALUES list, the same guard per row).

    ``INSERT INTO "t" (..) SELECT v."c1", .. FROM (VALUES ($1, ..), ($k, ..)) AS v("c1", ..)
    WHERE NOT EXISTS (SELECT 1 FROM "t" WHERE "t"."id" = v."id")``. Rows must have distinct
    ids. Parameters are row-major.

    Args:
        table: Table name.
        columns: Inserted columns; must include ``id_column``.
        rows: Number of rows (at least 1).
        id_column: Column holding the client-generated row id.
        casts: Optional SQL type per column. Parameters inside ``VALUES`` are typed by their
            first row, so give a cast for every non-text column.
    """
    if rows < 1:
        raise ValueError("guarded_insert_many() needs at least one row")
    casts = casts or {}
    cols = [validate_identifier(c) for c in columns]
    qid = quote_ident(validate_identifier(id_column))
    if id_column not in cols:
        raise ValueError(f"columns must include the id column {id_column!r}")
    qt = quote_ident(validate_identifier(table))
    qcols = [quote_ident(c) for c in cols]
    width = len(cols)
    tuples = ", ".join(
        "("
        + ", ".join(_placeholder(r * width + i, casts.get(c)) for i, c in enumerate(cols, start=1))
        + ")"
        for r in range(rows)
    )
    return (
        f"INSERT INTO {qt} ({', '.join(qcols)}) "
        f"SELECT {', '.join('v.' + c for c in qcols)} "
        f"FROM (VALUES {tuples}) AS v({', '.join(qcols)}) "
        f"WHERE NOT EXISTS (SELECT 1 FROM {qt} WHERE {qt}.{qid} = v.{qid})"
    )


def row_exists(table: str, id_column: str = "id") -> str:
    """``SELECT 1 FROM "t" WHERE "id" = $1 LIMIT 1``: did a write with this row id land?"""
    return (
        f"SELECT 1 FROM {quote_ident(validate_identifier(table))} "
        f"WHERE {quote_ident(validate_identifier(id_column))} = $1 LIMIT 1"
    )
