"""DeeplakeFs: the agent-memory filesystem over the memory and sessions tables.

The class holds every operation (reading, writing, namespace changes, grep); the parts it
uses keep their own modules: :mod:`~deeplake_sdk.fs.writer` (journaled changes),
:mod:`~deeplake_sdk.fs.tree` (the directory tree of what is loaded),
:mod:`~deeplake_sdk.fs.paths`, :mod:`~deeplake_sdk.fs.index` (the virtual ``/index.md``) and
:mod:`~deeplake_sdk.fs.fileobj` (``fs.open``).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

from deeplake_sdk._coop import Failure, current_task, run_parallel
from deeplake_sdk.cache import CacheKey
from deeplake_sdk.errors import ClosedError, DeeplakeError, FsError, QueryError
from deeplake_sdk.fs import paths
from deeplake_sdk.fs.fileobj import open_file, parse_mode
from deeplake_sdk.fs.index import INDEX_PATH, render_index
from deeplake_sdk.fs.paths import guess_mime
from deeplake_sdk.fs.tree import FileMeta, Tree
from deeplake_sdk.fs.writer import FileWriter, text_copy
from deeplake_sdk.grep import (
    FileResult,
    GrepOptions,
    compile_pattern,
    grep_lines,
    grep_text,
    literal_prefilter,
)
from deeplake_sdk.http_errors import is_missing_schema, is_unreachable
from deeplake_sdk.journal.core import journal_for
from deeplake_sdk.journal.drain import Consistency
from deeplake_sdk.journal.limits import DEFAULT_LIMITS, Limits
from deeplake_sdk.sql import chunks
from deeplake_sdk.statements import files as st
from deeplake_sdk.statements.layout import MEMORY, SESSIONS, TableLayout, oldest_per_path

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.cache import ContentCache
    from deeplake_sdk.journal.overlay import FileView

log = logging.getLogger(__name__)

#: Metadata reads of one path (and what is below it) a filesystem makes; past that it reads
#: all the metadata once, so that a process touching many paths pays a bounded number of
#: round trips (a bulk writer or a long-lived server), while a short one reads only its path.
PARTIAL_LOADS = 4


@dataclass(frozen=True)
class FileStat:
    """What :meth:`DeeplakeFs.stat` returns.

    Attributes:
        path: Normalised absolute path.
        type: ``"file"`` or ``"directory"``.
        size: Size in bytes (0 for directories; for a session file, known once read).
        mime_type: MIME type of a file (empty for directories).
        last_update_date: ISO-8601 timestamp of the last change of a file.
        kind: ``"memory"``, ``"session"`` (read-only), ``"virtual"`` (``/index.md``), or
            ``"directory"``.
    """

    path: str
    type: Literal["file", "directory"]
    size: int = 0
    mime_type: str = ""
    last_update_date: str = ""
    kind: str = "memory"


@dataclass(frozen=True)
class GrepReport:
    """What :meth:`DeeplakeFs.grep_report` returns: the results, and what the path was.

    Attributes:
        path: The normalised path searched.
        type: ``"file"``, ``"directory"``, or None when nothing exists at the path.
        results: As :meth:`DeeplakeFs.grep` returns them.
    """

    path: str
    type: Literal["file", "directory"] | None
    results: list[FileResult]


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


F = TypeVar("F", bound=Callable[..., Any])


def _operation(method: F) -> F:
    """Mark a public method as one operation of the filesystem (see ``max_age``).

    The age of the metadata is judged against when the outermost operation of the calling
    greenlet (or thread) began: an operation refreshes at most once, at its start, and the
    operations it calls (``ls`` with ``detail`` calls ``stat``) use what it loaded.
    """

    @functools.wraps(method)
    def wrapper(self: DeeplakeFs, *args: Any, **kwargs: Any) -> Any:
        task, began = current_task(), self._began
        if task in began:
            return method(self, *args, **kwargs)
        began[task] = time.monotonic()
        try:
            return method(self, *args, **kwargs)
        finally:
            del began[task]

    return wrapper  # type: ignore[return-value]


def _binary(data: bytes | memoryview | None) -> bool:
    """Whether ``data`` is binary (not UTF-8 text, or with NUL): a text table cannot store it."""
    return data is not None and text_copy(bytes(data)) is None


class DeeplakeFs:
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

    Building it costs no request when the tables' layouts are remembered (on disk, see
    :mod:`deeplake_sdk.layout_memo`), else one probe (and the tables are created if missing).
    Metadata is loaded when first needed, for the path that needs it: reading a file is one
    request (its row), grep is one, and ``stat``, ``ls``, ``walk``, ``exists`` and the checks
    of a write or ``rm`` read both tables' metadata at and below their path in one statement
    (a write adds its ancestors' rows); ``/index.md``, ``mv``, ``cp`` and ``mkdir`` read all
    of it, also in one statement. Entries an earlier
    process left in the workspace's journal (it was killed, or offline) are sent first, for up
    to ``recover_timeout`` seconds; reads see any that remain. When the service cannot be
    reached (after the client's retries) and no layout is remembered, the filesystem opens
    anyway: writes of text are journaled (sent once the service answers), binary writes are
    refused until the memory table's layout is known (a table of the agent-memory plugin
    cannot store them), and the first read learns the layouts (and raises while the service
    stays unreachable). A refusal to prepare the memory table (credentials, a bad name) is an
    error; a failure to prepare the sessions table only logs a warning and leaves session
    files out.

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
        max_age: Seconds the metadata loaded from the tables is trusted. ``None`` (the
            default): until :meth:`refresh`. A number: once the snapshot is that old, the
            next operation refreshes what it uses first (the tables synced as by
            :meth:`refresh`, then the metadata of its paths loaded again), so that other
            processes' changes show within ``max_age`` seconds (plus the service's own
            delay; writes this machine's processes journaled show then too, from the
            shared journal, before the service has them); ``0`` refreshes before every
            operation (once per operation: the calls it makes, such as ``ls`` stating each
            entry, use what it loaded). When the service is busy or unreachable the
            snapshot is kept and used, and tried again ``max_age`` later. For long-lived
            processes that share the tables with others (a server, an agent's tool host).

    Raises:
        DeeplakeError: The service refused to prepare the memory table.
        ValueError: ``max_age`` is negative.
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
        max_age: float | None = None,
    ) -> None:
        if max_age is not None and not max_age >= 0:
            raise ValueError(f"max_age must be >= 0 seconds or None, not {max_age!r}")
        creds = api.credentials
        self.max_age = max_age
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
        #: Directories (or files) whose metadata, and that of everything below, is loaded.
        self._scopes: set[str] = set()
        #: Paths whose own rows (not what is below them) are loaded.
        self._exact: set[str] = set()
        #: Paths whose row was read with its content since the snapshot began.
        self._fetched: set[str] = set()
        #: When the first metadata of the snapshot in use was read (None: nothing read yet).
        self._snapshot_at: float | None = None
        #: When the operation in progress of each greenlet began (see :func:`_operation`).
        self._began: dict[Any, float] = {}
        self._partial_loads = 0
        self._load_failed = False
        # one attempt, no retry: the checks of a write never wait out an outage
        self._quick_api = api.with_retries(replace(api.retry_policy, retries=0)).connect_once()
        self._layout: TableLayout | None = None
        self._sessions_layout: TableLayout | None = None
        self._start(api, earlier=self._recover(recover_timeout))

    def _start(self, api: DeeplakeApi, *, earlier: int) -> None:
        """Learn the tables' layouts in one attempt; warn of what is not reachable or stored.

        A service that cannot be connected to is not waited for: writes are journaled at once
        and the layouts asked for again later. ``earlier``: entries of earlier processes not
        stored yet (named in the same warning when the service is not reachable).
        """
        try:
            self._prepare(api.connect_once())
        except DeeplakeError as exc:
            if not is_unreachable(exc):
                raise
            self.writer.binary_ok = None
            also = f"; {earlier} write(s) of an earlier process not stored yet" if earlier else ""
            reads = "wait for it" if self.api.retry_policy.retry_connect else "fail until then"
            log.warning(
                "memory table %r not reachable (%s): text writes are journaled and sent once "
                "the service answers; reads of files other than those %s%s",
                self.table,
                exc,
                reads,
                also,
            )
            return
        if earlier:
            log.warning(
                "%d journaled write(s) of an earlier process are not stored yet (%s); "
                "reads see them, and they are sent in the background",
                earlier,
                self.journal.last_error or "timeout",
            )

    @property
    def layout(self) -> TableLayout:
        """Layout of the memory table (learnt on first need if the service was unreachable).

        Raises:
            DeeplakeError: It is not known and the service cannot tell it.
        """
        if self._layout is None:
            self._prepare()
        assert self._layout is not None
        return self._layout

    @property
    def sessions_layout(self) -> TableLayout | None:
        """Layout of the sessions table (None without session files, or if unavailable)."""
        if self._layout is None and self.sessions_enabled:
            self._prepare()
        return self._sessions_layout

    @_operation
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

    def _recover(self, timeout: float | None) -> int:
        """Wait (bounded) for entries of other processes to be stored before loading.

        Returns:
            How many are not stored yet (reads see them; they are sent in the background).
        """
        adopted = self.journal.adopt_all()
        if not adopted:
            return 0
        return len(self.journal.wait_for(adopted, timeout, while_reachable=True))

    def _prepare(self, api: DeeplakeApi | None = None) -> None:
        """Learn both tables' layouts: no request when they are remembered, else one probe."""
        api = api or self.api
        tables = {self.table: MEMORY}
        if self.sessions_table:
            tables[self.sessions_table] = SESSIONS
        try:
            layouts = api.ensure_tables(tables)
        except DeeplakeError as exc:
            if len(tables) == 1 or is_unreachable(exc):
                raise
            layouts = {self.table: api.ensure_table(self.table)}  # raises if it fails
            try:
                layouts.update(self._sessions_only(api))
            except DeeplakeError as exc:
                self._sessions_unavailable(exc)
        self._layout = layouts[self.table]
        self.writer.binary_ok = self._layout.binary_ok
        if self.sessions_table and self.sessions_table in layouts:
            self._sessions_layout = layouts[self.sessions_table]

    def _sessions_only(self, api: DeeplakeApi) -> dict[str, TableLayout]:
        assert self.sessions_table is not None
        return {self.sessions_table: api.ensure_sessions_table(self.sessions_table)}

    def _sessions_unavailable(self, error: BaseException) -> None:
        self.sessions_enabled = False
        self._sessions_layout = None
        log.warning(
            "sessions table %r unavailable, session files are skipped: %s",
            self.sessions_table,
            error,
        )

    def _need_tree(self) -> None:
        """Load the metadata of both tables, once (the operations that need the tree call it)."""
        self._need_scope(paths.ROOT)

    @property
    def _loaded(self) -> bool:
        """Whether the whole tree is loaded."""
        return paths.ROOT in self._scopes

    def _covered(self, p: str) -> bool:
        """Whether the metadata of ``p`` and everything below it is loaded."""
        return p in self._scopes or any(a in self._scopes for a in paths.ancestors(p))

    def _need_scope(self, p: str, *, exact: Sequence[str] = (), quick: bool = False) -> bool:
        """Load the metadata at and below ``p`` (and at the ``exact`` paths) unless it is loaded.

        Returns:
            Whether it was loaded now (the tree is as current as the tables for ``p``).
        """
        self._expire_if_old()
        missing = [e for e in exact if e not in self._exact and not self._covered(e)]
        if self._covered(p) and not missing:
            return False
        self._partial_loads += 1
        if self._partial_loads > PARTIAL_LOADS:  # many paths: everything, once, is cheaper
            self._load_scope(paths.ROOT, quick=quick)
        else:
            self._load_scope(p, exact=missing, quick=quick)
        return True

    def _load_scope(self, scope: str, *, exact: Sequence[str] = (), quick: bool = False) -> None:
        """Load both tables' metadata at and below ``scope`` (and at ``exact``) into the tree.

        One statement for both tables (:func:`~deeplake_sdk.statements.files.scoped_metadata`).
        If the service refuses it, the tables are read apart: a refused memory table raises,
        a refused sessions table leaves session files out.

        Args:
            scope: A directory (the root: everything) or a file.
            exact: More paths whose own rows are wanted (the ancestors a write checks).
            quick: One attempt per statement, no retry; a failure of either table raises.
        """
        api = self._quick_api if quick else self.api
        started = time.monotonic()
        # Pending writes as they are before the metadata is read: one confirmed meanwhile is
        # visible to the read (a write leaves the overlay only once reads show it).
        events, views = self._overlay_views(scope, exact)
        loaded = self._scoped_tree(scope, exact, api, quick)
        self._snapshot_began(started)
        if scope == paths.ROOT:
            self.tree.copy_from(loaded)
        else:
            self._forget(scope, exact)
            self.tree.put_many(loaded.files.values())
        self._overlay_tree(events, views)
        self._scopes = {paths.ROOT} if scope == paths.ROOT else {*self._scopes, scope}
        self._exact.update(exact)
        self._load_failed = False

    def _scoped_tree(self, scope: str, exact: Sequence[str], api: DeeplakeApi, quick: bool) -> Tree:
        """Memory and session files at and below ``scope``; see :meth:`_load_scope`.

        The tree returned is shared by this process's other loads of the same statement at the
        same time (:meth:`~deeplake_sdk.api.DeeplakeApi.query_shared`): do not change it.
        """
        if not (self.sessions_enabled and self.sessions_layout is not None):
            return self._scoped_tree_apart(scope, exact, api, quick)

        def build() -> tuple[str, list[Any]]:  # after a stale layout, on the new layouts
            return st.scoped_metadata(self.layout, self.sessions_layout, scope, exact)

        try:
            if quick:  # one attempt of its own: not tied to another caller's retries
                return tree_of(self._read(build, api))
            return self._read(build, api, derive=tree_of)
        except QueryError:
            log.info("metadata of both tables refused in one statement: reading them apart")
            return self._scoped_tree_apart(scope, exact, api, quick)

    def _scoped_tree_apart(
        self, scope: str, exact: Sequence[str], api: DeeplakeApi, quick: bool
    ) -> Tree:
        """:meth:`_scoped_tree` with one statement per table, one after the other.

        A refused memory table raises; a refused sessions table leaves session files out
        (raises with ``quick``).
        """
        rows = self._read(lambda: st.scoped_metadata(self.layout, None, scope, exact), api)
        if self.sessions_enabled and self.sessions_layout is not None:
            try:
                rows += self._read(
                    lambda: st.scoped_metadata(None, self.sessions_layout, scope, exact), api
                )
            except DeeplakeError as exc:
                if quick:
                    raise
                self._sessions_unavailable(exc)
        return tree_of(rows)

    def _forget(self, scope: str, exact: Sequence[str]) -> None:
        """Drop the files at and below ``scope`` and at ``exact`` from the tree (to reload them)."""
        if scope == paths.ROOT:
            self.tree.clear()
            return
        for f in [scope, *self.tree.files_under(scope), *exact]:
            self.tree.remove(f)

    def _overlay_views(self, scope: str, exact: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
        """Pending session files and file changes (path -> view) in ``scope`` or at ``exact``."""
        events = (
            self.journal.overlay.event_paths(self.sessions_table, scope, exact)
            if self.sessions_table
            else []
        )
        return events, self.writer.view_all(scope, exact)

    def _overlay_tree(self, events: list[str], views: dict[str, Any]) -> None:
        """Show pending writes (of this or an earlier process) in the loaded tree."""
        if self.sessions_enabled:
            for path in events:
                if self.tree.get(path) is None:
                    self.tree.put(FileMeta(path, 0, "application/x-ndjson", kind="session"))
        for path, view in views.items():
            previous = self.tree.get(path)
            if view.state == "deleted":
                self.tree.remove(path)
            elif view.state == "full":
                meta = FileMeta(
                    path,
                    len(view.data),
                    str(view.meta.get("mime_type") or "application/octet-stream"),
                    str(view.meta.get("last_update_date") or ""),
                    "memory",
                    str(view.meta.get("description") or (previous.description if previous else "")),
                )
                if meta != previous:  # a tree still shared stays shared (Tree.copy_from)
                    self.tree.put(meta)

    def refresh(self) -> None:
        """See the changes made by other processes: sync both tables, reload their metadata.

        ``SELECT deeplake_sync_table(..)`` is sent here and only here: it asks the service to
        make the table's latest commits visible, which only matters to a process that has
        already looked at the table and must see what others wrote since.
        """
        self._check_open()
        self._prepare()
        self._sync_tables(self.api)
        self._forget_snapshot()
        self._load_scope(paths.ROOT)

    def _sync_tables(self, api: DeeplakeApi, *, lenient: bool = False) -> bool:
        """Ask the service to show both tables' latest commits; returns whether it did.

        A failure for the memory table raises; one for the sessions table leaves session files
        out. With ``lenient``, a failure the retry policy would retry (the service busy or
        unreachable) does neither: the result is False.
        """
        tables = [self.table]
        if self.sessions_enabled and self.sessions_layout is not None:
            tables.append(self.sessions_layout.name)
        synced = run_parallel(api.sync_table, tables, len(tables), catch=DeeplakeError)
        errors = [r.error if isinstance(r, Failure) else None for r in synced]
        retried = self.api.retry_policy.should_retry
        if lenient and any(e is not None and retried(e) for e in errors):
            return False
        if errors[0] is not None:
            raise errors[0]
        if len(errors) > 1 and errors[1] is not None:
            self._sessions_unavailable(errors[1])
        return True

    def _snapshot_began(self, started: float) -> None:
        """Metadata read at ``started`` (monotonic): the snapshot's age counts from its first."""
        if self._snapshot_at is None:
            self._snapshot_at = started

    def _forget_snapshot(self) -> None:
        """Count nothing as loaded: the tree's files are kept, to be loaded again when used."""
        self._scopes, self._exact, self._fetched = set(), set(), set()
        self._partial_loads = 0
        self._snapshot_at = None

    def _expire_if_old(self) -> None:
        """With ``max_age``: sync the tables and forget the snapshot once it is that old.

        What other processes of this machine journaled meanwhile is taken into the overlay
        first (their writes are acknowledged: reads here see them before the service does).
        The sync is one attempt. When the service is busy or unreachable, the snapshot is kept
        (an operation works on what was read before, as without ``max_age``) and the next
        try comes ``max_age`` later.
        """
        if self.max_age is None or self._snapshot_at is None:
            return
        began = self._began.get(current_task(), time.monotonic())
        if began - self._snapshot_at <= self.max_age:
            return
        if self.journal.adopt_new():
            self._overlay_tree(*self._overlay_views(paths.ROOT, ()))
        if self._sync_tables(self._quick_api, lenient=True):
            self._forget_snapshot()
            return
        log.info(
            "tables not synced: metadata read %.1f s ago is kept until the next try",
            began - self._snapshot_at,
        )
        self._snapshot_at = time.monotonic()

    def _meta(self, p: str) -> FileMeta | None:
        """What this filesystem knows of ``p``; with ``max_age``, loaded again when expired."""
        meta = self.tree.get(p)
        if meta is None or self.max_age is None:
            return meta
        self._expire_if_old()
        if not self._fresh(p):
            self._need_scope(p)
            meta = self.tree.get(p)
        return meta

    def _fresh(self, p: str) -> bool:
        """Whether the metadata of ``p`` was read in the current snapshot."""
        return self._covered(p) or p in self._exact or p in self._fetched

    def flush(self, timeout: float | None = None, *, while_reachable: bool = False) -> int:
        """Wait until every change made through this filesystem is stored.

        Args:
            timeout: Longest wait in seconds (default: the filesystem's ``flush_timeout``).
            while_reachable: Stop waiting as soon as the service cannot be connected to
                (a :class:`~deeplake_sdk.errors.ConnectError` after the call began), instead
                of waiting out an outage: the changes stay journaled and are sent once it
                answers (the ``FlushError`` says so). For programs that end soon after (a
                command, a hook), whose journal the next one sends.

        Returns:
            How many changes were still waiting for the service when it was called (the
            flusher sends changes as soon as they are journaled: earlier ones may be stored
            already).

        Raises:
            FlushError: Some changes were refused by the service (kept aside as rejected, and
                named), or not stored in time (they stay journaled and are sent later).
        """
        self._check_open()
        timeout = self.flush_timeout if timeout is None else timeout
        return self.writer.flush(timeout, while_reachable=while_reachable)

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

    # -- reading -----------------------------------------------------------------------
    @_operation
    def read_bytes(self, path: str) -> bytes:
        """Content of a file.

        Looks in order at journaled writes not yet stored, the content cache, session rows
        and the memory row.
        A path this process has not seen is looked up in the tables (one query), so files
        created by other processes can be read without :meth:`refresh`.

        Raises:
            FsError: ``ENOENT`` (no such file) or ``EISDIR`` (a directory).
        """
        self._check_open()
        p = paths.normalize(path)
        self._expire_if_old()  # first: writes other processes journaled are pending writes too
        view = self.writer.view(p)
        if view is not None:
            if view.state == "full":
                return view.data
            if view.state == "deleted":
                raise FsError(errno.ENOENT, p)
            self.writer.settle(p, view, self.flush_timeout)
        meta = self._meta(p)
        if meta is None and p == INDEX_PATH:
            self._need_tree()  # the index lists everything; one statement says if a file is there
            meta = self.tree.get(p)
        elif meta is None and not self._covered(p):
            # cold: read the row directly (one round trip); if there is none, the metadata of
            # the path says what it is (a directory, a session file, nothing)
            found = self._fetch([p])
            if p in found:
                return found[p]
            self._need_scope(p)
            meta = self.tree.get(p)
            if meta is None and not self.tree.is_dir(p):
                raise FsError(errno.ENOENT, p)
        if meta is None:
            if self.tree.is_dir(p):
                raise FsError(errno.EISDIR, p)
            if p == INDEX_PATH:
                return render_index(self.tree).encode()
            return self._read_unknown(p)
        if meta.kind == "session":
            return self._read_session(meta)
        data = self.cache.get(self._key(p), meta.version)
        if data is not None:
            return data
        found = self._fetch([p])
        if p not in found:
            self.tree.remove(p)
            raise FsError(errno.ENOENT, p)
        return found[p]

    def read_text(self, path: str, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Content of a file decoded as text (see :meth:`read_bytes`)."""
        return self.read_bytes(path).decode(encoding, errors)

    def _read_unknown(self, p: str) -> bytes:
        found = self._fetch([p])
        if p in found:
            return found[p]
        if self.sessions_enabled and self.sessions_layout is not None:
            meta = FileMeta(path=p, size=0, kind="session", mime_type="application/x-ndjson")
            data, rows = self._session_bytes(p)
            if rows:
                self.tree.put(replace(meta, rows=rows, size=len(data)))
                return data
        raise FsError(errno.ENOENT, p)

    def _read_session(self, meta: FileMeta) -> bytes:
        """A session file's content; its size and event count are updated in the tree."""
        data, rows = self._session_bytes(meta.path)
        if self.tree.get(meta.path) is meta:
            self.tree.put(replace(meta, rows=rows, size=len(data)))
        return data

    def _session_bytes(self, path: str) -> tuple[bytes, int]:
        """A session file's content (JSONL, stored and pending events) and its event count."""
        assert self.sessions_layout is not None
        sql, params = st.session_lines(self.sessions_layout, path)
        rows = self.api.query(sql, params)
        lines = st.session_file_lines(rows)
        stored = {str(r["id"]) for r in rows} | {str(r["event_key"]) for r in rows}
        lines += self.journal.overlay.event_lines(self.sessions_layout.name, path, stored)
        return "".join(line + "\n" for line in lines).encode(), len(lines)

    def _fetch(self, batch: list[str]) -> dict[str, bytes]:
        """Read memory rows, one query per :data:`~deeplake_sdk.sql.CHUNK` paths."""
        found: dict[str, bytes] = {}
        for chunk in chunks(batch):
            started = time.monotonic()
            rows = self._read(lambda c=chunk: st.memory_read(self.layout, c))
            self._snapshot_began(started)
            for path, row in oldest_per_path(rows).items():
                p = paths.normalize(path)
                found[p] = data = st.memory_row_bytes(row)
                known = self.tree.get(p)
                if known is None or known.kind != "memory":
                    known = FileMeta(path=p, size=len(data))
                meta = replace(
                    known,
                    size=int(row["size_bytes"] or len(data)),
                    last_update_date=row["last_update_date"] or "",
                    mime_type=row["mime_type"] or known.mime_type,
                    persisted=True,
                )
                self.tree.put(meta)
                self.cache.set(self._key(p), meta.version, data)
                self._fetched.add(p)
        return found

    @_operation
    def prefetch(self, paths_: Iterable[str]) -> int:
        """Load many files into the cache, one query per 50 paths; returns how many were read.

        Paths with journaled writes not yet stored, already cached at their current version,
        session files or unknown are skipped. Before the metadata is loaded, every path without
        such writes is read (its version is only known from its row).
        """
        self._check_open()
        self._expire_if_old()
        wanted = []
        for raw in paths_:
            p = paths.normalize(raw)
            meta = self.tree.get(p)
            if self.writer.view(p) is not None:
                continue
            if (meta is None and not self._covered(p)) or (
                meta is not None and self.max_age is not None and not self._fresh(p)
            ):
                wanted.append(p)
                continue
            if meta is None or meta.kind != "memory":
                continue
            if self.cache.get(self._key(p), meta.version) is None:
                wanted.append(p)
        return len(self._fetch(wanted)) if wanted else 0

    @_operation
    def exists(self, path: str) -> bool:
        """Whether a file or directory exists (in this process's view of the tables)."""
        p = self._check_scope(path)
        return self.tree.is_file(p) or self.tree.is_dir(p) or p == INDEX_PATH

    @_operation
    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory."""
        return self.tree.is_dir(self._check_scope(path))

    @_operation
    def is_file(self, path: str) -> bool:
        """Whether ``path`` is a file (including the virtual ``/index.md``)."""
        p = self._check_scope(path)
        return self.tree.is_file(p) or p == INDEX_PATH

    @_operation
    def stat(self, path: str) -> FileStat:
        """Metadata of a file or directory.

        Raises:
            FsError: ``ENOENT`` when nothing exists at ``path``.
        """
        self._check_open()
        p = paths.normalize(path)
        meta = self._meta(p)
        if meta is None:
            # cold: the metadata at and below the path, one statement (the root for the index)
            self._need_scope(paths.ROOT if p == INDEX_PATH else p)
            meta = self.tree.get(p)
        if meta is not None:
            return FileStat(p, "file", meta.size, meta.mime_type, meta.last_update_date, meta.kind)
        if self.tree.is_dir(p):
            return FileStat(p, "directory", kind="directory")
        if p == INDEX_PATH:
            size = len(render_index(self.tree).encode())
            return FileStat(p, "file", size, "text/markdown", "", "virtual")
        raise FsError(errno.ENOENT, p)

    @_operation
    def ls(self, path: str = "/", detail: bool = False) -> list[Any]:
        """Entries of a directory sorted by name, or their :class:`FileStat` with ``detail``.

        The virtual ``/index.md`` is listed in the root when no real file has that path.

        Raises:
            FsError: ``ENOENT`` (missing) or ``ENOTDIR`` (a file).
        """
        p = self._check_scope(path)
        if not self.tree.is_dir(p):
            raise FsError(errno.ENOTDIR if self.tree.is_file(p) else errno.ENOENT, p)
        names = self.tree.listdir(p)
        if p == paths.ROOT and paths.basename(INDEX_PATH) not in names:
            names = sorted([*names, paths.basename(INDEX_PATH)])
        if not detail:
            return names
        return [self.stat(paths.join(p, n)) for n in names]

    def listdir(self, path: str = "/") -> list[str]:
        """Names of the entries of a directory (same as :meth:`ls`)."""
        return self.ls(path)

    def walk(self, top: str = "/") -> Iterator[tuple[str, list[str], list[str]]]:
        """Yield ``(dirpath, dirnames, filenames)`` for every directory, like :func:`os.walk`."""
        yield from self.tree.walk(self._check_scope(top))

    # -- writing -----------------------------------------------------------------------
    @_operation
    def write_bytes(
        self,
        path: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        project: str | None = None,
        description: str | None = None,
        creation_date: str | None = None,
        last_update_date: str | None = None,
    ) -> None:
        """Write a file.

        The write is durable in the local journal when this returns; the journal's flusher
        stores it in the table in the background (:meth:`flush` waits for it). The path is
        checked against the tables' metadata, loaded once per filesystem with a single attempt
        (no retry): when the service is unreachable the write is journaled anyway, checked
        against what this filesystem has seen.

        Args:
            path: Where to write; parent directories are implicit.
            data: The new content.
            mime_type: Stored MIME type (default: guessed from the name).
            project: Value of the ``project`` column (kept when None).
            description: Value of the ``description`` column (kept when None).
            creation_date: ISO-8601 creation date of a new file (default: now).
            last_update_date: ISO-8601 date of this change (default: now). A write given its
                own date replaces the file whatever the file's date; one without replaces
                only a file not newer than itself (see :doc:`journal`, late copies).

        Raises:
            FsError: ``EISDIR``, ``ENOTDIR`` (a parent is a file), ``EPERM`` (session file),
                ``EFBIG`` (over :attr:`Limits.file_bytes <deeplake_sdk.journal.Limits>`),
                ``EINVAL`` (binary data for a table without a ``content`` column) or
                ``EAGAIN`` (binary data while the table's layout is unknown: the service was
                unreachable when the filesystem opened, and still is).
        """
        self._check_open()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        p = self._check_writable(path, data)
        self.writer.put(
            p,
            bytes(data),
            mime_type=mime_type or guess_mime(p, binary=True),
            project=project,
            description=description,
            creation_date=creation_date,
            last_update_date=last_update_date,
        )

    def write_text(self, path: str, text: str, encoding: str = "utf-8", **kwargs: Any) -> None:
        """Write a text file (keyword arguments as for :meth:`write_bytes`)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        kwargs.setdefault("mime_type", guess_mime(path, binary=False))
        self.write_bytes(path, text.encode(encoding), **kwargs)

    @_operation
    def append_bytes(self, path: str, data: bytes) -> None:
        """Append to a file, creating it when missing.

        Durable in the local journal when this returns. The flusher applies it exactly once:
        a compare-and-swap on the file's size, whose offset is journaled before it is sent, so an
        append whose answer was lost is never applied twice and appends of other processes are
        never overwritten (see :mod:`deeplake_sdk.journal.drain`).

        Raises:
            FsError: ``EISDIR``, ``ENOTDIR``, ``EPERM`` (session file), ``EFBIG``, ``EINVAL``
                or ``EAGAIN`` (see :meth:`write_bytes`).
        """
        self._check_open()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        data = bytes(data)
        p = self._check_writable(path, data)
        meta = self.tree.get(p)
        mime = meta.mime_type if meta else guess_mime(p, text_copy(data) is None)
        self.writer.append(p, data, mime_type=mime)

    def append_text(self, path: str, text: str, encoding: str = "utf-8") -> None:
        """Append text to a file, creating it when missing (see :meth:`append_bytes`)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        self.append_bytes(path, text.encode(encoding))

    def _check_writable(self, path: str, data: bytes | memoryview | None = None) -> str:
        """Check ``path`` before a write of ``data``, against the tables when reachable.

        A write whose table layout is unknown (the service was unreachable when the
        filesystem opened) asks for it first, once per write while the service fails if the
        data is binary (the layout decides whether it can be stored), else once.
        """
        p = paths.normalize(path)
        if self._layout is None and (not self._load_failed or _binary(data)):
            try:
                self._prepare(self._quick_api)
            except DeeplakeError as exc:
                self._load_failed = True
                log.info("table layout still unknown: %s", exc)
        if not self._load_failed:
            try:  # the path and below (a directory?), its ancestors' rows (files?); the
                # parent's scope, so that the next writes in the directory need nothing
                parent = paths.parent(p)
                self._need_scope(parent, exact=paths.ancestors(parent)[1:], quick=True)
            except DeeplakeError as exc:  # offline: checked against what was seen so far
                self._load_failed = True
                log.info("checking writes against what this filesystem has seen: %s", exc)
        if p == paths.ROOT or (self.tree.is_dir(p) and not self.tree.is_file(p)):
            raise FsError(errno.EISDIR, p)
        meta = self.tree.get(p)
        if meta is not None and meta.kind == "session":
            raise FsError(errno.EPERM, p, "session files are read-only")
        for ancestor in paths.ancestors(p):
            if self.tree.is_file(ancestor) and not self.tree.is_dir(ancestor):
                raise FsError(errno.ENOTDIR, p, f"not a directory: {ancestor}")
        return p

    # -- namespace: rm, mkdir, rmdir, cp, mv -------------------------------------------
    @_operation
    def rm(self, path: str, recursive: bool = False, force: bool = False) -> None:
        """Remove a file, or a directory tree with ``recursive`` (journaled, see :meth:`flush`).

        Args:
            path: What to remove.
            recursive: Remove a directory and everything inside it.
            force: Ignore a missing path.

        Raises:
            FsError: ``ENOENT`` (missing, unless ``force``), ``EISDIR`` (a directory without
                ``recursive``), ``EPERM`` (session files, or the root).
        """
        self._check_open()
        p = paths.normalize(path)
        fresh = self._need_scope(p)
        if self.tree.is_file(p):
            meta = self.tree.get(p)
            if meta is not None and meta.kind == "session":
                raise FsError(errno.EPERM, p, "session files are read-only")
            self.writer.delete(p)
        elif self.tree.is_dir(p):
            if not recursive:
                raise FsError(errno.EISDIR, p, "is a directory (use recursive=True)")
            self._rm_tree(p)
        elif not fresh and self._stored(p):
            self.writer.delete(p)
        elif not force:
            raise FsError(errno.ENOENT, p)

    def _stored(self, p: str) -> bool:
        """Whether the table (or a pending write) has a file this view has not seen."""
        view = self.writer.view(p)
        if view is not None:
            return view.state != "deleted"
        sql, params = st.memory_probe(self.layout, p)
        return bool(self.api.query(sql, params))

    def _rm_tree(self, p: str) -> None:
        if p == paths.ROOT:
            raise FsError(errno.EPERM, p, "refusing to remove the root recursively")
        files = self.tree.files_under(p)
        if any(self.tree.files[f].kind == "session" for f in files):
            raise FsError(errno.EPERM, p, "contains session files, which are read-only")
        self.writer.delete_tree(p)
        for f in files:
            self.tree.remove(f)
            self._invalidate(f)
        for d in reversed(self.tree.dirs_under(p)):
            self.tree.remove_dir(d)
        self.tree.remove_dir(p)

    @_operation
    def mkdir(self, path: str, parents: bool = False, exist_ok: bool = False) -> None:
        """Create a directory.

        Directories are implicit in the tables: one created here lives while this filesystem
        is open, or for good once a file is written inside it.

        Raises:
            FsError: ``EEXIST``, ``ENOENT`` (missing parent without ``parents``), ``ENOTDIR``.
        """
        self._check_tree()
        p = paths.normalize(path)
        if self.tree.is_dir(p):
            if exist_ok:
                return
            raise FsError(errno.EEXIST, p)
        if self.tree.is_file(p):
            raise FsError(errno.EEXIST, p, "a file exists at this path")
        for ancestor in paths.ancestors(p):
            if self.tree.is_file(ancestor) and not self.tree.is_dir(ancestor):
                raise FsError(errno.ENOTDIR, p, f"not a directory: {ancestor}")
            if not self.tree.is_dir(ancestor) and not parents:
                raise FsError(errno.ENOENT, p, f"parent directory missing: {ancestor}")
        for ancestor in paths.ancestors(p):
            if not self.tree.is_dir(ancestor):
                self.tree.add_dir(ancestor)
        self.tree.add_dir(p)

    @_operation
    def rmdir(self, path: str) -> None:
        """Remove an empty directory.

        Raises:
            FsError: ``ENOENT``, ``ENOTDIR``, ``ENOTEMPTY``, ``EPERM`` (the root).
        """
        p = self._check_scope(path)
        if p == paths.ROOT:
            raise FsError(errno.EPERM, p, "cannot remove the root")
        if not self.tree.is_dir(p):
            raise FsError(errno.ENOTDIR if self.tree.is_file(p) else errno.ENOENT, p)
        if not self.tree.is_empty_dir(p):
            raise FsError(errno.ENOTEMPTY, p)
        self.tree.remove_dir(p)

    @_operation
    def cp(self, src: str, dst: str, recursive: bool = False) -> None:
        """Copy a file, or a directory tree with ``recursive``; into ``dst`` if it is a dir.

        Raises:
            FsError: ``ENOENT``, ``EISDIR`` (a directory without ``recursive``), ``EPERM``
                (the target is a session file), ``EINVAL`` (a directory into itself).
        """
        self._check_tree()
        s, d = paths.normalize(src), paths.normalize(dst)
        if self.tree.is_dir(s) and not self.tree.is_file(s):
            if not recursive:
                raise FsError(errno.EISDIR, s, "is a directory (use recursive=True)")
            if self.tree.is_dir(d):
                d = paths.join(d, paths.basename(s))
            if d == s or paths.is_under(d, s):
                raise FsError(errno.EINVAL, d, f"cannot copy {s} into itself")
            files = self.tree.files_under(s)
            self.prefetch(files)
            for f in files:
                target = paths.dir_prefix(d) + f[len(paths.dir_prefix(s)) :]
                self._copy_file(f, target)
            return
        if self.tree.is_dir(d):
            d = paths.join(d, paths.basename(s))
        self._copy_file(s, d)

    def _copy_file(self, s: str, d: str) -> None:
        data = self.read_bytes(s)
        meta = self.tree.get(s)
        mime = meta.mime_type if meta is not None and meta.kind == "memory" else None
        self.write_bytes(d, data, mime_type=mime)

    @_operation
    def mv(self, src: str, dst: str) -> None:
        """Move or rename a file or directory; into ``dst`` if it is an existing directory.

        A stored file is renamed in place with one ``UPDATE``; an existing file at the target
        is replaced.

        Raises:
            FsError: ``ENOENT``, ``EPERM`` (session files), ``ENOTEMPTY`` (non-empty target
                directory), ``ENOTDIR``, ``EINVAL`` (a directory into itself).
        """
        self._check_tree()
        s, d = paths.normalize(src), paths.normalize(dst)
        if not (self.tree.is_file(s) or self.tree.is_dir(s)):
            raise FsError(errno.ENOENT, s)
        if s == paths.ROOT:
            raise FsError(errno.EPERM, s, "cannot move the root")
        if self.tree.is_dir(d) and d != s:
            d = paths.join(d, paths.basename(s))
        if d == s:
            return
        if self.tree.is_file(s):
            self._mv_file(s, d)
        else:
            self._mv_tree(s, d)

    def _mv_file(self, s: str, d: str) -> None:
        meta = self.tree.get(s)
        assert meta is not None
        if meta.kind == "session":
            raise FsError(errno.EPERM, s, "session files are read-only")
        self._check_writable(d)
        date = self.writer.move(s, d, tree=False)
        self.tree.remove(s)
        self.tree.remove(d)
        self._invalidate(s)
        self._invalidate(d)
        self.tree.put(FileMeta(d, meta.size, meta.mime_type, date, "memory", meta.description))

    def _mv_tree(self, s: str, d: str) -> None:
        if paths.is_under(d, s):
            raise FsError(errno.EINVAL, d, f"cannot move {s} into itself")
        if self.tree.is_file(d) and not self.tree.is_dir(d):
            raise FsError(errno.ENOTDIR, d)
        if self.tree.is_dir(d) and not self.tree.is_empty_dir(d):
            raise FsError(errno.ENOTEMPTY, d)
        files = self.tree.files_under(s)
        if any(self.tree.files[f].kind == "session" for f in files):
            raise FsError(errno.EPERM, s, "contains session files, which are read-only")
        date = self.writer.move(s, d, tree=True)
        dirs = self.tree.dirs_under(s)
        explicit = [x for x in [s, *dirs] if x in self.tree.explicit_dirs]
        for f in files:
            meta = self.tree.remove(f)
            self._invalidate(f)
            if meta is not None:
                target = paths.dir_prefix(d) + f[len(paths.dir_prefix(s)) :]
                self._invalidate(target)
                self.tree.put(
                    FileMeta(target, meta.size, meta.mime_type, date, "memory", meta.description)
                )
        for x in reversed([s, *dirs]):
            self.tree.remove_dir(x)
        for x in explicit:
            self.tree.add_dir(d + x[len(s) :])

    # -- grep --------------------------------------------------------------------------
    @_operation
    def grep(
        self,
        pattern: str,
        path: str = "/",
        *,
        ignore_case: bool = False,
        invert: bool = False,
        fixed: bool = False,
        word: bool = False,
        count: bool = False,
        files_with_matches: bool = False,
        line_numbers: bool = True,
        include_sessions: bool | None = False,
        max_results: int | None = None,
    ) -> list[FileResult]:
        """Search file contents with a regular expression, in one round trip.

        The tables are filtered server-side by the longest literal that every match must
        contain (``LIKE``/``ILIKE``), then lines are matched here. Journaled writes not yet
        stored are searched too; binary files are skipped. Format the results like GNU grep with
        :func:`deeplake_sdk.grep.format_gnu`. A path where nothing exists has no results
        (:meth:`grep_report` tells it apart, in the same round trip).

        Args:
            pattern: Python regular expression (with ``fixed``: a literal string).
            path: Directory (or single file) to search.
            ignore_case: ``-i``.
            invert: ``-v``: select the lines that do not match.
            fixed: ``-F``: the pattern is a literal.
            word: ``-w``: match whole words only.
            count: ``-c``: also report files in scope that have no matching line.
            files_with_matches: ``-l``.
            line_numbers: ``-n`` (line numbers are always recorded in the results).
            include_sessions: Search session logs as well (one JSON event per line, the
                events the service stores: not those still journaled); None: only when the
                path holds session logs and no memory file.
            max_results: Stop after this many matching lines in total.

        Returns:
            One :class:`~deeplake_sdk.grep.FileResult` per file with a match (with ``count``:
            per file in scope), sorted by path.

        Raises:
            GrepPatternError: The pattern is not a valid regular expression.
        """
        return self._grep(
            GrepOptions(
                pattern=pattern,
                ignore_case=ignore_case,
                invert=invert,
                fixed=fixed,
                word=word,
                count=count,
                files_with_matches=files_with_matches,
                line_numbers=line_numbers,
            ),
            path,
            include_sessions,
            max_results,
            probe=False,
        ).results

    @_operation
    def grep_report(
        self,
        pattern: str,
        path: str = "/",
        *,
        include_sessions: bool | None = None,
        max_results: int | None = None,
        **flags: Any,
    ) -> GrepReport:
        """:meth:`grep`, also telling what ``path`` is, in the same single round trip.

        The statement that searches also says whether anything exists at the path and
        whether it is a file or a directory, so a caller that must report a missing path
        (``grep`` from the command line) needs no ``stat`` first. Arguments as for
        :meth:`grep` (the flags as keywords), except that ``include_sessions`` defaults to
        None: session logs are searched when the path holds nothing else.

        Raises:
            GrepPatternError: The pattern is not a valid regular expression.
        """
        flags.setdefault("line_numbers", True)
        opts = GrepOptions(pattern=pattern, **flags)
        return self._grep(opts, path, include_sessions, max_results, probe=True)

    def _grep(
        self,
        opts: GrepOptions,
        path: str,
        include_sessions: bool | None,
        max_results: int | None,
        *,
        probe: bool,
    ) -> GrepReport:
        self._check_open()
        compile_pattern(opts)  # reject a bad pattern before any round trip
        scope = paths.normalize(path)
        pending = self._pending_in(scope)
        waiting = {p: v for p, v in pending.items() if v.state == "wait"}
        for p, view in waiting.items():
            self.writer.settle(p, view, self.flush_timeout)
        if waiting:  # settled: the table holds them now, the views changed
            pending = self._pending_in(scope)
        asked = include_sessions is not False and self.sessions_enabled
        rows = self._grep_candidates(
            opts, scope, asked, alone=include_sessions is None, probe=probe
        )
        what = self._scope_kind(scope, rows, pending) if probe else "directory"
        pending_memory = any(v.state != "deleted" for v in pending.values())
        sessions = asked and (include_sessions is True or not pending_memory)
        texts, lines = _assemble(rows)
        if not sessions:
            lines = {}
        for p, view in pending.items():
            text = text_copy(view.data) if view.state == "full" else None
            if text is None:
                texts.pop(p, None)
            else:
                texts[p] = text
        results: list[FileResult] = []
        budget = max_results
        for p in sorted({*texts, *lines}):
            result = grep_text(p, texts[p], opts) if p in texts else grep_lines(p, lines[p], opts)
            if budget is not None:
                if result.count > budget:
                    result.matches, result.count = result.matches[:budget], budget
                budget -= result.count
            if result.matched:
                results.append(result)
            if budget is not None and budget <= 0:
                break
        if opts.count and budget is None and what is not None:
            seen = {r.path for r in results}
            alone = include_sessions is None and not self._memory_in_scope(scope)
            for p in self._files_in_scope(scope, include_sessions is True or alone):
                if p not in seen:
                    results.append(FileResult(path=p))
            results.sort(key=lambda r: r.path)
        return GrepReport(scope, what, results)

    def _scope_kind(
        self, scope: str, rows: list[dict[str, Any]], pending: dict[str, FileView]
    ) -> Literal["file", "directory"] | None:
        """What ``scope`` is (None: nothing), from the scope row of the grep and pending writes."""
        bits = next((int(r["n"] or 0) for r in rows if r["kind"] == "scope"), 0)
        events = (
            self.journal.overlay.event_paths(self.sessions_table, scope)
            if self.sessions_enabled and self.sessions_table
            else []
        )
        live = [p for p, v in pending.items() if v.state != "deleted"]
        if (
            bits & (st.SCOPE_MEMORY_FILE | st.SCOPE_SESSION_FILE)
            or scope in live
            or scope in events
            or self.tree.is_file(scope)
        ):
            return "file"
        below = bits & (st.SCOPE_MEMORY_BELOW | st.SCOPE_SESSION_BELOW)
        if (
            below
            or scope == paths.ROOT
            or self.tree.is_dir(scope)
            or any(paths.is_under(p, scope) for p in [*live, *events])
        ):
            return "directory"
        return "file" if scope == INDEX_PATH else None

    def _memory_in_scope(self, scope: str) -> bool:
        self._need_scope(scope)
        return any(
            _in_scope(p, scope) and meta.kind == "memory" for p, meta in self.tree.files.items()
        )

    def _pending_in(self, scope: str) -> dict[str, FileView]:
        """Views of the journaled, not yet stored files under ``scope``."""
        return self.writer.view_all(scope)

    def _grep_candidates(
        self, opts: GrepOptions, scope: str, sessions: bool, *, alone: bool, probe: bool
    ) -> list[dict[str, Any]]:
        """Rows of the memory files and session lines that may match (and the scope row)."""
        pre = literal_prefilter(opts)
        return self._read(
            lambda: st.grep_candidates(
                self.layout,
                self.sessions_layout if sessions else None,
                scope,
                pre.like_pattern() if pre else None,
                pre.case_insensitive if pre else False,
                sessions_if_alone=alone,
                probe=probe,
            )
        )

    def _files_in_scope(self, scope: str, sessions: bool) -> list[str]:
        self._need_scope(scope)
        return sorted(
            p
            for p, meta in self.tree.files.items()
            if _in_scope(p, scope) and (meta.kind == "memory" or sessions)
        )

    # -- shared helpers ----------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise ClosedError("operation on a closed DeeplakeFs")

    def _read(
        self,
        build: Callable[[], tuple[str, list[Any]]],
        api: DeeplakeApi | None = None,
        *,
        derive: Callable[[list[dict[str, Any]]], Any] | None = None,
    ) -> Any:
        """Run the read ``build`` makes; if a remembered layout proved stale, once more.

        A table or column the service says does not exist (dropped or altered since its
        layout was remembered) makes the client forget the layouts; the tables are then
        ensured again (created if missing) and the statement rebuilt on the new layouts.

        Args:
            build: Makes the statement (again after a stale layout, on the new layouts).
            api: The client to send it with (default: the filesystem's).
            derive: Returns ``derive(rows)`` instead of the rows, computed once for the
                identical reads this process's other callers send at the same time (one
                statement for all, :meth:`~deeplake_sdk.api.DeeplakeApi.query_shared`); the
                value is shared: do not change it.
        """
        api = api or self.api

        def query(sql: str, params: list[Any]) -> Any:
            if derive is None:
                return api.query(sql, params)
            return api.query_shared(sql, params, derive=derive)

        sql, params = build()
        try:
            return query(sql, params)
        except QueryError as exc:
            if not is_missing_schema(exc):
                raise
            log.info("a remembered table layout is stale (%s): ensuring the tables again", exc)
            self._prepare()
            sql, params = build()
            return query(sql, params)

    def _check_tree(self) -> None:
        """Check the filesystem is open and its tree loaded (for namespace operations)."""
        self._check_open()
        self._need_tree()

    def _check_scope(self, path: str) -> str:
        """Check the filesystem is open and the metadata at and below ``path`` is loaded.

        Returns:
            The normalised path.
        """
        self._check_open()
        p = paths.normalize(path)
        self._need_scope(p)
        return p

    def _key(self, path: str) -> CacheKey:
        return CacheKey.of(self.api.credentials, self.table, path)

    def _invalidate(self, path: str) -> None:
        self.cache.invalidate(self._key(path))


def _resolve_cache(cache: ContentCache | bool | None) -> Any:
    from deeplake_sdk import cache as cache_mod

    if cache is None or cache is True:
        return cache_mod.ContentCache()
    if cache is False:
        return cache_mod.NullCache()
    return cache


def tree_of(rows: list[dict[str, Any]]) -> Tree:
    """The tree of metadata rows: memory files (the row of the duplicate rule), session files.

    See :func:`~deeplake_sdk.statements.files.scoped_metadata` for the rows.
    """
    tree = Tree()
    memory = oldest_per_path(_of_kind(rows, "memory"))
    tree.put_many(_file_meta(p, r) for p, r in memory.items())
    tree.put_many(
        FileMeta(
            path=paths.normalize(r["path"]),
            size=0,
            mime_type="application/x-ndjson",
            last_update_date=r["last_update_date"] or "",
            kind="session",
            rows=int(r["n"] or 0),
        )
        for r in _of_kind(rows, "session")
    )
    return tree


def _of_kind(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["kind"] == kind]


def _in_scope(path: str, scope: str) -> bool:
    return path == scope or paths.is_under(path, scope)


def _assemble(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, str], dict[str, list[tuple[int, str]]]]:
    """Whole texts of memory files, and numbered candidate lines of session files."""
    memory = [row for row in rows if row["kind"] == "memory"]
    texts = {
        paths.normalize(p): row["text"]
        for p, row in oldest_per_path(memory).items()
        if row["text"]  # '' for a binary file: nothing to search
    }
    lines: dict[str, list[tuple[int, str]]] = {}
    for row in rows:
        if row["kind"] == "session":
            numbered = (int(row["n"]), st.compact_json(row["message"]))
            lines.setdefault(paths.normalize(row["path"]), []).append(numbered)
    for numbered in lines.values():
        numbered.sort()
    return texts, lines


def _file_meta(path: str, row: Any) -> FileMeta:
    """The metadata of a memory file from a row of its metadata or content."""
    return FileMeta(
        path=paths.normalize(path),
        size=int(row["size_bytes"] or 0),
        mime_type=row["mime_type"] or "",
        last_update_date=row["last_update_date"] or "",
        description=row.get("description") or "",
    )
