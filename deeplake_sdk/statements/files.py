r"""SQL shapes of the memory filesystem, session logs and grep (the rest: the package).

Every statement is built here so they can be reviewed together against the service's dialect:
``$n`` placeholders with JSON-scalar params, bytea passed as ``\\x..`` hex text cast with
``::bytea``, ``||`` concatenation, ``LIKE .. ESCAPE '\\'``, bounded ``IN`` lists, no ``SUM``
with ``GROUP BY`` and no ``<#>`` in a WHERE clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deeplake_sdk.sql import bytea_param, like_escape, quote_ident
from deeplake_sdk.statements import MEMORY_COLUMNS as MEMORY_TABLE
from deeplake_sdk.statements import SESSIONS_COLUMNS as SESSIONS_TABLE
from deeplake_sdk.statements import guarded_insert

#: Rows per multi-row INSERT and values per IN list.
CHUNK = 50

Statement = tuple[str, list[Any]]


@dataclass
class Params:
    """Collects parameter values and hands out their ``$n`` placeholders."""

    values: list[Any] = field(default_factory=list)

    def __call__(self, value: Any, cast: str = "") -> str:
        """Add ``value``; return its placeholder, with ``::cast`` when given."""
        self.values.append(value)
        return f"${len(self.values)}{'::' + cast if cast else ''}"


MEMORY_COLUMNS = tuple(c.name for c in MEMORY_TABLE)
SESSION_COLUMNS = tuple(c.name for c in SESSIONS_TABLE)
_MEMORY_CASTS = {"content": "bytea", "size_bytes": "bigint"}


def _in_list(p: Params, values: Sequence[str]) -> str:
    return ", ".join(p(v) for v in values)


# -- memory: metadata and reads -----------------------------------------------------------
def memory_metadata(table: str) -> Statement:
    """Path, size, MIME type, date and description of every memory file."""
    t = quote_ident(table)
    return (
        f"SELECT path, size_bytes, mime_type, last_update_date, description FROM {t}",
        [],
    )


def memory_read(table: str, paths: Sequence[str]) -> Statement:
    """Content of up to :data:`CHUNK` files: text in ``summary``, bytes only for binary files."""
    t, p = quote_ident(table), Params()
    return (
        f"SELECT path, id, summary, CASE WHEN summary = '' THEN content END AS content, "
        f"size_bytes, mime_type, last_update_date, description FROM {t} "
        f"WHERE path IN ({_in_list(p, paths)}) ORDER BY path, id",
        p.values,
    )


def memory_probe(table: str, path: str) -> Statement:
    """Size and date of one file (the oldest row when a race left several)."""
    t, p = quote_ident(table), Params()
    return (
        f"SELECT size_bytes, last_update_date FROM {t} WHERE path = {p(path)} ORDER BY id LIMIT 1",
        p.values,
    )


def memory_ids(table: str, paths: Sequence[str]) -> Statement:
    """Row ids per path, to verify inserts and find duplicates."""
    t, p = quote_ident(table), Params()
    return (f"SELECT path, id FROM {t} WHERE path IN ({_in_list(p, paths)})", p.values)


# -- memory: writes -------------------------------------------------------------------------
def memory_insert_new(table: str, rows: Sequence[dict[str, Any]]) -> Statement:
    """Insert rows whose path does not exist yet; re-sending it never adds a second row."""
    t, p = quote_ident(table), Params()
    tuples = []
    for row in rows:
        values = []
        for col in MEMORY_COLUMNS:
            value = row[col]
            if col == "content":
                value = bytea_param(value)
            values.append(p(value, _MEMORY_CASTS.get(col, "text")))
        tuples.append(f"({', '.join(values)})")
    cols = ", ".join(MEMORY_COLUMNS)
    return (
        f"INSERT INTO {t} ({cols}) SELECT {cols} FROM (VALUES {', '.join(tuples)}) AS v({cols}) "
        f"WHERE NOT EXISTS (SELECT 1 FROM {t} AS m WHERE m.path = v.path)",
        p.values,
    )


def memory_replace(table: str, row: dict[str, Any]) -> Statement:
    """Overwrite the content of an existing file (idempotent).

    ``project`` and ``description`` are only set when the row carries them (not None).
    """
    t, p = quote_ident(table), Params()
    sets = [
        f"filename = {p(row['filename'])}",
        f"content = {p(bytea_param(row['content']), 'bytea')}",
        f"summary = {p(row['summary'])}",
        f"mime_type = {p(row['mime_type'])}",
        f"size_bytes = {p(row['size_bytes'], 'bigint')}",
        f"last_update_date = {p(row['last_update_date'])}",
    ]
    for col in ("project", "description"):
        if row.get(col) is not None:
            sets.append(f"{col} = {p(row[col])}")
    return (f"UPDATE {t} SET {', '.join(sets)} WHERE path = {p(row['path'])}", p.values)


def memory_dedupe(table: str, path: str, keep_id: str) -> Statement:
    """Delete every row of ``path`` but ``keep_id`` (resolves a create/create race)."""
    t, p = quote_ident(table), Params()
    return (f"DELETE FROM {t} WHERE path = {p(path)} AND id <> {p(keep_id)}", p.values)


def memory_append(
    table: str, path: str, data: bytes, *, text: str | None, expected_size: int, date: str
) -> Statement:
    """Append ``data`` if the file still has ``expected_size`` bytes (compare-and-swap).

    ``text`` is the appended data as text, or None when it is not valid UTF-8 text; the text copy
    in ``summary`` is extended only while the whole file is text.
    """
    t, p = quote_ident(table), Params()
    txt = p(text, "text")
    return (
        f"UPDATE {t} SET content = content || {p(bytea_param(data), 'bytea')}, "
        f"summary = CASE WHEN {txt} IS NULL THEN '' "
        f"WHEN size_bytes = 0 OR summary <> '' THEN summary || {txt} ELSE '' END, "
        f"size_bytes = size_bytes + {p(len(data), 'bigint')}, "
        f"last_update_date = {p(date)} "
        f"WHERE path = {p(path)} AND size_bytes = {p(expected_size, 'bigint')}",
        p.values,
    )


def memory_append_landed(table: str, path: str, data: bytes, offset: int) -> Statement:
    """Whether ``data`` sits at byte ``offset`` of the file: did an ambiguous append land?"""
    t, p = quote_ident(table), Params()
    return (
        f"SELECT 1 AS landed FROM {t} WHERE path = {p(path)} "
        f"AND size_bytes >= {p(offset + len(data), 'bigint')} "
        f"AND substring(content FROM {p(offset + 1, 'int')} FOR {p(len(data), 'int')}) = "
        f"{p(bytea_param(data), 'bytea')} LIMIT 1",
        p.values,
    )


def memory_delete(table: str, path: str) -> Statement:
    """Delete one file."""
    t, p = quote_ident(table), Params()
    return (f"DELETE FROM {t} WHERE path = {p(path)}", p.values)


def memory_delete_tree(table: str, directory: str) -> Statement:
    """Delete every file inside ``directory``."""
    t, p = quote_ident(table), Params()
    prefix = like_escape(directory.rstrip("/") + "/") + "%"
    return (f"DELETE FROM {t} WHERE path LIKE {p(prefix)} ESCAPE '\\'", p.values)


def memory_rename(table: str, src: str, dst: str, filename: str, date: str) -> Statement:
    """Rename one file (idempotent: a second run finds nothing at ``src``)."""
    t, p = quote_ident(table), Params()
    return (
        f"UPDATE {t} SET path = {p(dst)}, filename = {p(filename)}, "
        f"last_update_date = {p(date)} WHERE path = {p(src)}",
        p.values,
    )


def memory_rename_tree(table: str, src_dir: str, dst_dir: str, date: str) -> Statement:
    """Move every file inside ``src_dir`` to the same place inside ``dst_dir``."""
    t, p = quote_ident(table), Params()
    src_prefix = src_dir.rstrip("/") + "/"
    dst_prefix = dst_dir.rstrip("/") + "/"
    return (
        f"UPDATE {t} SET path = {p(dst_prefix)} || substring(path FROM "
        f"{p(len(src_prefix) + 1, 'int')}), last_update_date = {p(date)} "
        f"WHERE path LIKE {p(like_escape(src_prefix) + '%')} ESCAPE '\\'",
        p.values,
    )


# -- sessions ----------------------------------------------------------------------------------
def sessions_metadata(table: str) -> Statement:
    """Row count and last change per session file (MAX, not SUM: see the dialect notes)."""
    t = quote_ident(table)
    return (
        f"SELECT path, COUNT(*) AS n, MAX(last_update_date) AS last_update_date "
        f"FROM {t} GROUP BY path",
        [],
    )


def session_lines(table: str, path: str) -> Statement:
    """The events of one session file as JSON text lines, in creation order."""
    t, p = quote_ident(table), Params()
    return (
        f"SELECT id, message::text AS line FROM {t} WHERE path = {p(path)} "
        "ORDER BY creation_date, id",
        p.values,
    )


def session_insert(table: str, row: dict[str, Any]) -> Statement:
    """Insert one event row unless a row with its id exists (safe to re-send)."""
    sql = guarded_insert(table, SESSION_COLUMNS, casts={"message": "jsonb", "size_bytes": "bigint"})
    return sql, [row[c] for c in SESSION_COLUMNS]


# -- grep ------------------------------------------------------------------------------------
def _scope(p: Params, directory: str) -> str:
    if directory == "/":
        return "TRUE"
    prefix = like_escape(directory.rstrip("/") + "/") + "%"
    return f"(path = {p(directory)} OR path LIKE {p(prefix)} ESCAPE '\\')"


def grep_candidates(
    memory_table: str,
    sessions_table: str | None,
    directory: str,
    like: str | None,
    case_insensitive: bool,
) -> Statement:
    """Every text that may match: memory files whole, session events one JSON line each.

    ``like`` is a LIKE pattern (already escaped) that every matching text contains, or None.
    One statement. Session lines carry their line number in the session file (``n``), counted
    before the filter so that ``grep -n`` output is right.
    """
    p = Params()
    op = "ILIKE" if case_insensitive else "LIKE"
    pattern = p(like) if like else ""
    sql = (
        f"SELECT 'memory' AS kind, path, summary AS text, id, 0 AS n "
        f"FROM {quote_ident(memory_table)} WHERE {_scope(p, directory)}"
        + (f" AND summary {op} {pattern} ESCAPE '\\'" if like else "")
    )
    if sessions_table:
        sql += (
            f" UNION ALL SELECT 'session' AS kind, path, text, id, n FROM ("
            f"SELECT path, message::text AS text, id, ROW_NUMBER() OVER "
            f"(PARTITION BY path ORDER BY creation_date, id) AS n "
            f"FROM {quote_ident(sessions_table)} WHERE {_scope(p, directory)}) AS s"
            + (f" WHERE text {op} {pattern} ESCAPE '\\'" if like else "")
        )
    return sql, p.values
