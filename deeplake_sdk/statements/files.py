r"""SQL shapes of the reads of the memory filesystem, session logs and grep.

The writes (sent by the journal's drain) are in :mod:`deeplake_sdk.statements.journal`; table
management and guarded inserts in :mod:`deeplake_sdk.statements`.

Every statement is built here so they can be reviewed together against the service's dialect:
``$n`` placeholders with JSON-scalar params, bytea passed as ``\\x..`` hex text cast with
``::bytea``, ``||`` concatenation, ``LIKE .. ESCAPE '\\'``, bounded ``IN`` lists, no ``SUM``
with ``GROUP BY`` and no ``<#>`` in a WHERE clause.

Every statement takes the :class:`~deeplake_sdk.statements.layout.TableLayout` of its table and
names only columns the table has: on a table created by the agent-memory plugin (no
``content``) files live in ``summary``. Where a path has several rows, statements order
them by the duplicate rule of :mod:`deeplake_sdk.statements.layout` (oldest ``creation_date``,
then ``id``).

This module also holds the two decisions about row *values* that readers share:
:func:`memory_row_bytes` (which column holds a file's exact bytes) and
:func:`session_file_lines` (the text of a session file: one compact JSON event per line).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from deeplake_sdk.sql import like_escape, quote_ident
from deeplake_sdk.statements.layout import TableLayout, row_rank

Statement = tuple[str, list[Any]]

#: SQL text of a session event's identity: the event's own ``id``, else the row id.
EVENT_KEY_SQL = "COALESCE(NULLIF(message->>'id', ''), id)"
#: SQL text of a session event's stored JSON text (``null`` for a NULL message).
MESSAGE_TEXT_SQL = "COALESCE(message::text, 'null')"


@dataclass
class Params:
    """Collects parameter values and hands out their ``$n`` placeholders."""

    values: list[Any] = field(default_factory=list)

    def __call__(self, value: Any, cast: str = "") -> str:
        """Add ``value``; return its placeholder, with ``::cast`` when given."""
        self.values.append(value)
        return f"${len(self.values)}{'::' + cast if cast else ''}"


def _in_list(p: Params, values: Sequence[str]) -> str:
    return ", ".join(p(v) for v in values)


def _col(layout: TableLayout, column: str, default: str = "''") -> str:
    """``column`` when the table has it, else ``<default> AS column`` (uniform answer rows)."""
    return column if layout.has(column) else f"{default} AS {column}"


# -- metadata of a scope -----------------------------------------------------------------
def _where(p: Params, scope: str, exact: Sequence[str]) -> str:
    """``path`` at or under ``scope``, or one of the ``exact`` paths."""
    where = _scope(p, scope)
    if exact and where != "TRUE":
        where = f"({where} OR path IN ({_in_list(p, exact)}))"
    return where


def scoped_metadata(
    memory: TableLayout | None,
    sessions: TableLayout | None,
    scope: str,
    exact: Sequence[str] = (),
) -> Statement:
    """Metadata of the files at or under ``scope`` (and at the ``exact`` paths), in one statement.

    Memory rows (``kind`` ``'memory'``): path, row id, size, MIME type, dates and description
    of every row; a path may come back several times (a table without keys), callers keep
    the row of the duplicate rule (:func:`~deeplake_sdk.statements.layout.oldest_per_path`).
    Session rows (``kind`` ``'session'``): one per session file, with its number of distinct
    events (``n``) and its last change (``MAX``, not ``SUM``). Either table may be left out
    (None); ``scope`` ``/`` is the whole table. The scope is a ``path LIKE 'dir/%'``
    condition built with :func:`~deeplake_sdk.sql.like_escape`.
    """
    p = Params()
    parts = []
    if memory is not None:
        cols = ", ".join(
            [
                "'memory' AS kind",
                "path",
                "id",
                "size_bytes",
                _col(memory, "mime_type"),
                _col(memory, "creation_date"),
                _col(memory, "last_update_date"),
                _col(memory, "description"),
                "0 AS n",
            ]
        )
        parts.append(
            f"SELECT {cols} FROM {quote_ident(memory.name)} WHERE {_where(p, scope, exact)}"
        )
    if sessions is not None:
        date = next((c for c in ("last_update_date", "creation_date") if sessions.has(c)), None)
        last = f"MAX({date})" if date else "''"
        parts.append(
            f"SELECT 'session' AS kind, path, NULL AS id, 0 AS size_bytes, NULL AS mime_type, "
            f"NULL AS creation_date, {last} AS last_update_date, NULL AS description, "
            f"COUNT(DISTINCT {EVENT_KEY_SQL}) AS n FROM {quote_ident(sessions.name)} "
            f"WHERE {_where(p, scope, exact)} GROUP BY path"
        )
    if not parts:
        raise ValueError("scoped_metadata needs at least one table")
    return " UNION ALL ".join(parts), p.values


# -- memory: reads -------------------------------------------------------------------------
#: SQL condition of :func:`memory_read`: ``content`` holds bytes that ``summary`` does not
#: (non-UTF-8, NUL, a text that differs). ``content`` counts only while it has the file's
#: current size: a client that writes only ``summary`` may have rewritten the row since.
CONTENT_EXACT_SQL = (
    "octet_length(content) > 0 AND octet_length(content) = size_bytes AND "
    "content <> convert_to(summary, 'UTF8')"
)


def file_bytes_columns(layout: TableLayout) -> str:
    """The select list of ``summary`` and ``content`` that :func:`memory_row_bytes` reads.

    Each row carries the file in one of the two, never both: ``content`` when it holds bytes
    that ``summary`` does not (non-UTF-8, NUL), else ``summary``.
    """
    if layout.has("content") and layout.has("summary"):
        exact = CONTENT_EXACT_SQL
        return (
            f"CASE WHEN {exact} THEN NULL ELSE summary END AS summary, "
            f"CASE WHEN {exact} THEN content END AS content"
        )
    if layout.has("content"):
        return "NULL AS summary, content"
    return "summary, NULL AS content"


def memory_read(layout: TableLayout, paths: Sequence[str]) -> Statement:
    """Content of up to :data:`~deeplake_sdk.sql.CHUNK` files, oldest row first per path.

    Each row carries the file in one of two columns (:func:`file_bytes_columns`).
    """
    t, p = quote_ident(layout.name), Params()
    cols = ", ".join(
        [
            "path",
            "id",
            _col(layout, "creation_date"),
            file_bytes_columns(layout),
            "size_bytes",
            _col(layout, "mime_type"),
            _col(layout, "last_update_date"),
            _col(layout, "description"),
        ]
    )
    return (
        f"SELECT {cols} FROM {t} WHERE path IN ({_in_list(p, paths)}) "
        f"ORDER BY path, {layout.order_by}",
        p.values,
    )


def memory_row_bytes(row: Mapping[str, Any]) -> bytes:
    r"""A file's exact bytes from a row of :func:`memory_read`.

    ``content`` when the row carries it (``\x..`` hex text), else ``summary`` as UTF-8.
    """
    content = row.get("content")
    if content:
        if isinstance(content, str) and content.startswith("\\x"):
            return bytes.fromhex(content[2:])
        raise ValueError("unexpected bytea encoding in the answer (expected \\x hex text)")
    return str(row.get("summary") or "").encode("utf-8")


def memory_probe(layout: TableLayout, path: str) -> Statement:
    """Size and date of one file (the row of the duplicate rule when there are several)."""
    t, p = quote_ident(layout.name), Params()
    return (
        f"SELECT size_bytes, {_col(layout, 'last_update_date')} FROM {t} "
        f"WHERE path = {p(path)} ORDER BY {layout.order_by} LIMIT 1",
        p.values,
    )


# -- sessions ----------------------------------------------------------------------------------
def session_lines(layout: TableLayout, path: str) -> Statement:
    """The event rows of one session file, in creation order (see :func:`session_file_lines`).

    Each row answers ``message`` as PostgreSQL's text of the stored JSON (``message::text``:
    its key order and number forms, whatever the service does with JSONB values in answers)
    and ``event_key`` (:data:`EVENT_KEY_SQL`).
    """
    t, p = quote_ident(layout.name), Params()
    return (
        f"SELECT id, {_col(layout, 'creation_date')}, {MESSAGE_TEXT_SQL} AS message, "
        f"{EVENT_KEY_SQL} AS event_key FROM {t} WHERE path = {p(path)} ORDER BY {layout.order_by}",
        p.values,
    )


def _jsonb_key(key: str) -> tuple[int, bytes]:
    raw = key.encode("utf-8", "surrogatepass")
    return (len(raw), raw)


def _jsonb_number(value: float) -> str:
    """A float as JSONB prints it: PostgreSQL ``numeric`` of Python's shortest repr, no exponent."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a JSON number")
    text = format(Decimal(repr(value)), "f")
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # -0.0 -> 0.0


#: JSON text of one value with non-ASCII characters kept (one encoder, not one per call).
_json_text = json.JSONEncoder(ensure_ascii=False).encode
_JSON_CONSTANTS = {None: "null", True: "true", False: "false"}


def _jsonb_text(value: Any) -> str:
    if isinstance(value, str):
        return _json_text(value)
    if value is None or isinstance(value, bool):
        return _JSON_CONSTANTS[value]
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _jsonb_number(value)
    if isinstance(value, Mapping):
        items = {k if isinstance(k, str) else json.dumps(k): v for k, v in value.items()}
        keys = sorted(items, key=_jsonb_key)
        return "{" + ",".join(f"{_jsonb_text(k)}:{_jsonb_text(items[k])}" for k in keys) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_jsonb_text(v) for v in value) + "]"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def message_text(message: Any) -> str:
    """The stored JSON text of one session event, compact: what its line reads back as.

    JSONB keeps an object's keys sorted (shorter keys first, then bytewise), not in the order
    they were written, and prints numbers as PostgreSQL ``numeric`` does (``0.00001`` where
    Python writes ``1e-05``); this renders ``message`` in that form, so its UTF-8 length is
    the length of the line :func:`session_file_lines` returns once it is stored (the row's
    ``size_bytes``). JSON text of strings written with ``JSON.stringify`` has the same length
    whatever its key order.

    Args:
        message: The JSON value.

    Raises:
        ValueError: The value holds NaN or an infinity (not JSON).
        TypeError: The value holds something JSON has no form for.
    """
    return _jsonb_text(message)


#: Strings (kept whole) or whitespace outside strings (dropped) in JSON text.
_JSON_SPACE = re.compile(r'("(?:[^"\\]|\\.)*")|[ \t\r\n]+')


def compact_json(text: str) -> str:
    """JSON text without the whitespace outside its strings (``jsonb::text`` -> one line).

    ``jsonb::text`` writes ``{"a": 1, "b": [1, 2]}``; the line of a session file is
    ``{"a":1,"b":[1,2]}``: keys, strings and numbers stay exactly as PostgreSQL printed them.
    """
    return _JSON_SPACE.sub(lambda m: m.group(1) or "", text)


def distinct_events(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows of one session file in creation order, each event once (the first copy kept).

    Order and the kept copy follow the duplicate rule (``creation_date``, then ``id``);
    events are the same when their ``event_key`` (:data:`EVENT_KEY_SQL`) is: retried
    inserts that had committed.
    """
    seen: set[str] = set()
    out = []
    for row in sorted(rows, key=row_rank):
        key = str(row.get("event_key") or row.get("id") or "")
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def session_file_lines(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The lines of a session file from its rows (:func:`session_lines`), without newlines."""
    return [compact_json(row["message"]) for row in distinct_events(rows)]


# -- grep ------------------------------------------------------------------------------------
def paths_prefix(directory: str) -> str:
    """What every path strictly inside ``directory`` starts with (``/`` for the root)."""
    return directory.rstrip("/") + "/"


def _scope(p: Params, directory: str) -> str:
    """``path`` is ``directory`` or below it (``TRUE`` for the root)."""
    if directory == "/":
        return "TRUE"
    prefix = like_escape(paths_prefix(directory)) + "%"
    return f"(path = {p(directory)} OR path LIKE {p(prefix)} ESCAPE '\\')"


def json_text_like(like: str) -> str:
    """A LIKE pattern for compact JSON, made to match the spaced text of ``jsonb::text``.

    ``message::text`` writes ``{"a": 1, "b": 2}`` where the compact line is
    ``{"a":1,"b":2}``: a ``%`` after every ``:`` and ``,`` of the pattern lets both match
    (it may let a few more texts through; the regex then decides on the compact line).
    """
    return like.replace(":", ":%").replace(",", ",%")


def grep_candidates(
    memory: TableLayout,
    sessions: TableLayout | None,
    directory: str,
    like: str | None,
    case_insensitive: bool,
    *,
    sessions_if_alone: bool = False,
    probe: bool = False,
) -> Statement:
    """Every text that may match: memory files whole, session events one JSON line each.

    ``like`` is a LIKE pattern (already escaped) that every matching text contains, or None.
    One statement. Memory files are the row of the duplicate rule per path; session events
    are each counted once and carry their line number in the session file (``n``), counted
    before the filter so that ``grep -n`` output is right. Memory rows answer ``text``,
    session rows ``message``, PostgreSQL's text of the event's JSON (its line once
    :func:`compact_json` has dropped the spaces).

    Args:
        memory: Layout of the memory table.
        sessions: Layout of the sessions table, or None to search memory files only.
        directory: The scope: a directory, or one file.
        like: See above.
        case_insensitive: ``ILIKE`` instead of ``LIKE``.
        sessions_if_alone: Search the session files only when the memory table has no file
            in the scope (a scope that holds only session logs).
        probe: Add one row of ``kind`` ``'scope'`` whose ``n`` tells what the scope is, as
            bits (:data:`SCOPE_MEMORY_FILE`, :data:`SCOPE_MEMORY_BELOW`,
            :data:`SCOPE_SESSION_FILE`, :data:`SCOPE_SESSION_BELOW`): whether it exists, and
            whether it is a file or a directory, with no other request.
    """
    p = Params()
    op = "ILIKE" if case_insensitive else "LIKE"
    summary = "summary" if memory.has("summary") else "''"
    sql = (
        f"SELECT 'memory' AS kind, path, id, text, NULL::text AS message, 0 AS n FROM ("
        f"SELECT path, id, {summary} AS text, ROW_NUMBER() OVER "
        f"(PARTITION BY path ORDER BY {memory.order_by}) AS r "
        f"FROM {quote_ident(memory.name)} WHERE {_scope(p, directory)}) AS m WHERE r = 1"
        + (f" AND text {op} {p(like)} ESCAPE '\\'" if like else "")
    )
    if sessions is not None:
        order = sessions.order_by
        msg = MESSAGE_TEXT_SQL
        sql += (
            f" UNION ALL SELECT 'session' AS kind, path, id, NULL::text AS text, "
            f"{msg} AS message, n "
            f"FROM (SELECT path, id, message, ROW_NUMBER() OVER "
            f"(PARTITION BY path ORDER BY {order}) AS n FROM ("
            f"SELECT path, id, message, {_col(sessions, 'creation_date')}, ROW_NUMBER() OVER "
            f"(PARTITION BY path, {EVENT_KEY_SQL} ORDER BY {order}) AS dup "
            f"FROM {quote_ident(sessions.name)} WHERE {_scope(p, directory)}) AS d "
            f"WHERE dup = 1) AS s"
            + (f" WHERE {msg} {op} {p(json_text_like(like))} ESCAPE '\\'" if like else "")
        )
        if sessions_if_alone:
            sql += (" AND" if like else " WHERE") + (
                f" NOT EXISTS (SELECT 1 FROM {quote_ident(memory.name)} "
                f"WHERE {_scope(p, directory)})"
            )
    if probe:
        sql += (
            " UNION ALL SELECT 'scope' AS kind, NULL AS path, NULL AS id, NULL AS text, "
            f"NULL AS message, {_scope_bits(p, memory, sessions, directory)} AS n"
        )
    return sql, p.values


#: Bits of the ``n`` of :func:`grep_candidates`' scope row: a memory file at the path...
SCOPE_MEMORY_FILE = 1
#: ... memory files below it (a directory) ...
SCOPE_MEMORY_BELOW = 2
#: ... a session file at the path ...
SCOPE_SESSION_FILE = 4
#: ... session files below it.
SCOPE_SESSION_BELOW = 8


def _scope_bits(
    p: Params, memory: TableLayout, sessions: TableLayout | None, directory: str
) -> str:
    """SQL of the scope bits: one ``EXISTS`` per table and part of the scope."""
    tables = [(memory, SCOPE_MEMORY_FILE, SCOPE_MEMORY_BELOW)]
    if sessions is not None:
        tables.append((sessions, SCOPE_SESSION_FILE, SCOPE_SESSION_BELOW))
    terms = []
    for layout, file_bit, below_bit in tables:
        t = quote_ident(layout.name)
        below = like_escape(paths_prefix(directory)) + "%"
        terms.append(
            f"CASE WHEN EXISTS (SELECT 1 FROM {t} WHERE path = {p(directory)}) "
            f"THEN {file_bit} ELSE 0 END"
        )
        terms.append(
            f"CASE WHEN EXISTS (SELECT 1 FROM {t} WHERE path LIKE {p(below)} ESCAPE '\\') "
            f"THEN {below_bit} ELSE 0 END"
        )
    return " + ".join(terms)


def paths_under(memory: TableLayout, sessions: TableLayout | None, directory: str) -> Statement:
    """The distinct paths of both tables at or under ``directory`` (a listing in one statement)."""
    p = Params()
    sql = f"SELECT DISTINCT path FROM {quote_ident(memory.name)} WHERE {_scope(p, directory)}"
    if sessions is not None:
        sql += (
            f" UNION SELECT DISTINCT path FROM {quote_ident(sessions.name)} "
            f"WHERE {_scope(p, directory)}"
        )
    return sql, p.values
