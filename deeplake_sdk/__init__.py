"""deeplake-sdk: a synchronous, gevent-powered SDK for the Deeplake managed SQL API."""

from deeplake_sdk._version import __version__
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

__all__ = [
    "AlreadyExistsError",
    "AmbiguousWriteError",
    "ApiError",
    "AuthError",
    "ClientStats",
    "ClosedError",
    "ConfigError",
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
