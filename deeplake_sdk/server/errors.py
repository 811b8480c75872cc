"""The error a backend operation answers with (no dependencies: imported everywhere)."""

from __future__ import annotations

from typing import Any


class BackendError(Exception):
    """A request failed; carries the HTTP status and the error code to answer with.

    Attributes:
        status: HTTP status.
        code: machine-readable code (``QUERY_ERROR`` for SQL errors in the ``deeplake``
            dialect, the SQLSTATE in the ``postgres`` dialect, a short name otherwise).
        message: human-readable message.
        extra: more JSON fields (``sqlstate``, ``detail``, ``hint``, ``position``) when known.
        retry_after: seconds of the ``Retry-After`` header of a 503.
    """

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int = 1, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.extra = {k: v for k, v in extra.items() if v is not None}


#: SQLSTATEs of a lost or refused database: connection exceptions (class 08), the server
#: shutting down or crashed (57P01, 57P02) and not accepting connections yet (57P03).
DATABASE_LOST_STATES = ("57P01", "57P02", "57P03")


def is_database_lost(sqlstate: str | None) -> bool:
    """Whether ``sqlstate`` says the database went away (a retryable 503, never a 400)."""
    return sqlstate is not None and (sqlstate.startswith("08") or sqlstate in DATABASE_LOST_STATES)
