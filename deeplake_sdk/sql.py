r"""Quoting and escaping helpers for the SQL the SDK builds.

Prefer ``$n`` parameters (``api.query("... WHERE path = $1", [path])``): they need no
quoting at all. These helpers exist for the places where SQL text must be built:

* :func:`quote_literal` - a text literal. Plain ``'...'`` with single quotes doubled; when the
  text contains a backslash it is written as ``E'...'`` with backslashes doubled too. Both forms
  mean the same thing whether the server runs with ``standard_conforming_strings`` on (the
  PostgreSQL default) or off, so a literal can never be misread. PostgreSQL text cannot hold
  the NUL character: such text is rejected with :class:`ValueError` instead of being truncated.
* :func:`quote_ident` / :func:`validate_identifier` - table and column names.
* :func:`bytea_literal` / :func:`bytea_param` - binary data, as ``E'\\x..'::bytea`` literals
  or as hex text for a ``$n::bytea`` parameter.
* :func:`like_escape` - a literal fragment for ``LIKE`` / ``ILIKE``; every pattern the SDK emits
  says ``ESCAPE '\'`` because the service does not treat backslash as the default escape.
* :func:`chunks` and :data:`CHUNK` - how many rows or ``IN (...)`` values one statement takes.
* :func:`check_params` - validation of ``$n`` parameters (JSON scalars; bytes become hex text).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = [
    "CHUNK",
    "LIKE_ESCAPE",
    "ParamValue",
    "bytea_literal",
    "bytea_param",
    "check_params",
    "chunks",
    "like_escape",
    "quote_ident",
    "quote_literal",
    "validate_identifier",
]

T = TypeVar("T")

#: A value accepted as a ``$n`` parameter.
ParamValue = str | int | float | bool | None | bytes | bytearray | memoryview

#: The ``ESCAPE`` clause every LIKE / ILIKE emitted by the SDK carries.
LIKE_ESCAPE = "ESCAPE '\\'"

#: Rows per multi-row ``INSERT`` and values per ``IN (...)`` list, for every statement the SDK
#: builds from many items (reads of files by path, new files, session events).
CHUNK = 50

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MAX_IDENT_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL silently truncates longer names


def _reject_nul(text: str, what: str) -> None:
    if "\x00" in text:
        raise ValueError(
            f"{what} contains a NUL character (\\x00), which PostgreSQL text cannot store; "
            "store such data as bytes (BYTEA) instead"
        )


def quote_literal(text: str) -> str:
    r"""Return ``text`` as a SQL string literal.

    ``'it''s'`` normally; ``E'a\\b'`` when the text contains a backslash (see the module
    documentation for why this form is safe under either ``standard_conforming_strings``).

    Args:
        text: Any text without NUL characters.

    Returns:
        The literal, quotes included.

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: ``text`` contains a NUL character.
    """
    if not isinstance(text, str):
        raise TypeError(f"quote_literal() expects str, got {type(text).__name__}")
    _reject_nul(text, "text literal")
    body = text.replace("'", "''")
    if "\\" in body:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"


def validate_identifier(name: str) -> str:
    """Check that ``name`` is a plain identifier: ``[A-Za-z_][A-Za-z0-9_]{0,62}``.

    Used for table and column names the SDK puts into SQL text.

    Args:
        name: The candidate name.

    Returns:
        ``name`` unchanged.

    Raises:
        ValueError: Anything else (spaces, quotes, dots, non-ASCII, empty, over 63 chars).
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"invalid table/column name {name!r}: use 1-63 ASCII letters, digits and "
            "underscores, not starting with a digit"
        )
    return name


def quote_ident(name: str) -> str:
    """Return ``name`` as a double-quoted SQL identifier (``"my ""odd"" name"``).

    Args:
        name: Any non-empty name of at most 63 UTF-8 bytes without NUL characters.

    Returns:
        The quoted identifier.

    Raises:
        ValueError: The name is empty, too long (PostgreSQL would silently truncate it) or
            contains a NUL character.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid identifier {name!r}: must be a non-empty string")
    _reject_nul(name, "identifier")
    if len(name.encode("utf-8")) > _MAX_IDENT_BYTES:
        raise ValueError(f"identifier {name[:20]!r}... is longer than 63 bytes")
    return '"' + name.replace('"', '""') + '"'


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected bytes, got {type(data).__name__}")


def bytea_param(data: bytes | bytearray | memoryview) -> str:
    r"""Return ``data`` as ``\x<hex>`` text, the value for a ``$n::bytea`` parameter.

    Args:
        data: The binary value.

    Returns:
        Hex text such as ``\x00ff``.
    """
    return "\\x" + _as_bytes(data).hex()


def bytea_literal(data: bytes | bytearray | memoryview) -> str:
    r"""Return ``data`` as a bytea literal: ``E'\\x<hex>'::bytea``.

    Args:
        data: The binary value.

    Returns:
        The literal with its cast, e.g. ``E'\\x00ff'::bytea``.
    """
    return "E'\\\\x" + _as_bytes(data).hex() + "'::bytea"


def like_escape(text: str) -> str:
    r"""Escape ``\``, ``%`` and ``_`` so ``text`` matches literally in a LIKE pattern.

    Use the result with ``ESCAPE '\'`` (:data:`LIKE_ESCAPE`), e.g. as a parameter:
    ``path LIKE $1 ESCAPE '\'`` with ``[like_escape(prefix) + "%"]``.

    Args:
        text: Literal text.

    Returns:
        The escaped pattern fragment.
    """
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def chunks(values: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """Split ``values`` into lists of at most ``size`` items, one per statement.

    Args:
        values: The values (any iterable; consumed once).
        size: Maximum number of values per chunk.

    Yields:
        Non-empty lists, in input order.

    Raises:
        ValueError: ``size`` is smaller than 1.
    """
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def check_params(params: Sequence[Any] | None) -> list[Any]:
    r"""Validate ``$n`` parameters and convert them to their wire form.

    JSON scalars pass unchanged (``str``, ``int``, ``float``, ``bool``, ``None``); ``bytes``
    become ``\x..`` hex text (write ``$n::bytea`` in the SQL).

    Args:
        params: The parameters, or ``None``.

    Returns:
        A new list ready for the request body.

    Raises:
        TypeError: A parameter is not a JSON scalar or bytes, or ``params`` is a string.
        ValueError: A string contains NUL, or a float is NaN or infinite.
    """
    if params is None:
        return []
    if isinstance(params, (str, bytes, bytearray, memoryview)) or not isinstance(params, Sequence):
        raise TypeError(
            f"params must be a list or tuple of values for $1..$n, got {type(params).__name__}"
        )
    out: list[Any] = []
    for index, value in enumerate(params, start=1):
        if value is None or isinstance(value, (bool, int)):
            out.append(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"parameter ${index} is {value}, which JSON cannot carry")
            out.append(value)
        elif isinstance(value, str):
            _reject_nul(value, f"parameter ${index}")
            out.append(value)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            out.append(bytea_param(value))
        else:
            raise TypeError(
                f"parameter ${index} has type {type(value).__name__}; use str, int, float, "
                "bool, None or bytes (convert dates/decimals to str, JSON to json.dumps(...))"
            )
    return out


# --- statement classification -------------------------------------------------------------

#: Statement kinds returned by :func:`statement_kind`.
READ, DDL, WRITE = "read", "ddl", "write"

_READ_HEADS = frozenset({"SELECT", "SHOW", "VALUES", "TABLE", "EXPLAIN", "DESCRIBE"})
_DDL_HEADS = frozenset(
    {
        "CREATE",
        "ALTER",
        "DROP",
        "COMMENT",
        "GRANT",
        "REVOKE",
        "ANALYZE",
        "VACUUM",
        "REINDEX",
        "REFRESH",
    }
)
_DML_WORDS = frozenset(
    {"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "COPY", "CALL", "INTO", "NEXTVAL", "SETVAL"}
)
_TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<line>--[^\n]*)
    | (?P<block>/\*.*?(\*/|\Z))
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$.*?(\$(?P=tag)?\$|\Z))
    | (?P<estr>[Ee]'(?:[^'\\]|\\.|'')*('|\Z))
    | (?P<str>'(?:[^']|'')*('|\Z))
    | (?P<qid>"(?:[^"]|"")*("|\Z))
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _keywords(sql: str) -> Iterator[str]:
    """Yield the upper-cased bare words of ``sql``, skipping literals, quoted names, comments."""
    for match in _TOKEN.finditer(sql):
        word = match.group("word")
        if word is not None:
            yield word.upper()
        elif match.group("other") == ";":
            yield ";"


def statement_head(sql: str) -> str:
    """The first keyword of ``sql``, upper-cased, past comments (``""`` when there is none)."""
    return next(_keywords(sql), "")


@functools.lru_cache(maxsize=512)
def statement_kind(sql: str) -> str:
    """Classify ``sql`` to decide whether re-sending it after an ambiguous failure is safe.

    The SDK sends the same statements again and again (only their parameters change), so the
    last 512 classifications are remembered.

    * ``"read"``: ``SELECT`` (including ``SELECT deeplake_sync_table(..)``), ``WITH .. SELECT``,
      ``SHOW``, ``VALUES``, ``TABLE``, ``EXPLAIN`` without ``ANALYZE`` - safe to repeat.
    * ``"ddl"``: ``CREATE``, ``ALTER``, ``DROP``, ... - repeated by inference (a repeated
      ``CREATE`` answers "already exists", which the SDK treats as a fast outcome).
    * ``"write"``: everything else, and any statement mentioning ``INSERT``, ``UPDATE``,
      ``DELETE``, ``MERGE``, ``TRUNCATE``, ``COPY``, ``CALL``, ``SELECT .. INTO``,
      ``nextval``/``setval``, or holding several statements. Unknown shapes are writes: a
      wrong "write" costs an :class:`~deeplake_sdk.errors.AmbiguousWriteError`, a wrong
      "read" could apply a write twice.

    Args:
        sql: One SQL statement.

    Returns:
        ``"read"``, ``"ddl"`` or ``"write"``.
    """
    words = list(_keywords(sql))
    while words and words[-1] == ";":
        words.pop()
    if not words or ";" in words:
        return WRITE
    head = words[0]
    if head in _DDL_HEADS:
        return DDL
    rest = set(words[1:])
    if head == "EXPLAIN" and "ANALYZE" not in rest:
        return READ
    if head in ("SELECT", "WITH", "SHOW", "VALUES", "TABLE", "DESCRIBE") and not (
        rest & _DML_WORDS
    ):
        return READ
    return WRITE
