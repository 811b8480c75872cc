"""DeeplakeFs: the agent-memory filesystem over the memory and sessions tables."""

from __future__ import annotations

import errno
import logging
import os
import warnings
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from deeplake_sdk._coop import run_parallel
from deeplake_sdk.errors import DeeplakeError, FsError
from deeplake_sdk.fs import paths
from deeplake_sdk.fs.fileobj import open_file, parse_mode
from deeplake_sdk.fs.namespace import NamespaceMixin
from deeplake_sdk.fs.reading import ReadingMixin
from deeplake_sdk.fs.search import SearchMixin
from deeplake_sdk.fs.tree import FileMeta, Tree
from deeplake_sdk.fs.writer import FileWriter
from deeplake_sdk.fs.writing import WritingMixin
from deeplake_sdk.journal.core import journal_for
from deeplake_sdk.journal.drain import Consistency
from deeplake_sdk.journal.limits import DEFAULT_LIMITS, Limits
from deeplake_sdk.statements import files as st
from deeplake_sdk.statements.layout import oldest_per_path

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.cache import ContentCache

log = logging.getLogger(__name__)


class _OpenDescriptor:
    """``fs.open(path, mode)`` on a filesystem; the deprecated constructor on the class."""

    def __get__(self, instance: DeeplakeFs | None, owner: type[DeeplakeFs]) -> Any:
        if instance is not None:
            return instance.open_file

        def construct(api: DeeplakeApi, *args: Any, **kwargs: Any) -> DeeplakeFs:
            warnings.warn(
                "DeeplakeFs.open(api, ...) is deprecated: build the filesystem with "
                "DeeplakeFs(api, ...); fs.open(path, mode) now opens a file",
                DeprecationWarning,
                stacklevel=2,
            )
            return owner(api, *args, **kwargs)

        construct.__doc__ = "Deprecated: ``DeeplakeFs(api, ...)`` builds the filesystem."
        return construct


class DeeplakeFs(ReadingMixin, WritingMixin, NamespaceMixin, SearchMixin):
    r"""A virtual filesystem over the ``memory`` and ``sessions`` tables.

    Files of the memory table are read and written; session logs (rows of the sessions table
    sharing a path) appear as read-only JSONL files. Every change is durable in a local journal
    when the call returns and is stored in the table by a background flusher (in parallel
    batches); reads see pending changes at once and go through a persistent content cache.
    Close it (or use it as a context manager) to wait for the changes to be stored::

        with DeeplakeFs(api) as fs:
            fs.write_text("/notes/today.md", "# Today\n")
            fs.append_text("/notes/today.md", "- met Ada\n")
            print(fs.read_text("/notes/today.md"))
            with fs.open("/notes/today.md") as f:   # a file object, as with open()
                print(f.readline())

    Building it prepares both tables (ensure, sync) and loads their metadata. Entries an earlier
    process left in the workspace's journal (it was killed, or offline) are sent first, for up
    to ``recover_timeout`` seconds; reads see any that remain. A failure to prepare the memory
    table is an error; a failure to sync the sessions table only logs a warning and leaves
    session files out.

    Args:
        api: The client to use.
        table: Memory table name (default: the client's, ``DEEPLAKE_TABLE`` or ``memory``).
        sessions_table: Sessions table name (default: the client's,
            ``DEEPLAKE_SESSIONS_TABLE`` or ``sessions``), or None for no session files.
        cache: A :class:`~deeplake_sdk.cache.ContentCache`; None uses the default persistent
            cache directory; False disables caching.
        author: Value of the ``author`` column of new rows.
        journal: The local journal: ``None`` for the default directory
            (``$DEEPLAKE_JOURNAL_DIR`` or ``~/.deeplake/journal``), a directory, or ``False``
            for a null journal (in memory: writes not yet stored are lost if the process dies).
        consistency: How long the service may hide an acknowledged write from other requests
            (the flusher's verification waits that long before resending).
        limits: Size limits checked before a write is journaled.
        flush_timeout: Longest wait of :meth:`flush` and :meth:`close`, in seconds.
        recover_timeout: Longest wait for an earlier process's entries when opening.

    Raises:
        DeeplakeError: The memory table could not be prepared.
    """

    open = _OpenDescriptor()

    def __init__(
        self,
        api: DeeplakeApi,
        table: str | None = None,
        sessions_table: str | None = "",
        *,
        cache: ContentCache | bool | None = None,
        author: str = "",
        journal: bool | str | os.PathLike[str] | None = None,
        consistency: Consistency | None = None,
        limits: Limits = DEFAULT_LIMITS,
        flush_timeout: float | None = 60.0,
        recover_timeout: float | None = 30.0,
    ) -> None:
        creds = api.credentials
        self.api = api
        self.table = table or creds.table
        self.sessions_table = creds.sessions_table if sessions_table == "" else sessions_table
        self.cache = _resolve_cache(cache)
        self.author = author
        self.flush_timeout = flush_timeout
        self.tree = Tree()
        self.sessions_enabled = self.sessions_table is not None
        self.closed = False
        self.journal = journal_for(api, journal, consistency=consistency)
        self.writer = FileWriter(
            self.journal, self.table, self.tree, self._invalidate, author=author, limits=limits
        )
        self._recover(recover_timeout)
        self._bootstrap()

    def open_file(
        self,
        path: str,
        mode: str = "r",
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> IO[Any]:
        """Open a file of the filesystem, like :func:`open` (also reachable as ``fs.open``).

        Modes ``r``, ``w``, ``x`` (fails if the file exists) and ``a``, text or binary (``b``).
        A file opened for reading holds the content at the time of the call; one opened for
        writing or appending stores what was written when closed (one journaled write or
        append), and nothing if its ``with`` block raised.

        Raises:
            FsError: As :meth:`read_bytes` (reading), :meth:`write_bytes` (writing), or
                ``EEXIST`` (``x`` mode, the file exists).
            ValueError: An unsupported mode.
        """
        self._check_open()
        kind, _ = parse_mode(mode)
        p = paths.normalize(path)
        if kind == "x" and self.exists(p):
            raise FsError(errno.EEXIST, p)
        if kind in "wx":
            self._check_writable(p)

        def store(data: bytes) -> None:
            if kind == "a":
                self.append_bytes(p, data)
            else:
                self.write_bytes(p, data)

        return open_file(
            mode,
            read=lambda: self.read_bytes(p),
            store=store,
            encoding=encoding,
            errors=errors,
            newline=newline,
        )

    def _recover(self, timeout: float | None) -> None:
        """Wait (bounded) for entries of earlier processes to be stored before loading."""
        adopted = self.journal.overlay.seqs()
        if not adopted:
            return
        left = self.journal.wait_for(adopted, timeout)
        if left:
            log.warning(
                "%d journaled write(s) of an earlier process are not stored yet (%s); "
                "reads see them, and they are sent in the background",
                len(left),
                self.journal.last_error or "timeout",
            )

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
        self._overlay_tree()

    def _overlay_tree(self) -> None:
        """Show pending writes (of this or an earlier process) in the loaded tree."""
        if self.sessions_enabled and self.sessions_table:
            for path in self.journal.overlay.event_paths(self.sessions_table):
                if self.tree.get(path) is None:
                    self.tree.put(FileMeta(path, 0, "application/x-ndjson", kind="session"))
        for path, view in self.journal.overlay.paths(self.table).items():
            previous = self.tree.get(path)
            if view.state == "deleted":
                self.tree.remove(path)
            elif view.state == "full":
                self.tree.put(
                    FileMeta(
                        path,
                        len(view.data),
                        str(view.meta.get("mime_type") or "application/octet-stream"),
                        str(view.meta.get("last_update_date") or ""),
                        "memory",
                        previous.description if previous else "",
                    )
                )

    def _prepare_memory(self) -> list[FileMeta]:
        self.layout = self.api.ensure_table(self.table)
        self.writer.binary_ok = self.layout.binary_ok
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

        if len(funcs) > 1:
            return run_parallel(run, funcs, len(funcs), catch=())
        return [run(f) for f in funcs]

    def refresh(self) -> None:
        """Reload both tables' metadata (see changes made by other processes)."""
        self._check_open()
        self._bootstrap()

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every change this process journaled is stored; returns how many.

        Args:
            timeout: Longest wait in seconds (default: ``flush_timeout`` of :meth:`open`).

        Raises:
            FlushError: Some changes were refused by the service (kept aside as rejected, and
                named), or not stored in time (they stay journaled and are sent later).
        """
        self._check_open()
        return self.writer.flush(self.flush_timeout if timeout is None else timeout)

    def close(self, *, wait: bool = True) -> None:
        """Wait for the journaled changes to be stored, and release the filesystem.

        Args:
            wait: ``False`` returns at once: the changes stay journaled and the flusher (or
                the next process that opens this workspace) stores them.

        Raises:
            FlushError: See :meth:`flush`; the filesystem is closed anyway.
        """
        if self.closed:
            return
        self.closed = True
        if wait:
            self.writer.flush(self.flush_timeout)

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
