"""State behind the seeded faults that depend on earlier writes.

- :class:`PendingCommits` (``read_lag_ms``): a write is answered while its transaction is
  still open; it commits ``read_lag_ms`` later on a background greenlet, so other requests
  do not see it until then. Its connection stays checked out of the pool meanwhile. When the
  pool runs out of connections, the oldest pending commit is done at once (never a
  deadlock); closing the backend commits every pending write first.
- :class:`RecentUpdates` (``p_coalesce``): when each row was last updated, to tell whether an
  UPDATE touches a row updated within the last ``coalesce_window_ms``.
- :class:`AlterWindows` (``alter_window_s``): until when INSERTs into a table that just got a
  column are refused.

This module runs in the gevent-patched server process only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import gevent
import gevent.event

from deeplake_sdk.server.pool import ConnectionPool, PooledConnection

logger = logging.getLogger(__name__)


class _Pending:
    __slots__ = ("after", "due", "greenlet", "now", "pc")

    def __init__(self, pc: PooledConnection, due: float, after: Callable[[], Any]) -> None:
        self.pc = pc
        self.due = due
        self.after = after
        self.now = gevent.event.Event()
        self.greenlet: gevent.Greenlet | None = None


class PendingCommits:
    """Open write transactions that commit after a delay (see the module docstring).

    Args:
        pool: the pool the connections are returned to once committed.
    """

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}  # insertion order = oldest first
        self.deferred = 0
        self.committed_early = 0
        self.commit_failed = 0
        self.peak = 0

    @property
    def count(self) -> int:
        """Writes answered and not yet committed."""
        return len(self._pending)

    def defer(
        self, pc: PooledConnection, delay_s: float, after: Callable[[], Any] | None = None
    ) -> None:
        """Commit ``pc``'s open transaction in ``delay_s`` seconds, then release it.

        Args:
            pc: the connection, its transaction open.
            delay_s: seconds until the commit.
            after: called once committed, before the release (resets session state).
        """
        item = _Pending(pc, time.monotonic() + delay_s, after or (lambda: None))
        with self._lock:
            self._pending[id(item)] = item
            self.deferred += 1
            self.peak = max(self.peak, len(self._pending))
        item.greenlet = gevent.spawn(self._run, item)

    def commit_oldest(self, group: Hashable | None = None) -> bool:
        """Commit the oldest pending write now (the pool is exhausted); False if none.

        Args:
            group: only a write of this pool group (an org at its connection cap); None: any.
        """
        group_of = self._pool.group_of
        with self._lock:
            item = next(
                (
                    p
                    for p in self._pending.values()
                    if not p.now.is_set() and (group is None or group_of(p.pc.role) == group)
                ),
                None,
            )
            if item is None:
                return False
            self.committed_early += 1
        item.now.set()
        return True

    def flush(self, timeout: float = 30.0) -> int:
        """Commit every pending write now and wait for them (server shutdown).

        Returns:
            How many were pending.
        """
        with self._lock:
            items = list(self._pending.values())
        for item in items:
            item.now.set()
        gevent.joinall([i.greenlet for i in items if i.greenlet is not None], timeout=timeout)
        return len(items)

    def _run(self, item: _Pending) -> None:
        item.now.wait(max(0.0, item.due - time.monotonic()))
        pc = item.pc
        ok = False
        try:
            pc.conn.execute("COMMIT")
            ok = True
        except Exception:
            self.commit_failed += 1
            logger.exception("a write answered before its commit could not be committed")
        finally:
            with self._lock:
                self._pending.pop(id(item), None)
            if ok:
                item.after()
            self._pool.release(pc, discard=not ok or pc.conn.closed or pc.conn.broken)

    def snapshot(self) -> dict[str, Any]:
        """Counters for the stats."""
        return {
            "pending": self.count,
            "pending_peak": self.peak,
            "deferred": self.deferred,
            "committed_early": self.committed_early,
            "commit_failed": self.commit_failed,
        }

    def reset_peak(self) -> None:
        """Restart the counters (``POST /_admin/stats/reset``); the peak from the current count."""
        with self._lock:
            self.peak = len(self._pending)
            self.deferred = self.committed_early = self.commit_failed = 0


class RecentUpdates:
    """When each row was last updated (monotonic seconds), forgotten once out of any window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[Hashable, float] = {}
        self._next_prune = 0.0

    def any_since(self, keys: Iterable[Hashable], since: float) -> bool:
        """Whether any of ``keys`` was updated after ``since``."""
        with self._lock:
            return any(self._last.get(k, -1.0) > since for k in keys)

    def touch(self, keys: Iterable[Hashable], when: float, keep_s: float) -> None:
        """Record that ``keys`` were updated at ``when``; older records than ``keep_s`` go."""
        with self._lock:
            for k in keys:
                self._last[k] = when
            if when >= self._next_prune:
                horizon = when - keep_s
                self._last = {k: t for k, t in self._last.items() if t > horizon}
                self._next_prune = when + 1.0


class AlterWindows:
    """Tables whose INSERTs fail for a while after ``ALTER TABLE .. ADD COLUMN``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[Hashable, float] = {}

    def open(self, keys: Iterable[Hashable], seconds: float) -> None:
        """Refuse INSERTs into ``keys`` for ``seconds`` from now."""
        until = time.monotonic() + seconds
        with self._lock:
            for k in keys:
                self._until[k] = max(until, self._until.get(k, 0.0))

    def blocked(self, keys: Iterable[Hashable]) -> bool:
        """Whether an INSERT into any of ``keys`` falls in a window now."""
        now = time.monotonic()
        with self._lock:
            return any(self._until.get(k, 0.0) > now for k in keys)
