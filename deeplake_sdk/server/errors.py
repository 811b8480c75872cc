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
    """

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = {k: v for k, v in extra.items() if v is not None}
