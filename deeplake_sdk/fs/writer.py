"""Batched, parallel, exact writes of the memory filesystem.

Writes are queued per path (a newer write of a path replaces the older one) and flushed
when :attr:`WriteBuffer.max_pending` are queued, :attr:`WriteBuffer.max_delay` seconds after the
first unflushed write, and on :meth:`WriteBuffer.flush`. A flush runs its statements in
parallel on a :class:`gevent.pool.Pool`:

* files known to exist get one idempotent ``UPDATE`` each;
* new files go in multi-row ``INSERT .. WHERE NOT EXISTS`` statements (re-sending one never adds
  a row), followed by one read of the row ids that settles races with other writers: when
  another process created the same path, the oldest row wins, extra rows are deleted and this
  write's content is applied to the surviving row.

A write that fails stays queued (unless a newer write of its path replaced it), the flush
raises :class:`~deeplake_sdk.errors.FlushError`, and the next flush tries it again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import gevent
import gevent.lock
import gevent.pool

from deeplake_sdk.errors import DeeplakeError, FlushError
from deeplake_sdk.fs import paths
from deeplake_sdk.fs.tree import FileMeta, Tree
from deeplake_sdk.statements import files as st
from deeplake_sdk.statements.layout import MEMORY, TableLayout, row_rank

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi

log = logging.getLogger(__name__)


def utc_now() -> str:
    """Current time as ISO-8601 UTC with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def text_copy(data: bytes) -> str | None:
    """``data`` as text when it is valid UTF-8 without NUL characters, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


@dataclass(frozen=True)
class PendingWrite:
    """One queued full write of a file."""

    path: str
    data: bytes
    mime_type: str
    last_update_date: str
    row_id: str
    project: str | None = None
    description: str | None = None
    creation_date: str | None = None

    def appended(self, more: bytes) -> PendingWrite:
        """A new entry with ``more`` appended (the queued entry itself never changes)."""
        return replace(self, data=self.data + more, last_update_date=utc_now())

    def row(self, author: str) -> dict[str, Any]:
        """The memory-table row of this write."""
        return {
            "id": self.row_id,
            "path": self.path,
            "filename": paths.basename(self.path),
            "content": self.data,
            "summary": text_copy(self.data) or "",
            "author": author,
            "mime_type": self.mime_type,
            "size_bytes": len(self.data),
            "project": self.project if self.project is not None else "",
            "description": self.description if self.description is not None else "",
            "creation_date": self.creation_date or self.last_update_date,
            "last_update_date": self.last_update_date,
        }


def new_row_id() -> str:
    """A client-generated row id."""
    return uuid.uuid4().hex


class WriteBuffer:
    """Queue of pending writes of one memory table, and the flush machinery.

    Args:
        api: Client used for the statements.
        table: Memory table name.
        tree: The filesystem's metadata, updated as writes land.
        invalidate: Called with a path whenever its cached content becomes stale.
        author: Value of the ``author`` column of new rows.
        max_pending: Flush as soon as this many writes are queued.
        max_delay: Flush this many seconds after the first unflushed write.
        parallel: Run a flush's statements concurrently (False: one by one).
        batch_rows: Rows per multi-row INSERT (1: one statement per new file).
    """

    def __init__(
        self,
        api: DeeplakeApi,
        table: str,
        tree: Tree,
        invalidate: Callable[[str], None],
        *,
        author: str = "",
        max_pending: int = 10,
        max_delay: float = 0.2,
        parallel: bool = True,
        batch_rows: int = st.CHUNK,
    ) -> None:
        self.api = api
        self.table = table
        self.tree = tree
        self.invalidate = invalidate
        self.author = author
        self.max_pending = max_pending
        self.max_delay = max_delay
        self.parallel = parallel
        self.batch_rows = max(1, min(batch_rows, st.CHUNK))
        self.pending: dict[str, PendingWrite] = {}
        #: Layout of the memory table, set by the filesystem's bootstrap before any flush.
        self.layout: TableLayout = TableLayout.full(table, MEMORY)
        self._first_queued: float | None = None
        self._timer: gevent.Greenlet | None = None
        self.lock = gevent.lock.RLock()
        self.flushes = 0

    # -- queueing --------------------------------------------------------------------------
    def put(self, entry: PendingWrite) -> None:
        """Queue a write (replacing any queued write of the same path)."""
        self.pending[entry.path] = entry
        if self._first_queued is None:
            self._first_queued = time.monotonic()
        if len(self.pending) >= self.max_pending:
            self.auto_flush()
        else:
            self._arm_timer(self.max_delay)

    def get(self, path: str) -> PendingWrite | None:
        """The queued write of ``path``, if any."""
        return self.pending.get(path)

    def discard(self, path: str) -> PendingWrite | None:
        """Drop the queued write of ``path`` (the file was removed)."""
        return self.pending.pop(path, None)

    def due(self) -> bool:
        """Whether the oldest queued write has waited ``max_delay`` seconds."""
        return (
            self._first_queued is not None
            and time.monotonic() - self._first_queued >= self.max_delay
        )

    def _arm_timer(self, delay: float) -> None:
        if self._timer is None or self._timer.dead:
            self._timer = gevent.spawn_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.pending:
            self.auto_flush()

    def auto_flush(self) -> None:
        """Flush without raising: a failure is logged and the writes stay queued for later."""
        try:
            self.flush()
        except FlushError as exc:
            log.warning("background flush of %s failed, will retry: %s", self.table, exc)
            self._arm_timer(1.0)
        except DeeplakeError as exc:  # pragma: no cover - flush() wraps errors in FlushError
            log.warning("background flush of %s failed, will retry: %s", self.table, exc)
            self._arm_timer(1.0)

    def cancel_timer(self) -> None:
        """Stop the delayed-flush timer (on close)."""
        if self._timer is not None:
            self._timer.kill(block=False)
            self._timer = None

    # -- flushing --------------------------------------------------------------------------
    def flush(self) -> int:
        """Store every queued write; returns how many were stored.

        Raises:
            FlushError: Some writes failed; they stay queued for the next flush.
        """
        with self.lock:
            batch = list(self.pending.values())
            if not batch:
                self._first_queued = None
                return 0
            errors = self._store(batch)
            stored = 0
            for entry in batch:
                if entry.path in errors:
                    continue
                stored += 1
                if self.pending.get(entry.path) is entry:
                    del self.pending[entry.path]
                self._landed(entry)
            self._first_queued = time.monotonic() if self.pending else None
            self.flushes += 1
            if errors:
                raise FlushError(errors.keys(), errors)
            return stored

    def _landed(self, entry: PendingWrite) -> None:
        meta = self.tree.get(entry.path)
        if meta is not None and meta.kind == "memory":
            meta.persisted = True

    def _store(self, batch: list[PendingWrite]) -> dict[str, BaseException]:
        """Write a batch in two parallel phases; returns the error of each failed path.

        Phase 1 updates known files and inserts new ones (multi-row); phase 2 reads back the
        row ids of every inserted path (one query per :data:`CHUNK` paths) and settles races.
        """
        errors: dict[str, BaseException] = {}
        existing = [e for e in batch if self._persisted(e.path)]
        new = [e for e in batch if not self._persisted(e.path)]
        inserted: list[PendingWrite] = []

        def replace(entries: list[PendingWrite]) -> None:
            (entry,) = entries
            sql, params = st.memory_replace(self.layout, entry.row(self.author))
            if self.api.execute(sql, params, idempotent=True).row_count == 0:
                # The row disappeared since we last saw it (removed elsewhere): create it.
                insert(entries)

        def insert(entries: list[PendingWrite]) -> None:
            sql, params = st.memory_insert_new(self.layout, [e.row(self.author) for e in entries])
            self.api.execute(sql, params, idempotent=True)
            inserted.extend(entries)

        phase1 = [(replace, [e]) for e in existing]
        phase1 += [
            (insert, new[i : i + self.batch_rows]) for i in range(0, len(new), self.batch_rows)
        ]
        self._run(phase1, errors)
        phase2 = [
            (self._verify, inserted[i : i + st.CHUNK]) for i in range(0, len(inserted), st.CHUNK)
        ]
        self._run(phase2, errors)
        return errors

    def _run(
        self,
        tasks: list[tuple[Callable[[list[PendingWrite]], None], list[PendingWrite]]],
        errors: dict[str, BaseException],
    ) -> None:
        """Run tasks (in parallel unless disabled), recording each failed entry's error."""

        def run(task: tuple[Callable[[list[PendingWrite]], None], list[PendingWrite]]) -> None:
            func, entries = task
            try:
                func(entries)
            except DeeplakeError as exc:
                for e in entries:
                    errors[e.path] = exc

        if self.parallel and len(tasks) > 1:
            size = max(2, min(len(tasks), self.api.max_concurrency or 16))
            gevent.pool.Pool(size).map(run, tasks)
        else:
            for task in tasks:
                run(task)

    def _persisted(self, path: str) -> bool:
        meta = self.tree.get(path)
        return meta is not None and meta.kind == "memory" and meta.persisted

    def _verify(self, entries: list[PendingWrite]) -> None:
        """Read back the row ids of inserted paths and make each entry its path's one row."""
        sql, params = st.memory_ids(self.layout, [e.path for e in entries])
        ids: dict[str, list[str]] = {}
        for row in sorted(self.api.query(sql, params), key=row_rank):  # the duplicate rule
            ids.setdefault(row["path"], []).append(row["id"])
        for entry in entries:
            self._settle(entry, ids.get(entry.path, []))

    def _settle(self, entry: PendingWrite, ids: list[str]) -> None:
        """Make ``entry`` the one row of its path after a guarded insert."""
        if ids == [entry.row_id]:
            return
        if not ids:
            raise FlushError([entry.path], {entry.path: DeeplakeError("row vanished during flush")})
        keep = ids[0]
        if len(ids) > 1:
            log.info("resolving %d rows for %s (concurrent create)", len(ids), entry.path)
            sql, params = st.memory_dedupe(self.layout, entry.path, keep)
            self.api.execute(sql, params, idempotent=True)
        if keep != entry.row_id:
            # Another writer created the path first: apply this (later) write to its row.
            sql, params = st.memory_replace(self.layout, entry.row(self.author))
            self.api.execute(sql, params, idempotent=True)


def meta_for(entry: PendingWrite, previous: FileMeta | None) -> FileMeta:
    """File metadata reflecting a queued write."""
    return FileMeta(
        path=entry.path,
        size=len(entry.data),
        mime_type=entry.mime_type,
        last_update_date=entry.last_update_date,
        kind="memory",
        description=entry.description
        if entry.description is not None
        else (previous.description if previous else ""),
        persisted=previous.persisted if previous is not None else False,
    )


def stored_paths(entries: Iterable[PendingWrite]) -> list[str]:
    """Paths of a batch of entries (for log messages)."""
    return [e.path for e in entries]
