"""A bounded pool of PostgreSQL connections keyed by login (role and database).

Each workspace's queries run on connections logged in as the workspace's own role to its
org's database, so the pool keeps idle connections per key (any hashable; the backend uses
``(role, database)``). A global cap bounds the connections open at once: when it is reached,
an idle connection of another key is closed to make room, and when every connection is busy,
callers wait (up to ``acquire_timeout``), after calling ``on_exhausted`` (which may free a
connection, e.g. by committing a write held open on purpose).

Keys can belong to a group (``group_of(key)``; the backend's groups are the orgs' databases):
a group holds at most ``group_cap`` connections at once. A request of a group at its cap waits
on its group's own semaphore, so it never queues in front of other groups for the global
slots: while the groups at their cap hold fewer than ``max_size`` connections together, a
request of another group finds a slot at once.

The pool uses :mod:`threading` primitives; under ``gevent.monkey.patch_all()`` they are gevent's,
so waiting yields to other greenlets.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

Key = Any  # a hashable login key

logger = logging.getLogger(__name__)


class PoolTimeout(RuntimeError):
    """No connection became free within the pool's acquire timeout."""


class PooledConnection:
    """A connection with the per-connection state the backend tracks.

    Attributes:
        conn: the psycopg connection.
        role: the login key it was opened for.
        statement_timeout_ms: the ``statement_timeout`` last set on it (None = unknown).
        last_used: monotonic time it was last released.
    """

    __slots__ = ("conn", "last_used", "role", "statement_timeout_ms")

    def __init__(self, conn: Any, role: Key) -> None:
        self.conn = conn
        self.role = role
        self.statement_timeout_ms: int | None = None
        self.last_used = time.monotonic()


class ConnectionPool:
    """Bounded, role-keyed connection pool.

    Args:
        connect: ``connect(key)`` opens a new connection for ``key``.
        max_size: cap on open connections, all keys together.
        acquire_timeout: seconds to wait for a free connection before :class:`PoolTimeout`.
        on_exhausted: called with the group (None: the whole pool) whose connections are all
            busy, before waiting for one.
        group_of: key -> its group (None: no group, only the global cap applies).
        group_cap: connections a group may hold at once (0: ``max_size``).
    """

    def __init__(
        self,
        connect: Callable[[Key], Any],
        max_size: int = 100,
        acquire_timeout: float = 30.0,
        *,
        on_exhausted: Callable[[Hashable | None], Any] | None = None,
        group_of: Callable[[Key], Hashable | None] | None = None,
        group_cap: int = 0,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        self._connect = connect
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self.group_of: Callable[[Key], Hashable | None] = group_of or (lambda key: None)
        self.group_cap = min(group_cap or max_size, max_size)
        self._groups: dict[Hashable, threading.BoundedSemaphore] = {}
        self.group_waits = 0
        self._slots = threading.BoundedSemaphore(max_size)
        self._lock = threading.Lock()
        # idle connections, least recently used first: id -> PooledConnection
        self._idle: OrderedDict[int, PooledConnection] = OrderedDict()
        self._open = 0
        self._busy = 0
        self._closed = False
        self.on_exhausted = on_exhausted
        self.opened_total = 0
        self.busy_peak = 0
        self.exhausted = 0

    @property
    def open_count(self) -> int:
        """Connections currently open (busy + idle)."""
        return self._open

    @property
    def idle_count(self) -> int:
        """Idle connections."""
        return len(self._idle)

    @property
    def busy_count(self) -> int:
        """Connections borrowed now."""
        return self._busy

    def reset_peak(self) -> None:
        """Restart ``busy_peak`` (from the current count) and the ``exhausted`` count."""
        self.busy_peak = self._busy
        self.exhausted = 0

    @contextlib.contextmanager
    def connection(self, role: Key) -> Iterator[PooledConnection]:
        """Borrow a connection for the key ``role``; broken connections are discarded.

        Raises:
            PoolTimeout: every connection stayed busy for ``acquire_timeout`` seconds.
        """
        pc = self.acquire(role)
        ok = False
        try:
            yield pc
            ok = True
        finally:
            self.release(pc, discard=not ok or _is_broken(pc.conn))

    def _group_slots(self, group: Hashable) -> threading.BoundedSemaphore:
        with self._lock:
            sem = self._groups.get(group)
            if sem is None:
                sem = self._groups[group] = threading.BoundedSemaphore(self.group_cap)
            return sem

    def acquire(self, role: Key) -> PooledConnection:
        """Take an idle connection of ``role`` or open one (see :meth:`connection`).

        Waits at most ``acquire_timeout`` seconds in all (group cap, then global cap).
        """
        if self._closed:
            raise RuntimeError("connection pool is closed")
        deadline = time.monotonic() + self.acquire_timeout
        group = self.group_of(role)
        group_slots = None if group is None else self._group_slots(group)
        if group_slots is not None and not group_slots.acquire(blocking=False):
            self.group_waits += 1
            self.exhausted += 1
            if self.on_exhausted is not None:
                self.on_exhausted(group)
            if not group_slots.acquire(timeout=self.acquire_timeout):
                raise PoolTimeout(
                    f"this organization's {self.group_cap} database connections stayed busy "
                    f"for {self.acquire_timeout:g} s"
                )
        try:
            self._take_slot(deadline)
        except BaseException:
            if group_slots is not None:
                group_slots.release()
            raise
        try:
            return self._checkout(role)
        except BaseException:
            if group_slots is not None:
                group_slots.release()
            raise

    def _take_slot(self, deadline: float) -> None:
        if self._slots.acquire(blocking=False):
            return
        self.exhausted += 1
        if self.on_exhausted is not None:
            self.on_exhausted(None)
        if not self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise PoolTimeout(
                f"all {self.max_size} database connections stayed busy for "
                f"{self.acquire_timeout:g} s"
            )

    def _checkout(self, role: Key) -> PooledConnection:
        with self._lock:
            self._busy += 1
            self.busy_peak = max(self.busy_peak, self._busy)
        try:
            victim: PooledConnection | None = None
            with self._lock:
                pc = self._take_idle(role)
                if pc is None:
                    if self._open >= self.max_size:
                        # we hold a slot, so at least one idle connection of another role exists
                        _, victim = self._idle.popitem(last=False)
                    else:
                        self._open += 1
            if pc is not None:
                return pc
            if victim is not None:
                _close_quietly(victim.conn)
            try:
                conn = self._connect(role)
            except BaseException:
                with self._lock:
                    self._open -= 1
                raise
            self.opened_total += 1
            return PooledConnection(conn, role)
        except BaseException:
            with self._lock:
                self._busy -= 1
            self._slots.release()
            raise

    def release(self, pc: PooledConnection, discard: bool = False) -> None:
        """Return a borrowed connection (closed instead when ``discard`` or the pool is closed)."""
        try:
            if discard or self._closed:
                _close_quietly(pc.conn)
                with self._lock:
                    self._open -= 1
            else:
                pc.last_used = time.monotonic()
                with self._lock:
                    self._idle[id(pc)] = pc
        finally:
            with self._lock:
                self._busy -= 1
            self._slots.release()
            group = self.group_of(pc.role)
            if group is not None:
                self._group_slots(group).release()

    def discard_idle(self) -> int:
        """Close every idle connection (the database went away); returns how many."""
        with self._lock:
            idle = list(self._idle.values())
            self._idle.clear()
            self._open -= len(idle)
        for pc in idle:
            _close_quietly(pc.conn)
        return len(idle)

    def _take_idle(self, role: Key) -> PooledConnection | None:
        # the most recently used connection of this role (keeps the working set small)
        while True:
            key = next((k for k in reversed(self._idle) if self._idle[k].role == role), None)
            if key is None:
                return None
            pc = self._idle.pop(key)
            if not _is_broken(pc.conn):
                return pc
            _close_quietly(pc.conn)
            self._open -= 1

    def close(self) -> None:
        """Close idle connections now and busy ones when they are released."""
        self._closed = True
        self.discard_idle()


def _is_broken(conn: Any) -> bool:
    return bool(getattr(conn, "closed", False) or getattr(conn, "broken", False))


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # closing a dead connection may fail; nothing to do about it
        logger.debug("error closing a database connection", exc_info=True)
