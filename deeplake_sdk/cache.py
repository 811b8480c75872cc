"""Persistent content cache of file bodies, shared by runs and processes (on diskcache).

An entry is valid only while its :class:`Version` (size and last update date, taken from the
table's metadata) equals the one the reader expects; anything else is a miss.

Concurrency: diskcache keeps one SQLite connection per ``threading.local``. Under gevent
monkey-patching that becomes one connection *per greenlet* (file descriptors grow with the
number of greenlets), and a greenlet switch inside a SQLite transaction can freeze the
process. :class:`ContentCache` therefore confines every diskcache call to one native worker
thread per process and cache directory. Callers hand it a job and wait: a greenlet waits on
its hub (other greenlets keep running), plain code without a running gevent hub blocks.
Nothing that could switch greenlets runs while a transaction is open. Importing this module
does not monkey-patch anything and works with or without ``gevent.monkey.patch_all()``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from deeplake_sdk._coop import allocate_lock
from deeplake_sdk._native_worker import NativeWorker
from deeplake_sdk.http_errors import service_base

if TYPE_CHECKING:
    from deeplake_sdk.config import Credentials

__all__ = [
    "CacheKey",
    "CacheStats",
    "ContentCache",
    "NullCache",
    "Version",
    "default_cache_dir",
]

logger = logging.getLogger(__name__)

DEFAULT_SIZE_LIMIT = 1 << 30


class CacheKey(NamedTuple):
    """Identity of a cached file: where it lives and its path.

    The org is part of it: two orgs may use the same workspace name, table and path.
    """

    #: API endpoint (its normalised origin).
    endpoint: str
    #: Organisation id.
    org: str
    #: Workspace id.
    workspace: str
    #: Table name.
    table: str
    #: Absolute path of the file inside the table.
    path: str

    @classmethod
    def of(cls, credentials: Credentials, table: str, path: str) -> CacheKey:
        """The key of file ``path`` of ``table`` in the client's org and workspace.

        Args:
            credentials: The client's credentials (endpoint, org, workspace).
            table: Table name.
            path: Normalised absolute path.
        """
        c = credentials
        return cls(service_base(c.api_url), c.org_id, c.workspace_id, table, path)

    def encode(self) -> str:
        """The stable string under which the entry is stored.

        Returns:
            A JSON array of the fields behind a format tag (unambiguous for any text).
        """
        return json.dumps(["v2", *self], ensure_ascii=False, separators=(",", ":"))


class Version(NamedTuple):
    """The version an entry is valid for."""

    #: Size of the content in bytes.
    size: int
    #: The row's last update timestamp, as the metadata reports it.
    last_update_date: str

    def token(self) -> str:
        """The string stored with the entry and compared on read.

        Returns:
            ``"<size>|<last_update_date>"``.
        """
        return f"{int(self.size)}|{self.last_update_date}"


def default_cache_dir() -> str:
    """The default cache directory.

    Returns:
        ``$DEEPLAKE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/deeplake-sdk/content`` or
        ``~/.cache/deeplake-sdk/content``.
    """
    explicit = os.environ.get("DEEPLAKE_CACHE_DIR")
    if explicit:
        return os.path.expanduser(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "deeplake-sdk", "content")


@dataclass
class CacheStats:
    """Counters of one cache object, for tests and benchmarks.

    Attributes:
        hits: Reads served from the cache.
        misses: Reads not served (absent, stale, or failed), ``stale`` included.
        stale: Reads that found an entry of another version.
        sets: Entries stored.
        invalidations: Entries removed by :meth:`ContentCache.invalidate` and friends.
        errors: Cache operations that failed and were treated as a miss or a no-op.
    """

    hits: int = 0
    misses: int = 0
    stale: int = 0
    sets: int = 0
    invalidations: int = 0
    errors: int = 0


VersionLike = Version | tuple[int, str]


def _token(version: VersionLike) -> str:
    return Version(*version).token()


# ---------------------------------------------------------------------------------------------
# One worker thread per process and directory


@dataclass
class _Shared:
    worker: NativeWorker
    refs: int = 0


_registry: dict[tuple[int, str], _Shared] = {}
_registry_lock = allocate_lock()


def _reset_after_fork() -> None:
    global _registry_lock
    _registry_lock = allocate_lock()
    _registry.clear()  # the parent's worker threads do not exist in the child


os.register_at_fork(after_in_child=_reset_after_fork)


def _open_diskcache(directory: str, size_limit: int) -> Any:
    import diskcache

    os.makedirs(directory, exist_ok=True)
    return diskcache.Cache(directory, size_limit=size_limit)


# ---------------------------------------------------------------------------------------------
# Jobs (run on the worker thread; they never yield to another greenlet)


def _job_get(cache: Any, key: str, token: str, stats: CacheStats) -> bytes | None:
    if cache is None:
        stats.misses += 1
        return None
    try:
        value, tag = cache.get(key, default=None, tag=True, retry=True)
    except Exception:
        logger.warning("content cache read failed", exc_info=True)
        stats.errors += 1
        stats.misses += 1
        return None
    if not isinstance(value, bytes):
        stats.misses += 1
        return None
    if tag != token:
        stats.stale += 1
        stats.misses += 1
        return None
    stats.hits += 1
    return value


def _job_set(cache: Any, key: str, token: str, data: bytes, stats: CacheStats) -> None:
    if cache is None:
        return
    try:
        cache.set(key, data, tag=token, retry=True)
        stats.sets += 1
    except Exception:
        logger.warning("content cache write failed", exc_info=True)
        stats.errors += 1


def _job_delete(cache: Any, keys: list[str], stats: CacheStats) -> None:
    if cache is None:
        return
    try:
        for key in keys:
            if cache.delete(key, retry=True):
                stats.invalidations += 1
    except Exception:
        logger.warning("content cache invalidation failed", exc_info=True)
        stats.errors += 1


def _job_delete_tree(cache: Any, exact: str, prefix: str, stats: CacheStats) -> None:
    if cache is None:
        return
    try:
        keys = [k for k in cache.iterkeys() if isinstance(k, str) and k.startswith(prefix)]
    except Exception:
        logger.warning("content cache invalidation failed", exc_info=True)
        stats.errors += 1
        return
    _job_delete(cache, [exact, *keys], stats)


def _job_clear(cache: Any) -> None:
    if cache is not None:
        cache.clear(retry=True)


def _job_close(cache: Any) -> None:
    if cache is not None:
        cache.close()


def _job_available(cache: Any) -> bool:
    return cache is not None


# ---------------------------------------------------------------------------------------------
# Public classes


class ContentCache:
    """Persistent cache of file contents, keyed by endpoint/workspace/table/path.

    Safe to share between greenlets (monkey-patched or not) and threads. All instances on
    one directory in a process share one worker thread and SQLite connection. A cache that
    cannot be opened logs a warning and then behaves as a :class:`NullCache`; failing
    operations are logged, counted in ``stats.errors`` and treated as misses.

    Args:
        directory: Where to keep the cache; default :func:`default_cache_dir`.
        size_limit: Approximate maximum size in bytes; the oldest entries are evicted.

    Attributes:
        directory: Absolute path of the cache directory (``None`` for a :class:`NullCache`).
        stats: Hit, miss and stale counters of this instance.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        size_limit: int = DEFAULT_SIZE_LIMIT,
    ) -> None:
        self.directory: str | None = os.path.abspath(os.fspath(directory or default_cache_dir()))
        self.size_limit = size_limit
        self.stats = CacheStats()
        self._closed = False
        self._pid, self._worker = self._attach()
        self._available = bool(self._worker.call(_job_available))

    def _attach(self) -> tuple[int, NativeWorker]:
        assert self.directory is not None
        pid, directory = os.getpid(), self.directory
        with _registry_lock:
            shared = _registry.get((pid, directory))
            if shared is None:
                factory = functools.partial(_open_diskcache, directory, self.size_limit)
                worker = NativeWorker(factory, _job_close, name=f"content cache {directory}")
                shared = _registry[(pid, directory)] = _Shared(worker)
            shared.refs += 1
        return pid, shared.worker

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if os.getpid() != self._pid:  # forked: the parent's worker thread is not here
            self._pid, self._worker = self._attach()
        return self._worker.call(fn, *args)

    @property
    def available(self) -> bool:
        """Whether the cache is open and usable (``False`` once closed or if opening failed)."""
        return self._available and not self._closed

    def get(self, key: CacheKey, version: VersionLike) -> bytes | None:
        """Return the cached content if it was stored for exactly this version.

        Args:
            key: The file's :class:`CacheKey` (or a 4-tuple, or its encoded string).
            version: The :class:`Version` (or ``(size, last_update_date)``) expected.

        Returns:
            The content, or ``None`` on a miss (absent, other version, closed cache, error).
        """
        if not self.available:
            self.stats.misses += 1
            return None
        return self._call(_job_get, key.encode(), _token(version), self.stats)

    def set(self, key: CacheKey, version: VersionLike, data: bytes) -> None:
        """Store content for a version, replacing any other version.

        Args:
            key: The file's key.
            version: The version the content belongs to.
            data: The content (large values are kept in files, not in SQLite).
        """
        if self.available:
            self._call(_job_set, key.encode(), _token(version), bytes(data), self.stats)

    def invalidate(self, key: CacheKey) -> None:
        """Remove a file's entry (after a write, append or rm).

        Args:
            key: The file's key.
        """
        if self.available:
            self._call(_job_delete, [key.encode()], self.stats)

    def invalidate_tree(self, key: CacheKey) -> None:
        """Remove the entries of a path and of everything below it (``rm -r``).

        Scans the keys of the whole cache: its cost grows with the number of entries.

        Args:
            key: Key whose ``path`` is the directory (or file) to drop.
        """
        if self.available:
            base = key._replace(path=key.path.rstrip("/") or "/")
            below = base._replace(path=base.path.rstrip("/") + "/").encode()
            self._call(_job_delete_tree, base.encode(), below[: -len('"]')], self.stats)

    def clear(self) -> None:
        """Remove every entry of the cache directory (all endpoints and tables)."""
        if self.available:
            self._call(_job_clear)

    def close(self) -> None:
        """Release this instance; the last one of a directory closes its database."""
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid or self.directory is None:
            return
        with _registry_lock:
            shared = _registry.get((self._pid, self.directory))
            if shared is None or shared.worker is not self._worker:
                return
            shared.refs -= 1
            last = shared.refs == 0
            if last:
                del _registry[(self._pid, self.directory)]
        if last:
            self._worker.stop()

    def __enter__(self) -> ContentCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.directory!r})"


class NullCache(ContentCache):
    """A cache that stores nothing (every read misses), to disable caching."""

    def __init__(self) -> None:
        self.directory = None
        self.size_limit = 0
        self.stats = CacheStats()
        self._closed = False
        self._available = False
        self._pid = os.getpid()
