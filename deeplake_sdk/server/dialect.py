"""SQL dialects: the Deeplake service's behaviours (default) or plain PostgreSQL.

A :class:`Dialect` is a policy value chosen once per server (``--dialect``,
``local(dialect=...)``). The ``deeplake`` dialect reproduces what the service does and a plain
PostgreSQL hides (DESIGN section 10):

* "already exists" from ``CREATE INDEX`` or ``ALTER TABLE .. ADD COLUMN`` is an HTTP **500**
  with the service's message, with or without ``IF NOT EXISTS`` (the clause is ignored);
* SQL error bodies say ``"code": "QUERY_ERROR"`` (the SQLSTATE is kept in ``"sqlstate"``);
* ``LIKE``/``ILIKE`` have no default escape character: a pattern without ``ESCAPE`` gets
  ``ESCAPE ''``, so a backslash is an ordinary character;
* ``<#>`` with an empty array is NULL (the ``deeplake.dialect`` setting of the connection
  tells the score function).

The ``postgres`` dialect turns all of this off: errors are 400 with the SQLSTATE as code,
``IF NOT EXISTS`` works and backslash is the default LIKE escape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from deeplake_sdk.server import sqlscan
from deeplake_sdk.server.errors import BackendError, is_database_lost

#: The ``code`` of SQL error bodies on the service.
QUERY_ERROR = "QUERY_ERROR"
#: The connection setting the shim functions read to know the dialect.
DIALECT_SETTING = "deeplake.dialect"

_COLUMN_EXISTS = re.compile(r'column "(?P<col>.*)" of relation "(?P<table>.*)" already exists')
_RELATION_EXISTS = re.compile(r'relation "(?P<name>.*)" already exists')
_IF_NOT_EXISTS = re.compile(r"\bIF\s+NOT\s+EXISTS\b", re.IGNORECASE)


@dataclass(frozen=True)
class Dialect:
    """What the server does differently from plain PostgreSQL.

    Attributes:
        name: ``deeplake`` or ``postgres``.
        service_errors: SQL errors carry ``code: QUERY_ERROR``, and "already exists" from
            ``CREATE INDEX`` / ``ADD COLUMN`` is a 500 with the service's message.
        ignore_if_not_exists: ``IF NOT EXISTS`` of ``CREATE INDEX`` and ``ADD COLUMN`` is
            ignored (so "already exists" is answered).
        like_default_escape: backslash is the default ``LIKE`` escape (PostgreSQL); when
            false, patterns without ``ESCAPE`` get ``ESCAPE ''``.
        empty_score_null: ``<#>`` on an empty array is NULL (else 0).
    """

    name: str
    service_errors: bool
    ignore_if_not_exists: bool
    like_default_escape: bool
    empty_score_null: bool

    def rewrite(self, text: str) -> str:
        """The query as PostgreSQL must run it to behave like this dialect."""
        if self.ignore_if_not_exists and _IF_NOT_EXISTS.search(text):
            text = sqlscan.without_if_not_exists(text)
        if not self.like_default_escape:
            text = sqlscan.like_without_default_escape(text)
        return text

    def error_code(self, sqlstate: str) -> str:
        """The ``code`` of an SQL error body."""
        return QUERY_ERROR if self.service_errors else sqlstate

    def sql_error(self, exc: psycopg.Error, text: str | None = None) -> BackendError:
        """The answer to a PostgreSQL error raised by the query ``text``."""
        state = exc.sqlstate
        diag = exc.diag
        if state == "57014":  # statement_timeout, or the server's cancel at its longest
            return BackendError(
                408,
                "statement_timeout",
                "statement timeout: the query ran longer than its timeout_ms (or the server's "
                "longest statement time) and was cancelled",
            )
        if is_database_lost(state) or (state is None and isinstance(exc, psycopg.OperationalError)):
            # a retryable 503: the server reconnects (or restarts its PostgreSQL) by itself
            return BackendError(
                503,
                "database_unavailable",
                "the database connection was lost (a statement in flight may have run); "
                f"retry shortly: {' '.join(str(exc).split())}",
                retry_after=2,
            )
        if state is None:
            return BackendError(400, "invalid_request", str(exc))
        message = diag.message_primary or str(exc)
        status = 400
        if self.service_errors:
            service = _service_message(state, message, text)
            if service is not None:
                status, message = 500, service
        return BackendError(
            status,
            self.error_code(state),
            message,
            sqlstate=state,
            detail=diag.message_detail,
            hint=diag.message_hint,
            position=int(diag.statement_position) if diag.statement_position else None,
        )


def _service_message(state: str, message: str, text: str | None) -> str | None:
    """The service's 500 message for an "already exists" it answers with a 500, else None."""
    if state == "42701":  # duplicate_column
        m = _COLUMN_EXISTS.search(message)
        if m is not None:
            col = m.group("col")
            return (
                f"Database error: Failed to add column '{col}' to deeplake dataset: "
                f"Column '{col}' already exists"
            )
    scan = sqlscan.scan(text) if state == "42P07" and text is not None else None
    if scan is not None and scan.creates_index and not scan.creates_relation:
        m = _RELATION_EXISTS.search(message)
        name = m.group("name") if m else "?"
        return f"Database error: Failed to create index '{name}': Index '{name}' already exists"
    return None


DIALECTS: dict[str, Dialect] = {
    "deeplake": Dialect(
        "deeplake",
        service_errors=True,
        ignore_if_not_exists=True,
        like_default_escape=False,
        empty_score_null=True,
    ),
    "postgres": Dialect(
        "postgres",
        service_errors=False,
        ignore_if_not_exists=False,
        like_default_escape=True,
        empty_score_null=False,
    ),
}
DEFAULT_DIALECT = "deeplake"


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name`` (ValueError naming the choices otherwise)."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; choose one of {', '.join(DIALECTS)}") from None
