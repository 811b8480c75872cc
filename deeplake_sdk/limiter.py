"""Concurrency limiter: at most N requests in flight, optionally adapting N to the server.

One :class:`Limiter` belongs to one endpoint and is shared by every client of the process
that talks to it. A slot is held for exactly one HTTP attempt: never across the sleep between
retries. It works for greenlets (with or without ``gevent.monkey.patch_all()``) and for native
threads: it is built on :class:`gevent.lock.Semaphore`, which supports cross-thread use, plus a
native lock guarding the counters.

Adaptive mode (AIMD): the effective limit starts at N, halves on a 429/503 answer and grows by
one after ``GROW_AFTER`` (4) times as many consecutive successes as the current limit (a
slow probe: each probe past the server's capacity costs a rejection); it stays within
``[1, N]``.
Rejections of requests that were already in flight when the limit was last lowered do not
lower it again (one burst counts once). Shrinking does
not block anyone: tokens are withheld ("reserved") as in-flight requests finish, and handed
back when the limit grows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gevent.lock import Semaphore
from gevent.monkey import get_original

from deeplake_sdk.errors import NetworkError

__all__ = ["Limiter"]

_allocate_lock = get_original("_thread", "allocate_lock")

#: Adaptive mode grows the limit by one after ``GROW_AFTER x limit`` consecutive successes.
GROW_AFTER = 4


class Limiter:
    """Bound the number of concurrent HTTP attempts.

    Args:
        limit: Maximum attempts in flight; ``None`` means unbounded (only counted).
        adaptive: Adapt the effective limit to the server within ``[1, limit]`` (AIMD).
    """

    def __init__(self, limit: int | None, *, adaptive: bool = False):
        if limit is not None and limit < 1:
            raise ValueError("max_concurrency must be >= 1 (or None for unbounded)")
        self.max_limit = limit
        self.adaptive = bool(adaptive and limit)
        self._sem = Semaphore(limit) if limit else None
        self._lock = _allocate_lock()
        self._target = limit
        self._reserved = 0
        self._streak = 0
        self._completed = 0
        self._quiet_until = 0
        self._in_flight = 0
        self._peak = 0
        self.decreases = 0
        self.increases = 0

    # -- introspection -----------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Attempts currently holding a slot."""
        return self._in_flight

    @property
    def peak(self) -> int:
        """Highest number of attempts ever in flight at once."""
        return self._peak

    @property
    def limit(self) -> int | None:
        """Current effective limit (``max_limit`` unless adaptive mode lowered it)."""
        return self._target

    def reset_peak(self) -> None:
        """Reset :attr:`peak` to the current in-flight count."""
        with self._lock:
            self._peak = self._in_flight

    # -- slots -------------------------------------------------------------------------------
    def acquire(self, timeout: float | None = None) -> None:
        """Take a slot, waiting (cooperatively) up to ``timeout`` seconds.

        Raises:
            NetworkError: No slot became free in time (the request was not sent).
        """
        if self._sem is not None and not self._sem.acquire(timeout=timeout):
            raise NetworkError(
                f"no free connection slot within {timeout:.1f}s "
                f"({self._in_flight} requests in flight, limit {self._target}); "
                "the request was not sent"
            )
        with self._lock:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)

    def release(self) -> None:
        """Give a slot back (withheld instead when the adaptive limit is shrinking)."""
        with self._lock:
            self._in_flight -= 1
            if self._sem is None:
                return
            withhold = (
                self.max_limit is not None
                and self._target is not None
                and self._reserved < self.max_limit - self._target
            )
            if withhold:
                self._reserved += 1
        if not withhold:
            self._sem.release()

    @contextmanager
    def slot(self, timeout: float | None = None) -> Iterator[None]:
        """Hold a slot for the body of a ``with`` block."""
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()

    # -- adaptive feedback -------------------------------------------------------------------
    def on_success(self) -> None:
        """Record a successful attempt (adaptive mode grows after a run of them)."""
        if not self.adaptive:
            return
        give = False
        with self._lock:
            assert self._target is not None and self.max_limit is not None
            self._completed += 1
            self._streak += 1
            if self._target < self.max_limit and self._streak >= GROW_AFTER * self._target:
                self._streak = 0
                self._target += 1
                self.increases += 1
                if self._reserved > self.max_limit - self._target:
                    self._reserved -= 1
                    give = True
        if give:
            assert self._sem is not None
            self._sem.release()

    def on_overload(self) -> None:
        """Record a 429/503 answer (adaptive mode halves the limit, once per burst)."""
        if not self.adaptive:
            return
        with self._lock:
            assert self._target is not None
            self._completed += 1
            self._streak = 0
            if self._completed <= self._quiet_until or self._target <= 1:
                return
            # the requests in flight now were sent under the old limit: their answers are
            # part of this burst
            self._quiet_until = self._completed + self._in_flight
            self._target = max(1, self._target // 2)
            self.decreases += 1
