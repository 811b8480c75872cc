"""DeeplakeFs: the agent-memory filesystem over the memory and sessions tables."""

from __future__ import annotations

import atexit
import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from deeplake_sdk._coop import run_parallel
from deeplake_sdk.errors import DeeplakeError
from deeplake_sdk.fs import paths
from deeplake_sdk.fs.namespace import NamespaceMixin
from deeplake_sdk.fs.reading import ReadingMixin
from deeplake_sdk.fs.search import SearchMixin
from deeplake_sdk.fs.tree import FileMeta, Tree
from deeplake_sdk.fs.writer import WriteBuffer, meta_for
from deeplake_sdk.fs.writing import WritingMixin
from deeplake_sdk.statements import files as st
from deeplake_sdk.statements.layout import oldest_per_path

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.cache import ContentCache

log = logging.getLogger(__name__)

_open_filesystems: weakref.WeakSet[DeeplakeFs] = weakref.WeakSet()


class DeeplakeFs(ReadingMixin, WritingMixin, NamespaceMixin, SearchMixin):
    r"""A virtual filesystem over the ``memory`` and ``sessions`` tables.

    Files of the memory table are read and written; session logs (rows of the sessions table
    sharing a path) appear as read-only JSONL files. Writes are batched and flushed in parallel;
    reads go through a persistent content cache. Use :meth:`open` to create one, and close it
    (or use it as a context manager) so that queued writes are stored::

        with DeeplakeFs.open(api) as fs:
            fs.write_text("/notes/today.md", "# Today\n")
            fs.append_text("/notes/today.md", "- met Ada\n")
            print(fs.read_text("/notes/today.md"))

    Use :meth:`open`, not the constructor, which only assembles the parts.
    """

    def __init__(
        self,
        api: DeeplakeApi,
        table: str,
        sessions_table: str | None,
        cache: ContentCache,
        *,
        author: str,
        parallel: bool,
        max_pending: int,
        max_delay: float,
        batch_rows: int,
        grep_strategy: Literal["query", "per_file"],
    ) -> None:
        self.api = api
        self.table = table
        self.sessions_table = sessions_table
        self.cache = cache
        self.author = author
        self.parallel = parallel
        self.grep_strategy = grep_strategy
        self.tree = Tree()
        self.sessions_enabled = sessions_table is not None
        self.closed = False
        self.writer = WriteBuffer(
            api,
            table,
            self.tree,
            self._invalidate,
            author=author,
            max_pending=max_pending,
            max_delay=max_delay,
            parallel=parallel,
            batch_rows=batch_rows,
        )

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        api: DeeplakeApi,
        table: str = "memory",
        sessions_table: str | None = "sessions",
        *,
        cache: ContentCache | bool | None = None,
        author: str = "",
        parallel: bool = True,
        max_pending: int = 10,
        max_delay: float = 0.2,
        batch_rows: int = st.CHUNK,
        grep_strategy: Literal["query", "per_file"] = "query",
    ) -> DeeplakeFs:
        """Bootstrap a filesystem: ensure both tables, sync them, load their metadata.

        The two tables are prepared in parallel (``parallel=False``: one after the other). A
        failure to sync the memory table is an error; a failure to sync the sessions table only
        logs a warning and leaves session files out.

        Args:
            api: The client to use.
            table: Memory table name.
            sessions_table: Sessions table name, or None for no session files.
            cache: A :class:`~deeplake_sdk.cache.ContentCache`; None uses the default
                persistent cache directory; False disables caching.
            author: Value of the ``author`` column of new rows.
            parallel: Run bootstrap and flush statements concurrently.
            max_pending: Flush as soon as this many writes are queued.
            max_delay: Flush this many seconds after the first unflushed write.
            batch_rows: Rows per multi-row INSERT when flushing new files (1: one each).
            grep_strategy: ``"query"`` (one round trip) or ``"per_file"`` (read every file).

        Returns:
            The ready filesystem.

        Raises:
            DeeplakeError: The memory table could not be prepared.
        """
        fs = cls(
            api,
            table,
            sessions_table,
            _resolve_cache(cache),
            author=author,
            parallel=parallel,
            max_pending=max_pending,
            max_delay=max_delay,
            batch_rows=batch_rows,
            grep_strategy=grep_strategy,
        )
        fs._bootstrap()
        _open_filesystems.add(fs)
        return fs

    def _bootstrap(self) -> None:
        chains: list[Callable[[], list[FileMeta]]] = [self._prepare_memory]
        if self.sessions_table:
            chains.append(self._prepare_sessions)
        results = self._run_all(chains)
        memory = results[0]
        if isinstance(memory, BaseException):
            raise memory
        self.tree.clear()
        self.tree.put_many(memory)
        if len(results) > 1:
            sessions = results[1]
            if isinstance(sessions, BaseException):
                self.sessions_enabled = False
                log.warning(
                    "sessions table %r unavailable, session files are skipped: %s",
                    self.sessions_table,
                    sessions,
                )
            else:
                self.tree.put_many(sessions)
        for entry in self.writer.pending.values():
            self.tree.put(meta_for(entry, self.tree.get(entry.path)))

    def _prepare_memory(self) -> list[FileMeta]:
        self.layout = self.writer.layout = self.api.ensure_table(self.table)
        self.api.sync_table(self.table)
        sql, params = st.memory_metadata(self.layout)
        return [
            FileMeta(
                path=paths.normalize(p),
                size=int(r["size_bytes"] or 0),
                mime_type=r["mime_type"] or "",
                last_update_date=r["last_update_date"] or "",
                description=r.get("description") or "",
            )
            for p, r in oldest_per_path(self.api.query(sql, params)).items()
        ]

    def _prepare_sessions(self) -> list[FileMeta]:
        assert self.sessions_table is not None
        self.sessions_layout = self.api.ensure_sessions_table(self.sessions_table)
        self.api.sync_table(self.sessions_table)
        sql, params = st.sessions_metadata(self.sessions_layout)
        return [
            FileMeta(
                path=paths.normalize(r["path"]),
                size=0,
                mime_type="application/x-ndjson",
                last_update_date=r["last_update_date"] or "",
                kind="session",
                rows=int(r["n"] or 0),
            )
            for r in self.api.query(sql, params)
        ]

    def _run_all(self, funcs: list[Callable[[], Any]]) -> list[Any]:
        """Run callables (in parallel unless disabled); each result or its DeeplakeError."""

        def run(func: Callable[[], Any]) -> Any:
            try:
                return func()
            except DeeplakeError as exc:
                return exc

        if self.parallel and len(funcs) > 1:
            return run_parallel(run, funcs, len(funcs), catch=())
        return [run(f) for f in funcs]

    def refresh(self) -> None:
        """Reload both tables' metadata (see changes made by other processes)."""
        self._check_open()
        self._bootstrap()

    def flush(self) -> int:
        """Store every queued write now; returns how many were stored.

        Raises:
            FlushError: Some writes failed. They stay queued and the next flush retries them.
        """
        self._check_open()
        return self.writer.flush()

    def close(self, *, discard: bool = False) -> None:
        """Flush queued writes and release the filesystem (idempotent).

        Args:
            discard: Drop the queued writes instead of storing them (they are logged).

        Raises:
            FlushError: Queued writes could not be stored; they are retried once more at exit.
        """
        if self.closed:
            return
        self.writer.cancel_timer()
        if discard and self.writer.pending:
            log.warning(
                "discarding %d queued write(s): %s",
                len(self.writer.pending),
                ", ".join(sorted(self.writer.pending)[:10]),
            )
            self.writer.pending.clear()
        self.writer.flush()
        self.closed = True
        _open_filesystems.discard(self)

    def __enter__(self) -> DeeplakeFs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve_cache(cache: ContentCache | bool | None) -> Any:
    from deeplake_sdk import cache as cache_mod

    if cache is None or cache is True:
        return cache_mod.ContentCache()
    if cache is False:
        return cache_mod.NullCache()
    return cache


@atexit.register
def _flush_at_exit() -> None:
    """Safety net: store writes of filesystems that were never closed."""
    for fs in list(_open_filesystems):
        pending = len(fs.writer.pending)
        if not pending or fs.closed:
            continue
        log.warning(
            "DeeplakeFs(%s) was not closed: flushing %d queued write(s) at exit "
            "(call close() or use it as a context manager)",
            fs.table,
            pending,
        )
        try:
            fs.writer.flush()
        except DeeplakeError as exc:
            log.error("writes lost at exit, could not be stored: %s", exc)
