"""Group commit: one native thread per journal and process runs every operation, in batches.

Callers (greenlets of any hub, native threads, plain scripts, signal handlers, atexit) queue
a request and wait cooperatively (:class:`~deeplake_sdk._coop.Completion`). The
committer thread takes every request queued at that moment, runs them in **one** transaction
(a write that fails undoes it, and the batch runs again with each write in its own
savepoint, so that the failing request fails alone) and commits once:
while one batch is being made durable (one fsync), the next one gathers. Nothing that could
switch greenlets runs inside a transaction, and the thread owns the SQLite connection.

Another process holding the write lock is not an error: the batch is tried again, polling every
0.2 ms at first (another writer's lock is free only between its commits), then every 1 and 5
ms, with a warning in the log every :data:`WARN_AFTER_S` seconds of waiting.

Fork: the SQLite connection must not cross a ``fork()``. A ``before`` at-fork handler waits for
the batch in progress (the *gate*) and closes the file connection, so the child inherits none
and no SQLite call is half-way; the parent reopens it on its next batch. In the child the
committer is dead; the stores reattach to a fresh one (new thread, new connection) on first use.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import weakref
from _queue import Empty, SimpleQueue
from collections.abc import Callable
from typing import Any

from deeplake_sdk._coop import Completion, allocate_lock, original
from deeplake_sdk.journal._model import JournalCounters, JournalError
from deeplake_sdk.journal._sqlite import is_busy, map_error

__all__ = ["Committer"]

logger = logging.getLogger(__name__)

_start_new_thread = original("_thread", "start_new_thread")
_RLock = original("_thread", "RLock")

#: Most requests in one batch, and the payload bytes after which a batch takes no more.
MAX_BATCH = 1000
MAX_BATCH_BYTES = 32 << 20
#: Log a warning every this many seconds a batch waits for another process's lock.
WARN_AFTER_S = 5.0
_sleep = original("time", "sleep")


def _pause(waited: float) -> None:
    _sleep(0.0002 if waited < 0.05 else 0.001 if waited < 1 else 0.005)


class _Busy(Exception):
    """Another process holds the journal's lock: run the batch again."""


class _Isolate(Exception):
    """A write of the batch failed: run the batch again with each write in a savepoint."""


class _Request:
    __slots__ = ("args", "done", "entries", "error", "final", "fn", "nbytes", "result", "write")

    def __init__(
        self, fn: Callable[..., Any], args: tuple, write: bool, nbytes: int, entries: int
    ) -> None:
        self.fn = fn
        self.args = args
        self.write = write
        self.nbytes = nbytes
        self.entries = entries
        self.final = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = Completion()


class Committer:
    """Runs a journal's operations on one native thread, batching concurrent ones.

    Args:
        path: The journal file, for error messages (``None`` in memory).
        opener: Opens the connection; called on the committer thread under the gate.
        close_across_fork: Close the connection before a fork (a file); ``False`` for an
            in-memory database, which would be lost (the child gets an empty one anyway).
        name: For log messages.
    """

    def __init__(
        self,
        path: str | None,
        opener: Callable[[], sqlite3.Connection],
        *,
        close_across_fork: bool,
        name: str,
    ) -> None:
        self.path = path
        self.name = name
        self._opener = opener
        self._close_across_fork = close_across_fork
        self._conn: sqlite3.Connection | None = None
        self._queue: SimpleQueue = SimpleQueue()
        self._gate = allocate_lock()  # held while the connection is in use
        self._start_lock = allocate_lock()
        self._started = False
        self._inline: Any = None  # a lock when no thread could be started (interpreter exit)
        self._stopped = False
        self._exited = False
        self._calls = self._batches = self._transactions = self._entries = self._busy = 0
        _track(self)

    # -- callers ---------------------------------------------------------------------------

    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        write: bool = False,
        nbytes: int = 0,
        entries: int = 0,
    ) -> Any:
        """Run ``fn(connection, *args)`` in the next batch and return its result.

        Args:
            fn: The operation; it must not commit, yield or call back into the committer.
            *args: Its further arguments.
            write: Whether it writes (then it runs in a savepoint of a write transaction).
            nbytes: Payload bytes it writes (batches are capped in bytes).
            entries: Entries it appends (counted).

        Returns:
            What ``fn`` returned, once the batch is committed (durable for a write).

        Raises:
            BaseException: What ``fn`` raised, a journal error for the file, or
                :class:`JournalError` once stopped.
        """
        if self._stopped:
            raise JournalError(f"{self.name} is closed")
        request = _Request(fn, args, write, nbytes, entries)
        self._submit(request)
        if request.error is not None:
            raise request.error
        return request.result

    def _submit(self, request: _Request) -> None:
        if self._ensure_thread():
            self._queue.put(request)
            if self._exited:  # the thread ended before it could see this request
                self._fail_queued()
            request.done.wait()
            return
        with self._inline:
            if request.final:
                with self._gate:
                    self._close_conn()
            else:
                self._run_batch([request])

    def _ensure_thread(self) -> bool:
        if self._started:
            return True
        with self._start_lock:
            if not self._started and self._inline is None:
                try:
                    _start_new_thread(self._run, ())
                    self._started = True
                except RuntimeError:  # no new threads at interpreter shutdown
                    logger.debug("%s: running operations on the calling thread", self.name)
                    self._inline = _RLock()
        return self._started

    def counters(self) -> JournalCounters:
        """A snapshot of the work done so far."""
        return JournalCounters(
            calls=self._calls,
            batches=self._batches,
            transactions=self._transactions,
            entries=self._entries,
            busy_waits=self._busy,
        )

    def stop(self) -> None:
        """Run what is queued, close the connection and end the thread."""
        if self._stopped:
            return
        self._stopped = True
        request = _Request(lambda conn: None, (), False, 0, 0)
        request.final = True
        if self._started or self._inline is not None:
            self._submit(request)
        else:
            self._close_conn()
        _untrack(self)

    # -- the committer thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            total = batch[0].nbytes
            while not batch[-1].final and len(batch) < MAX_BATCH and total < MAX_BATCH_BYTES:
                try:
                    request = self._queue.get_nowait()
                except Empty:
                    break
                batch.append(request)
                total += request.nbytes
            final = batch.pop() if batch[-1].final else None
            if batch:
                self._run_batch(batch)
            if final is not None:
                with self._gate:
                    self._close_conn()
                self._exited = True
                final.done.set()
                self._fail_queued()
                return

    def _fail_queued(self) -> None:
        while True:
            try:
                request = self._queue.get_nowait()
            except Empty:
                return
            request.error = JournalError(f"{self.name} is closed")
            request.done.set()

    def _run_batch(self, batch: list[_Request]) -> None:
        self._calls += len(batch)
        self._batches += 1
        started = None
        warn_at = WARN_AFTER_S
        try:
            while True:
                with self._gate:
                    try:
                        try:
                            self._execute(batch, isolate=False)
                        except _Isolate:
                            self._execute(batch, isolate=True)
                        return
                    except _Busy:
                        self._busy += 1
                    except Exception as exc:
                        error = map_error(exc, self.path)
                        for request in batch:
                            request.result, request.error = None, error
                        self._close_conn()  # reopened (and checked) by the next batch
                        return
                now = time.monotonic()
                started = now if started is None else started
                if now - started >= warn_at:
                    warn_at += WARN_AFTER_S
                    logger.warning(
                        "%s: locked by another process for %.0f s; still waiting",
                        self.name,
                        now - started,
                    )
                _pause(now - started)
        finally:
            for request in batch:
                request.done.set()

    def _execute(self, batch: list[_Request], isolate: bool) -> None:
        """Run the batch in one transaction.

        Optimistic first (``isolate=False``): no savepoints, and a failing write undoes the
        whole transaction (:class:`_Isolate`); the batch then runs again with every write in
        its own savepoint, so that it fails alone.
        """
        try:
            if self._conn is None:
                self._conn = self._opener()
            conn = self._conn
            writes = any(r.write for r in batch)
            conn.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise _Busy from exc
            raise
        try:
            for request in batch:
                self._one(conn, request, isolate)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    logger.debug("%s: rollback failed", self.name, exc_info=True)
            if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
                raise _Busy from exc
            raise
        if writes:
            self._transactions += 1
            self._entries += sum(r.entries for r in batch if r.error is None)

    def _one(self, conn: sqlite3.Connection, request: _Request, isolate: bool) -> None:
        request.result = request.error = None
        savepoint = isolate and request.write
        if savepoint:
            conn.execute("SAVEPOINT op")
        try:
            request.result = request.fn(conn, *request.args)
        except Exception as exc:
            if is_busy(exc):
                raise _Busy from exc
            if request.write and not isolate:
                raise _Isolate from exc
            request.error = map_error(exc, self.path)
            if savepoint:
                conn.execute("ROLLBACK TO op")
        if savepoint:
            conn.execute("RELEASE op")

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                logger.debug("%s: close failed", self.name, exc_info=True)

    # -- fork ------------------------------------------------------------------------------

    def _before_fork(self) -> None:
        self._gate.acquire()
        if self._close_across_fork:
            self._close_conn()

    def _after_fork_in_parent(self) -> None:
        self._gate.release()


_committers: weakref.WeakSet[Committer] = weakref.WeakSet()
_committers_lock = allocate_lock()
_held: list[Committer] = []


def _track(committer: Committer) -> None:
    with _committers_lock:
        _committers.add(committer)


def _untrack(committer: Committer) -> None:
    with _committers_lock:
        _committers.discard(committer)


def _before_fork() -> None:
    _committers_lock.acquire()  # no committer is created or dropped until after the fork
    _held[:] = list(_committers)
    for committer in _held:
        committer._before_fork()


def _after_fork_in_parent() -> None:
    for committer in _held:
        committer._after_fork_in_parent()
    _held.clear()
    _committers_lock.release()


def _after_fork_in_child() -> None:
    global _committers_lock
    _committers_lock = allocate_lock()
    _held.clear()
    for committer in list(_committers):  # they belong to the parent; the stores reattach
        committer._stopped = True
    _committers.clear()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
