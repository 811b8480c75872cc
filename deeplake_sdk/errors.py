"""Exception hierarchy of the SDK.

Every error the SDK raises derives from :class:`DeeplakeError`, so one ``except`` clause
catches them all. Messages say what happened and, where there is one, what to do about it.

::

    DeeplakeError
    ├── ConfigError            credentials or settings missing / invalid
    ├── ClosedError (ValueError)  the client or filesystem was closed
    ├── ApiError               the service answered with an error status
    │   ├── AuthError          401 / 403
    │   ├── QueryError         400: the SQL was rejected (syntax, missing table, ...)
    │   │   └── AlreadyExistsError  the object to create already exists (409, "already exists")
    │   ├── RateLimitError     429 (slow down) after every retry was spent
    │   │   └── ServiceUnavailableError  503: also a ServerError
    │   └── ServerError        5xx after every retry was spent (503 included)
    ├── NetworkError           no usable answer (connect error, reset, timeout)
    │   └── AmbiguousWriteError  a write may or may not have been applied
    ├── FlushError             some filesystem writes are not stored (yet)
    └── FsError (OSError)      filesystem-style error carrying an errno; by errno also a
                               FileNotFoundError, IsADirectoryError, NotADirectoryError,
                               FileExistsError or PermissionError

One rule for overload answers: **429** is a :class:`RateLimitError`; **503** is a
:class:`ServiceUnavailableError`, which is both a ``RateLimitError`` (the service is overloaded:
slow down) and a ``ServerError`` (it is a 5xx). Either is retried, never counted as a write that
may have run.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Iterable

__all__ = [
    "AlreadyExistsError",
    "AmbiguousWriteError",
    "ApiError",
    "AuthError",
    "ClosedError",
    "ConfigError",
    "ConnectError",
    "DeeplakeError",
    "FlushError",
    "FsError",
    "FsFileExistsError",
    "FsFileNotFoundError",
    "FsIsADirectoryError",
    "FsNotADirectoryError",
    "FsPermissionError",
    "NetworkError",
    "QueryError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
]


class DeeplakeError(Exception):
    """Base class of every error raised by the SDK."""


class ConfigError(DeeplakeError):
    """Credentials or settings are missing or invalid."""


class ClosedError(DeeplakeError, ValueError):
    """The object was closed (a :class:`~deeplake_sdk.DeeplakeApi`, a filesystem...).

    Also a :class:`ValueError`, like the error of an operation on a closed Python file.
    """


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

    Attributes:
        gateway: The refusal came as a page that is not the service's JSON (a gateway's HTML):
            gateways in front of the service send such 401/403 answers now and then, and the
            next request goes through, so the SDK retries them a few times
            (:attr:`RetryPolicy.auth_retries <deeplake_sdk.RetryPolicy>`).
    """

    gateway: bool = False


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


class ServiceUnavailableError(RateLimitError, ServerError):
    """503: the service is overloaded or unavailable; a RateLimitError and a ServerError.

    The request was not executed. While the origin's retry budget is nearly full (refusals
    are rare), its first retry is a quick requeue that waits for a slot under the endpoint's
    reduced limit (and for the endpoint-wide pause set from ``Retry-After`` when refusals
    persist); otherwise, and from the second retry on, it backs off like a 429, honouring
    ``Retry-After``.

    Attributes:
        requeue: Whether the first retry may be a quick requeue (set by the endpoint from its
            retry budget when the answer arrives).
    """

    requeue: bool = False


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


class ConnectError(NetworkError, ConnectionError):
    """No connection to the service could be made: the request was not sent.

    Connection refused, name not resolved, connect timeout, TLS or proxy failure. Also a
    :class:`ConnectionError`. Where something else takes over while the service cannot
    be reached, such a failure is not retried (see :attr:`RetryPolicy.retry_connect
    <deeplake_sdk.retry.RetryPolicy>`): opening a filesystem or a session log, and the
    journal's drain, whose flusher tries again later.

    Attributes:
        timed_out: ``True`` when the connection hung until the connect timeout (packets
            dropped: a firewall, a network down) rather than being refused at once. Callers
            that do not retry connections then skip the origin for a while (see
            :attr:`RetryPolicy.connect_cooldown <deeplake_sdk.retry.RetryPolicy>`).
    """

    def __init__(self, *args: object, timed_out: bool = False) -> None:
        super().__init__(*args, ambiguous=False)
        self.timed_out = timed_out


class AmbiguousWriteError(NetworkError):
    """A write was sent but its outcome is unknown, and it cannot be re-sent safely.

    Raised instead of a blind retry that could apply the write twice. Pass ``confirm=``
    (a check that tells whether the write took effect) or ``idempotent=True`` to
    :meth:`deeplake_sdk.DeeplakeApi.query` so the SDK can resolve it for you.
    """

    def __init__(self, *args: object, ambiguous: bool = True) -> None:
        super().__init__(*args, ambiguous=ambiguous)


class FlushError(DeeplakeError):
    """Some writes are not stored yet, or were refused by the service.

    Writes are journaled before the call that made them returns, so nothing is lost: writes
    that were not confirmed in time stay journaled and are sent later (by this process, or by the
    next one that opens the workspace); writes the service refused for good (e.g. too large) are
    kept aside as *rejected* (``deeplake-sdk journal ls --rejected``) and reported here once.

    Attributes:
        failed_paths: Paths whose writes are not stored.
        errors: The error of each such path (a
            :class:`~deeplake_sdk.journal.RejectedWriteError` for refused writes).
        journaled: How many of the writes stay journaled and will be retried.
    """

    def __init__(
        self,
        failed_paths: Iterable[str],
        errors: dict[str, BaseException] | None = None,
        *,
        journaled: int = 0,
    ):
        self.failed_paths = sorted(failed_paths)
        self.errors = dict(errors or {})
        self.journaled = journaled
        first = next(iter(self.errors.values()), None)
        detail = f"; first error: {first}" if first is not None else ""
        kept = (
            f" ({journaled} stay journaled and are retried: flush() again to wait)"
            if journaled
            else ""
        )
        super().__init__(
            f"{len(self.failed_paths)} write(s) not stored{kept}: "
            f"{', '.join(self.failed_paths[:5])}"
            f"{' ...' if len(self.failed_paths) > 5 else ''}{detail}"
        )


class FsError(DeeplakeError, OSError):
    """A filesystem-style error with an ``errno`` code (ENOENT, EISDIR, ...).

    Built with the code of a builtin :class:`OSError` subclass, it is an instance of that one
    too, so ``except FileNotFoundError`` catches a missing file (``ENOENT``), and likewise
    :class:`IsADirectoryError` (``EISDIR``), :class:`NotADirectoryError` (``ENOTDIR``),
    :class:`FileExistsError` (``EEXIST``) and :class:`PermissionError` (``EPERM``,
    ``EACCES``). ``err.errno`` holds the code in every case.
    """

    def __new__(cls, code: int, path: str, detail: str | None = None) -> FsError:  # noqa: D102
        # OSError.__new__ sets errno, strerror and filename when __new__ is overridden
        kind = _BY_ERRNO.get(code, FsError) if cls is FsError else cls
        return super().__new__(kind, code, detail or _errno_message(code), path)

    def __init__(self, code: int, path: str, detail: str | None = None) -> None:
        del code, path, detail  # set by __new__

    def __str__(self) -> str:
        code = _errno.errorcode.get(self.errno or 0, self.errno)
        return f"[{code}] {self.strerror}: {self.filename}"

    def __reduce__(self) -> tuple[type[FsError], tuple[object, ...]]:
        return (FsError, (self.errno, self.filename, self.strerror))


class FsFileNotFoundError(FsError, FileNotFoundError):
    """``ENOENT``: no such file or directory."""


class FsIsADirectoryError(FsError, IsADirectoryError):
    """``EISDIR``: a directory where a file was expected."""


class FsNotADirectoryError(FsError, NotADirectoryError):
    """``ENOTDIR``: a file where a directory was expected."""


class FsFileExistsError(FsError, FileExistsError):
    """``EEXIST``: the path already exists."""


class FsPermissionError(FsError, PermissionError):
    """``EPERM``/``EACCES``: not allowed (session files are read-only, the root stays)."""


_BY_ERRNO: dict[int, type[FsError]] = {
    _errno.ENOENT: FsFileNotFoundError,
    _errno.EISDIR: FsIsADirectoryError,
    _errno.ENOTDIR: FsNotADirectoryError,
    _errno.EEXIST: FsFileExistsError,
    _errno.EPERM: FsPermissionError,
    _errno.EACCES: FsPermissionError,
}


def _errno_message(code: int) -> str:
    import os

    return os.strerror(code)
