"""Exception hierarchy of the SDK.

Every error the SDK raises derives from :class:`DeeplakeError`, so one ``except`` clause
catches them all. Messages say what happened and, where there is one, what to do about it.

::

    DeeplakeError
    ├── ConfigError            credentials or settings missing / invalid
    ├── ApiError               the service answered with an error status
    │   ├── AuthError          401 / 403
    │   ├── QueryError         400: the SQL was rejected (syntax, missing table, ...)
    │   │   └── AlreadyExistsError  the object to create already exists (409, "already exists")
    │   ├── RateLimitError     429 / 503 after every retry was spent
    │   └── ServerError        5xx after every retry was spent
    ├── NetworkError           no usable answer (connect error, reset, timeout)
    │   └── AmbiguousWriteError  a write may or may not have been applied
    ├── FlushError             some pending filesystem writes could not be stored
    └── FsError (OSError)      filesystem-style error carrying an errno
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Iterable

__all__ = [
    "AlreadyExistsError",
    "AmbiguousWriteError",
    "ApiError",
    "AuthError",
    "ConfigError",
    "DeeplakeError",
    "FlushError",
    "FsError",
    "NetworkError",
    "QueryError",
    "RateLimitError",
    "ServerError",
]


class DeeplakeError(Exception):
    """Base class of every error raised by the SDK."""


class ConfigError(DeeplakeError):
    """Credentials or settings are missing or invalid."""


class ApiError(DeeplakeError):
    """The service answered with an error status.

    Attributes:
        status: HTTP status code of the answer.
        message: The service's error message (or a summary of a non-JSON body).
        request_id: The service's request id, when it sent one (quote it in bug reports).
        code: The service's machine-readable error code, when it sent one.
        retry_after: Seconds the service asked to wait (``Retry-After``), when it sent one.
    """

    retry_after: float | None = None

    def __init__(
        self,
        status: int,
        message: str,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.request_id = request_id
        self.code = code
        super().__init__(status, message)

    def __str__(self) -> str:
        text = f"HTTP {self.status}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __reduce__(self):  # pragma: no cover - pickling support
        return (type(self), (self.status, self.message, self.request_id, self.code))


class AuthError(ApiError):
    """The token was missing or rejected (401), or it may not use this org (403).

    Check ``DEEPLAKE_TOKEN`` / ``DEEPLAKE_ORG_ID`` or ``~/.deeplake/credentials.json``.
    """


class QueryError(ApiError):
    """The service rejected the request itself (400 and other non-retryable 4xx)."""


class AlreadyExistsError(QueryError):
    """The object to create already exists (409, or any answer saying "already exists").

    The real service answers 500 for this on ALTER/CREATE INDEX; the SDK recognises the message
    and never retries it. ``ensure_table`` and friends treat it as success.
    """


class RateLimitError(ApiError):
    """The service kept answering 429/503 until the retry budget was spent.

    Lower ``max_concurrency`` or spread the work over a longer time.
    """


class ServerError(ApiError):
    """The service kept failing (5xx) until the retry budget was spent."""


class NetworkError(DeeplakeError):
    """No usable answer: connection refused or reset, or a timeout.

    Attributes:
        ambiguous: ``True`` when the request may have reached the server and executed (reset
            or disconnect after sending, read timeout); ``False`` when it surely did not
            (connection refused, connect timeout).
    """

    def __init__(self, *args: object, ambiguous: bool = False) -> None:
        super().__init__(*args)
        self.ambiguous = ambiguous


class AmbiguousWriteError(NetworkError):
    """A write was sent but its outcome is unknown, and it cannot be re-sent safely.

    Raised instead of a blind retry that could apply the write twice. Pass ``confirm=``
    (a check that tells whether the write took effect) or ``idempotent=True`` to
    :meth:`deeplake_sdk.DeeplakeApi.query` so the SDK can resolve it for you.
    """

    def __init__(self, *args: object, ambiguous: bool = True) -> None:
        super().__init__(*args, ambiguous=ambiguous)


class FlushError(DeeplakeError):
    """Some pending filesystem writes could not be stored.

    The failed writes stay queued (unless a newer write replaced them) and the next
    :meth:`~deeplake_sdk.DeeplakeFs.flush` tries them again.

    Attributes:
        failed_paths: Paths whose writes are still pending.
        errors: The error of each failed path.
    """

    def __init__(self, failed_paths: Iterable[str], errors: dict[str, BaseException] | None = None):
        self.failed_paths = sorted(failed_paths)
        self.errors = dict(errors or {})
        first = next(iter(self.errors.values()), None)
        detail = f"; first error: {first}" if first is not None else ""
        super().__init__(
            f"{len(self.failed_paths)} write(s) could not be flushed and stay queued "
            f"(flush() again to retry): {', '.join(self.failed_paths[:5])}"
            f"{' ...' if len(self.failed_paths) > 5 else ''}{detail}"
        )


class FsError(DeeplakeError, OSError):
    """A filesystem-style error with an ``errno`` code (ENOENT, EISDIR, ...).

    Being an :class:`OSError`, it can be caught as ``FileNotFoundError``-style errors are:
    compare ``err.errno`` with the constants of the :mod:`errno` module.
    """

    def __init__(self, code: int, path: str, detail: str | None = None) -> None:
        message = detail or _errno_message(code)
        OSError.__init__(self, code, message, path)

    def __str__(self) -> str:
        code = _errno.errorcode.get(self.errno or 0, self.errno)
        return f"[{code}] {self.strerror}: {self.filename}"


def _errno_message(code: int) -> str:
    import os

    return os.strerror(code)
