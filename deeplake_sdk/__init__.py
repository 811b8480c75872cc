"""deeplake-sdk: a synchronous, gevent-powered SDK for the Deeplake managed SQL API.

The names below are imported from their modules on first use, so that a short process that
needs a part of the SDK (a hook, a command) does not import the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deeplake_sdk._lazy import lazy_attributes
from deeplake_sdk._version import __version__

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.api_types import QueryResult, Timeout
    from deeplake_sdk.cache import ContentCache, NullCache
    from deeplake_sdk.config import Credentials, load_credentials
    from deeplake_sdk.errors import (
        AlreadyExistsError,
        AmbiguousWriteError,
        ApiError,
        AuthError,
        ClosedError,
        ConfigError,
        ConnectError,
        DeeplakeError,
        FlushError,
        FsError,
        NetworkError,
        QueryError,
        RateLimitError,
        ServerError,
        ServiceUnavailableError,
    )
    from deeplake_sdk.fs import DeeplakeFs, FileStat, GrepReport
    from deeplake_sdk.journal import Consistency, Limits, RejectedWriteError
    from deeplake_sdk.retry import RetryPolicy
    from deeplake_sdk.sessions import SessionLog
    from deeplake_sdk.statements.layout import TableLayout, TableLayoutError
    from deeplake_sdk.stats import ClientStats, StatsSnapshot

_LAZY = {
    "AlreadyExistsError": "deeplake_sdk.errors",
    "AmbiguousWriteError": "deeplake_sdk.errors",
    "ApiError": "deeplake_sdk.errors",
    "AuthError": "deeplake_sdk.errors",
    "ClientStats": "deeplake_sdk.stats",
    "ClosedError": "deeplake_sdk.errors",
    "ConfigError": "deeplake_sdk.errors",
    "ConnectError": "deeplake_sdk.errors",
    "Consistency": "deeplake_sdk.journal",
    "ContentCache": "deeplake_sdk.cache",
    "Credentials": "deeplake_sdk.config",
    "DeeplakeApi": "deeplake_sdk.api",
    "DeeplakeError": "deeplake_sdk.errors",
    "DeeplakeFs": "deeplake_sdk.fs",
    "FileStat": "deeplake_sdk.fs",
    "FlushError": "deeplake_sdk.errors",
    "FsError": "deeplake_sdk.errors",
    "GrepReport": "deeplake_sdk.fs",
    "Limits": "deeplake_sdk.journal",
    "NetworkError": "deeplake_sdk.errors",
    "NullCache": "deeplake_sdk.cache",
    "QueryError": "deeplake_sdk.errors",
    "QueryResult": "deeplake_sdk.api_types",
    "RateLimitError": "deeplake_sdk.errors",
    "RejectedWriteError": "deeplake_sdk.journal",
    "RetryPolicy": "deeplake_sdk.retry",
    "ServerError": "deeplake_sdk.errors",
    "ServiceUnavailableError": "deeplake_sdk.errors",
    "SessionLog": "deeplake_sdk.sessions",
    "StatsSnapshot": "deeplake_sdk.stats",
    "TableLayout": "deeplake_sdk.statements.layout",
    "TableLayoutError": "deeplake_sdk.statements.layout",
    "Timeout": "deeplake_sdk.api_types",
    "load_credentials": "deeplake_sdk.config",
}

__all__ = [
    "AlreadyExistsError",
    "AmbiguousWriteError",
    "ApiError",
    "AuthError",
    "ClientStats",
    "ClosedError",
    "ConfigError",
    "ConnectError",
    "Consistency",
    "ContentCache",
    "Credentials",
    "DeeplakeApi",
    "DeeplakeError",
    "DeeplakeFs",
    "FileStat",
    "FlushError",
    "FsError",
    "GrepReport",
    "Limits",
    "NetworkError",
    "NullCache",
    "QueryError",
    "QueryResult",
    "RateLimitError",
    "RejectedWriteError",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailableError",
    "SessionLog",
    "StatsSnapshot",
    "TableLayout",
    "TableLayoutError",
    "Timeout",
    "__version__",
    "load_credentials",
]


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
