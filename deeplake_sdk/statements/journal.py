r"""SQL shapes the journal's drain sends to the memory and sessions tables.

Every shape is exact under retries, races and read lag when used as the drain uses it:

* new files go in one multi-row ``INSERT .. WHERE NOT EXISTS`` per chunk (the path guard);
* an append is a compare-and-swap: it applies only to the row it names while that row still has
  the size and date the append expects, and :func:`append_landed` tells afterwards whether the
  bytes sit at that offset;
* a replace rewrites every row of its path (duplicates converge), a dedupe deletes the other
  rows by their ids;
* replaces, deletes and renames carry a date guard (:func:`not_newer`): a copy of one that
  the service runs late (a request still queued when its process died, a resend whose first
  copy was only slow) never undoes a newer change;
* session events are inserted only when no row has their id.

Statements that write or read whole rows take the table's
:class:`~deeplake_sdk.statements.layout.TableLayout` and name only the columns it has: tables
created by other clients may lack ``content`` (text lives in ``summary`` only; such a table
holds no binary data) or ``agent``/``plugin_version`` (filled with the SDK's values where they
exist, unless the row brings its own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from deeplake_sdk.dates import utc_stamp
from deeplake_sdk.sql import bytea_param, like_escape, quote_ident
from deeplake_sdk.statements import MEMORY_COLUMNS
from deeplake_sdk.statements.files import Params, Statement, _in_list, file_bytes_columns
from deeplake_sdk.statements.layout import AGENT, PLUGIN_VERSION, TableLayout

__all__ = [
    "FUTURE_SLACK_S",
    "MEMORY_ROW_COLUMNS",
    "append_cas",
    "append_landed",
    "dedupe",
    "delete_event_copies",
    "delete_path",
    "delete_row",
    "delete_tree",
    "delete_twins",
    "event_copies",
    "insert_absent",
    "insert_events",
    "not_newer",
    "rename_path",
    "rename_tree",
    "replace",
    "restore_event_date",
    "row_content",
    "rows_of",
    "rows_under",
    "supersedes",
]

#: Every column a memory row built by the SDK may fill, in insert order.
MEMORY_ROW_COLUMNS = tuple(c.name for c in MEMORY_COLUMNS if c.type != "FLOAT4[]")
_CASTS = {"content": "bytea", "size_bytes": "bigint", "message": "jsonb"}


#: How far ahead of this host's clock a row's ``last_update_date`` may be and still count as
#: newer than a change: a row dated further ahead (written by a host whose clock is wrong, given
#: a date by hand, or dated in a format that sorts higher) does not hold back later changes.
FUTURE_SLACK_S = 600.0


def _horizon(now: datetime | None) -> str:
    return utc_stamp((now or datetime.now(timezone.utc)) + timedelta(seconds=FUTURE_SLACK_S))


def not_newer(p: Params, stamp: str, *, now: datetime | None = None) -> str:
    """SQL condition: the row was last changed at or before ``stamp`` (the date guard).

    A change guarded so applies only to rows no newer change has touched since: sent again, or
    run late by the service, it leaves a newer write alone. Rows dated more than
    :data:`FUTURE_SLACK_S` ahead of ``now`` count as older than any change, and so do rows
    without a date (NULL, as another client's table may hold).

    Args:
        p: The statement's parameters (the condition adds two).
        stamp: The change's date (``last_update_date`` text, see :mod:`deeplake_sdk.dates`).
        now: This host's time (default: now).
    """
    return (
        f"(COALESCE(last_update_date, '') <= {p(stamp)} OR last_update_date > {p(_horizon(now))})"
    )


def supersedes(date: str, stamp: str, *, now: datetime | None = None) -> bool:
    """Whether a row dated ``date`` holds a change newer than one dated ``stamp``.

    The Python side of :func:`not_newer`: true exactly when that guard keeps the change off.
    """
    return stamp < date <= _horizon(now)


def _value(column: str, value: Any) -> Any:
    return bytea_param(value) if column == "content" else value


#: Values of the SDK's own columns, where the table has them and the row brings none.
_OWN_VALUES = {"agent": AGENT, "plugin_version": PLUGIN_VERSION}


def _fill(layout: TableLayout, row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """The values of ``row`` for the table's columns among ``columns``, in that order.

    ``agent`` and ``plugin_version`` get the SDK's values (:data:`_OWN_VALUES`) unless the row
    carries a non-empty one; another column the row does not carry is left out (the table's
    default applies).
    """
    values = dict(row)
    for column, own in _OWN_VALUES.items():
        if not values.get(column):
            values[column] = own
    return {c: values[c] for c in columns if layout.has(c) and c in values}


def _check_storable(layout: TableLayout, row: Mapping[str, Any]) -> None:
    """Refuse bytes that a table without ``content`` cannot hold."""
    if not layout.binary_ok and row.get("content") and not row.get("summary"):
        raise ValueError(
            f"table {layout.name!r} has no content column: it holds UTF-8 text only, "
            "not binary data"
        )


def insert_absent(layout: TableLayout, rows: Sequence[Mapping[str, Any]]) -> Statement:
    """Insert rows whose path has no row yet (one statement; re-sending it adds nothing).

    Args:
        layout: The memory table's layout.
        rows: Rows with distinct paths (keys of :data:`MEMORY_ROW_COLUMNS`).

    Raises:
        ValueError: A row holds binary data and the table has no ``content`` column.
    """
    t, p = quote_ident(layout.name), Params()
    cols = list(_fill(layout, rows[0], MEMORY_ROW_COLUMNS))
    tuples = []
    for row in rows:
        _check_storable(layout, row)
        filled = _fill(layout, row, cols)
        values = [p(_value(c, filled[c]), _CASTS.get(c, "text")) for c in cols]
        tuples.append(f"({', '.join(values)})")
    names = ", ".join(cols)
    return (
        f"INSERT INTO {t} ({names}) SELECT {names} FROM (VALUES {', '.join(tuples)}) "
        f"AS v({names}) WHERE NOT EXISTS (SELECT 1 FROM {t} AS m WHERE m.path = v.path)",
        p.values,
    )


def rows_of(table: str, paths: Sequence[str]) -> Statement:
    """Identity, size and dates of every row of up to a chunk of paths, oldest first."""
    t, p = quote_ident(table), Params()
    return (
        f"SELECT path, id, size_bytes, last_update_date, creation_date FROM {t} "
        f"WHERE path IN ({_in_list(p, paths)}) ORDER BY path, creation_date, id",
        p.values,
    )


def replace(layout: TableLayout, row: Mapping[str, Any], *, guarded: bool = True) -> Statement:
    """Overwrite the content of every row of ``row["path"]`` (idempotent).

    ``project`` and ``description`` change only when the row carries them (not None); ``id``
    and ``creation_date`` are kept. With ``guarded``, only rows not newer than the row's
    ``last_update_date`` are overwritten (:func:`not_newer`).

    Raises:
        ValueError: The row holds binary data and the table has no ``content`` column.
    """
    _check_storable(layout, row)
    t, p = quote_ident(layout.name), Params()
    sets = []
    for col in ("filename", "content", "summary", "mime_type", "size_bytes", "last_update_date"):
        if layout.has(col):
            sets.append(f"{col} = {p(_value(col, row[col]), _CASTS.get(col, ''))}")
    for col in ("project", "description"):
        if layout.has(col) and row.get(col) is not None:
            sets.append(f"{col} = {p(row[col])}")
    where = f"path = {p(row['path'])}"
    if guarded and layout.has("last_update_date"):
        where += f" AND {not_newer(p, row['last_update_date'])}"
    return (f"UPDATE {t} SET {', '.join(sets)} WHERE {where}", p.values)


def dedupe(table: str, path: str, ids: Sequence[str]) -> Statement:
    """Delete the rows of ``path`` with one of these ids (the duplicates of the row kept).

    Naming the rows deleted, rather than the one kept, a copy of this statement that the
    service runs late never removes a file created at that path since (its row has a new id).
    """
    t, p = quote_ident(table), Params()
    return (f"DELETE FROM {t} WHERE path = {p(path)} AND id IN ({_in_list(p, ids)})", p.values)


def delete_twins(
    table: str, path: str, row_id: str, *, not_after: str, size: int | None = None
) -> Statement:
    """Delete the copies of one create (rows of ``path`` with id ``row_id``) nobody changed.

    Only rows last changed at or before ``not_after`` and, with ``size``, still of that size:
    an append onto a copy changes both, and its bytes must not be deleted with the copy.
    """
    t, p = quote_ident(table), Params()
    sql = f"DELETE FROM {t} WHERE {_row_guard(p, path, row_id)}"
    sql += f" AND {not_newer(p, not_after)}"
    if size is not None:
        sql += f" AND size_bytes = {p(size, 'bigint')}"
    return (sql, p.values)


def _row_guard(p: Params, path: str, row_id: str | None) -> str:
    guard = f"path = {p(path)}"
    if row_id:
        guard += f" AND id = {p(row_id)}"
    return guard


def append_cas(
    layout: TableLayout,
    path: str,
    row_id: str | None,
    data: bytes,
    *,
    text: str | None,
    expected_size: int,
    expected_date: str | None = None,
    date: str,
) -> Statement:
    """Append ``data`` to one row if it is still as the append expects it.

    Args:
        layout: The memory table's layout (without ``content`` only text can be appended).
        path: The file.
        row_id: The row to extend (None or empty: any row of the path).
        data: Appended bytes.
        text: ``data`` as text, or None when it is not valid UTF-8 text.
        expected_size: Size the row must have.
        expected_date: ``last_update_date`` the row must have (None: any). Every change dates
            the row anew, so a late copy of the append (run after the file was rewritten to
            the same size) finds another date and changes nothing.
        date: New ``last_update_date`` (unique per append: it identifies it).

    Raises:
        ValueError: ``text`` is None and the table has no ``content`` column.
    """
    t, p = quote_ident(layout.name), Params()
    sets = []
    if layout.binary_ok:
        txt = p(text, "text")
        sets.append(f"content = content || {p(bytea_param(data), 'bytea')}")
        sets.append(
            f"summary = CASE WHEN {txt} IS NULL THEN '' "
            f"WHEN size_bytes = 0 OR summary <> '' THEN summary || {txt} ELSE '' END"
        )
    else:
        if text is None:
            raise ValueError(f"table {layout.name!r} has no content column: append text only")
        sets.append(f"summary = summary || {p(text, 'text')}")
    sets.append(f"size_bytes = size_bytes + {p(len(data), 'bigint')}")
    sets.append(f"last_update_date = {p(date)}")
    where = f"{_row_guard(p, path, row_id)} AND size_bytes = {p(expected_size, 'bigint')}"
    if expected_date is not None and layout.has("last_update_date"):
        where += f" AND COALESCE(last_update_date, '') = {p(expected_date)}"
    return (f"UPDATE {t} SET {', '.join(sets)} WHERE {where}", p.values)


def append_landed(
    layout: TableLayout,
    path: str,
    row_id: str | None,
    data: bytes,
    *,
    offset: int,
) -> Statement:
    """Whether ``data`` sits at byte ``offset`` of the row: did a lost-answer append land?"""
    t, p = quote_ident(layout.name), Params()
    body = "content" if layout.binary_ok else "convert_to(summary, 'UTF8')"
    return (
        f"SELECT 1 AS landed FROM {t} WHERE {_row_guard(p, path, row_id)} "
        f"AND size_bytes >= {p(offset + len(data), 'bigint')} "
        f"AND substring({body} FROM {p(offset + 1, 'int')} FOR {p(len(data), 'int')}) = "
        f"{p(bytea_param(data), 'bytea')} LIMIT 1",
        p.values,
    )


def delete_path(table: str, path: str, *, not_after: str | None = None) -> Statement:
    """Delete a file; with ``not_after``, only rows last changed at or before that date."""
    t, p = quote_ident(table), Params()
    sql = f"DELETE FROM {t} WHERE path = {p(path)}"
    if not_after is not None:
        sql += f" AND {not_newer(p, not_after)}"
    return sql, p.values


def delete_tree(table: str, directory: str, *, not_after: str | None = None) -> Statement:
    """Delete every file inside ``directory`` (with ``not_after``: only rows not newer)."""
    t, p = quote_ident(table), Params()
    prefix = like_escape(directory.rstrip("/") + "/") + "%"
    sql = f"DELETE FROM {t} WHERE path LIKE {p(prefix)} ESCAPE '\\'"
    if not_after is not None:
        sql += f" AND {not_newer(p, not_after)}"
    return sql, p.values


def rename_path(table: str, src: str, dst: str, filename: str, date: str) -> list[Statement]:
    """Move one file, replacing what is at ``dst`` (two statements, in this order).

    The first deletes the target only while the source still exists, so re-sending the pair
    after it applied never deletes the moved file; the second finds nothing to move then. Both
    leave alone a source newer than ``date`` (:func:`not_newer`): a file written there since.
    """
    t = quote_ident(table)
    p1 = Params()
    drop = (
        f"DELETE FROM {t} WHERE path = {p1(dst)} AND EXISTS "
        f"(SELECT 1 FROM {t} AS s WHERE s.path = {p1(src)} AND {not_newer(p1, date)})",
        p1.values,
    )
    p2 = Params()
    move = (
        f"UPDATE {t} SET path = {p2(dst)}, filename = {p2(filename)}, "
        f"last_update_date = {p2(date)} WHERE path = {p2(src)} AND {not_newer(p2, date)}",
        p2.values,
    )
    return [drop, move]


def rename_tree(table: str, src_dir: str, dst_dir: str, date: str) -> Statement:
    """Move every file inside ``src_dir`` not newer than ``date`` into ``dst_dir``, in place."""
    t, p = quote_ident(table), Params()
    src_prefix = src_dir.rstrip("/") + "/"
    dst_prefix = dst_dir.rstrip("/") + "/"
    return (
        f"UPDATE {t} SET path = {p(dst_prefix)} || substring(path FROM "
        f"{p(len(src_prefix) + 1, 'int')}), last_update_date = {p(date)} "
        f"WHERE path LIKE {p(like_escape(src_prefix) + '%')} ESCAPE '\\' "
        f"AND {not_newer(p, date)}",
        p.values,
    )


def insert_events(layout: TableLayout, rows: Sequence[Mapping[str, Any]]) -> Statement:
    """Insert session event rows, each only when no row has its id (one statement).

    Args:
        layout: The sessions table's layout.
        rows: Event rows (``message`` as JSON text), all with the same columns.
    """
    t, p = quote_ident(layout.name), Params()
    cols = list(
        _fill(layout, rows[0], list(rows[0]) + [c for c in _OWN_VALUES if c not in rows[0]])
    )
    tuples = []
    for row in rows:
        filled = _fill(layout, row, cols)
        values = [p(filled[c], _CASTS.get(c, "text")) for c in cols]
        tuples.append(f"({', '.join(values)})")
    names = ", ".join(quote_ident(c) for c in cols)
    return (
        f"INSERT INTO {t} ({names}) SELECT {names} FROM (VALUES {', '.join(tuples)}) "
        f"AS v({names}) WHERE NOT EXISTS (SELECT 1 FROM {t} AS s WHERE s.id = v.id)",
        p.values,
    )


def event_copies(table: str, ids: Sequence[str], *, marked: bool) -> Statement:
    """Every row with one of these event ids, each as ``id`` and ``mark``.

    ``mark`` is the row's ``last_update_date``, which tells copies of one event apart (NULL when
    the table has no such column: ``marked=False``).
    """
    t, p = quote_ident(table), Params()
    mark = "last_update_date" if marked else "NULL"
    return (
        f"SELECT id, {mark} AS mark FROM {t} WHERE id IN ({_in_list(p, ids)})",
        p.values,
    )


def delete_event_copies(table: str, row_id: str, marks: Sequence[str]) -> Statement:
    """Delete the rows of one event id marked with one of ``marks`` (their ``last_update_date``).

    Naming the copies removed, rather than the one kept, a copy of this delete that the service
    runs late never removes a row dated since (the copy kept, dated back as the event).
    """
    t, p = quote_ident(table), Params()
    return (
        f"DELETE FROM {t} WHERE id = {p(row_id)} AND last_update_date IN ({_in_list(p, marks)})",
        p.values,
    )


def restore_event_date(table: str, row_id: str, mark: str, date: str) -> Statement:
    """Set the ``last_update_date`` of the copy of an event marked ``mark`` back to ``date``."""
    t, p = quote_ident(table), Params()
    return (
        f"UPDATE {t} SET last_update_date = {p(date)} WHERE id = {p(row_id)} "
        f"AND last_update_date = {p(mark)}",
        p.values,
    )


def delete_row(table: str, row_id: str, size: int) -> Statement:
    """Delete one row by id while it still has ``size`` bytes (after moving its content)."""
    t, p = quote_ident(table), Params()
    return (
        f"DELETE FROM {t} WHERE id = {p(row_id)} AND size_bytes = {p(size, 'bigint')}",
        p.values,
    )


def row_content(layout: TableLayout, row_id: str) -> Statement:
    """Content and size of one row by id.

    Its bytes are read with :func:`~deeplake_sdk.statements.files.memory_row_bytes`.
    """
    t, p = quote_ident(layout.name), Params()
    body = file_bytes_columns(layout)
    return (f"SELECT {body}, size_bytes FROM {t} WHERE id = {p(row_id)}", p.values)


def rows_under(table: str, path: str, *, tree: bool, not_after: str) -> Statement:
    """Whether a row not newer than ``not_after`` is at ``path`` (or inside it, with ``tree``)."""
    t, p = quote_ident(table), Params()
    if tree:
        where = f"path LIKE {p(like_escape(path.rstrip('/') + '/') + '%')} ESCAPE '\\'"
    else:
        where = f"path = {p(path)}"
    return (
        f"SELECT 1 AS present FROM {t} WHERE {where} AND {not_newer(p, not_after)} LIMIT 1",
        p.values,
    )
