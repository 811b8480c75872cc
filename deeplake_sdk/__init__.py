"""deeplake-sdk: a synchronous, gevent-powered SDK for the Deeplake managed SQL API."""

from deeplake_sdk._version import __version__
from deeplake_sdk.errors import (
    AmbiguousWriteError,
    ApiError,
    AuthError,
    ConfigError,
    DeeplakeError,
    FlushError,
    FsError,
    NetworkError,
    QueryError,
    RateLimitError,
    ServerError,
)

__all__ = [
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
    "__version__",
]
