"""Concurrency limiter: slots for HTTP attempts, handed out FIFO, sized by a limit policy.

Two parts, as in Netflix's concurrency-limits:

* the **slot mechanism**, :class:`Limiter`: at most ``limit`` attempts in flight; callers that
  find no free slot queue in FIFO order and each is handed its slot directly by the attempt
  that frees it (no stampede, no overtaking). It is safe across native threads, each with or
  without its own gevent hub, patched or not: its state is guarded by one native lock, and a
  waiter is woken on its own hub (a thread-safe ``async`` watcher) or, without a hub, on a
  native lock (:class:`~deeplake_sdk._coop.Completion`). A waiter that gives up (timeout,
  ``gevent.Timeout``, ``kill``, ``KeyboardInterrupt``, its thread ending in an exception)
  leaves the queue, or passes on the slot it was handed meanwhile: no slot is ever leaked.
* the **limit policy**, a value consulted by the mechanism: :class:`FixedLimit` or
  :class:`AimdLimit`. A policy is an immutable description; its state is an immutable value
  too, and ``policy.update(state, sample)`` returns the next state from one
  :class:`Sample` (the outcome, round-trip time and concurrency of a finished attempt). The
  limiter calls it under its lock, so a policy needs no locking and can be tested as a pure
  function (a sequence of samples in, the limits it chooses out).

A slot is held for exactly one HTTP attempt: never across the sleep between retries.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from deeplake_sdk._coop import Completion, allocate_lock
from deeplake_sdk.errors import NetworkError

__all__ = [
    "ERROR",
    "OK",
    "OVERLOAD",
    "AimdLimit",
    "AimdState",
    "FixedLimit",
    "LimitPolicy",
    "LimitState",
    "Limiter",
    "Sample",
    "policy_for",
]

#: Outcome of an attempt the service answered below 500 (4xx included: it was served).
OK = "ok"
#: Outcome of an attempt the service refused for load (429 or 503).
OVERLOAD = "overload"
#: Any other outcome (other 5xx, no answer): says nothing about the service's capacity.
ERROR = "error"

#: Adaptive mode grows the limit by one after ``GROW_AFTER x limit`` consecutive successes.
GROW_AFTER = 4


@dataclass(frozen=True)
class Sample:
    """What one finished attempt tells a limit policy.

    Attributes:
        outcome: :data:`OK`, :data:`OVERLOAD` or :data:`ERROR`.
        rtt: Seconds from sending to the answer (or the failure).
        in_flight: Other attempts still in flight when this one finished.
    """

    outcome: str
    rtt: float = 0.0
    in_flight: int = 0


@dataclass(frozen=True)
class LimitState:
    """A policy's state; the limiter only reads :attr:`limit` (``None``: unbounded)."""

    limit: int | None


class LimitPolicy:
    """How many attempts may be in flight: an immutable value, with immutable states.

    Subclasses implement :meth:`initial` and :meth:`update`; both are pure, and set
    ``max_limit``, the highest limit the policy may choose (``None``: unbounded).
    """

    max_limit: int | None = None

    def initial(self) -> LimitState:
        """The state before any sample."""
        raise NotImplementedError

    def update(self, state: LimitState, sample: Sample) -> LimitState:
        """The state after ``sample`` (``state`` itself when nothing changes)."""
        raise NotImplementedError

    def limits(self, samples: list[Sample]) -> list[int | None]:
        """The limit chosen after each of ``samples``, from the initial state (for tests)."""
        state = self.initial()
        out = []
        for sample in samples:
            state = self.update(state, sample)
            out.append(state.limit)
        return out


@dataclass(frozen=True)
class FixedLimit(LimitPolicy):
    """A constant limit (``None``: unbounded, attempts are only counted)."""

    max_limit: int | None = 5

    def __post_init__(self) -> None:
        if self.max_limit is not None and self.max_limit < 1:
            raise ValueError("max_concurrency must be >= 1 (or None for unbounded)")

    def initial(self) -> LimitState:
        """The state before any sample."""
        return LimitState(self.max_limit)

    def update(self, state: LimitState, sample: Sample) -> LimitState:
        """The same state: samples do not move a fixed limit."""
        return state


@dataclass(frozen=True)
class AimdState(LimitState):
    """State of :class:`AimdLimit`.

    Attributes:
        streak: Consecutive :data:`OK` samples since the last change.
        completed: Samples of :data:`OK` or :data:`OVERLOAD` so far.
        quiet_until: Overloads up to this ``completed`` count belong to the last burst.
    """

    streak: int = 0
    completed: int = 0
    quiet_until: int = 0


@dataclass(frozen=True)
class AimdLimit(LimitPolicy):
    """Additive increase, multiplicative decrease, learning from 429/503 only.

    Starts at ``max_limit``; halves on an :data:`OVERLOAD` (once per burst: the attempts
    already in flight when it halved were sent under the old limit, and their overloads do
    not halve it again); grows by one after ``grow_after x limit`` consecutive :data:`OK`
    samples (a slow probe: each probe past the service's capacity costs a rejection); stays
    within ``[1, max_limit]``. :data:`ERROR` samples are ignored.

    Attributes:
        max_limit: The ceiling, and the starting limit.
        grow_after: Successes per unit of limit before it grows by one.
    """

    max_limit: int = 5
    grow_after: int = GROW_AFTER

    def __post_init__(self) -> None:
        if self.max_limit < 1 or self.grow_after < 1:
            raise ValueError("max_limit and grow_after must be >= 1")

    def initial(self) -> AimdState:
        """The state before any sample: the ceiling."""
        return AimdState(self.max_limit)

    def update(self, state: LimitState, sample: Sample) -> AimdState:
        """The state after one sample."""
        assert isinstance(state, AimdState) and state.limit is not None
        if sample.outcome == OK:
            completed, streak = state.completed + 1, state.streak + 1
            if state.limit < self.max_limit and streak >= self.grow_after * state.limit:
                return AimdState(state.limit + 1, 0, completed, state.quiet_until)
            return AimdState(state.limit, streak, completed, state.quiet_until)
        if sample.outcome == OVERLOAD:
            completed = state.completed + 1
            if completed <= state.quiet_until or state.limit <= 1:
                return AimdState(state.limit, 0, completed, state.quiet_until)
            return AimdState(max(1, state.limit // 2), 0, completed, completed + sample.in_flight)
        return state


def policy_for(limit: int | None, adaptive: bool) -> LimitPolicy:
    """The default policy for a ``max_concurrency`` and ``adaptive`` setting."""
    return AimdLimit(limit) if adaptive and limit else FixedLimit(limit)


class Limiter:
    """Bound the number of concurrent HTTP attempts; FIFO among those who wait.

    Args:
        limit: Maximum attempts in flight; ``None`` means unbounded (only counted).
        adaptive: Adapt the effective limit within ``[1, limit]`` (:class:`AimdLimit`).
        policy: A :class:`LimitPolicy` to use instead (``limit`` and ``adaptive`` are then
            ignored).
    """

    def __init__(
        self, limit: int | None, *, adaptive: bool = False, policy: LimitPolicy | None = None
    ):
        self.policy = policy or policy_for(limit, adaptive)
        self._state = self.policy.initial()
        self._lock = allocate_lock()
        self._waiters: deque[Completion] = deque()
        self._in_flight = 0
        self._peak = 0
        self.decreases = 0
        self.increases = 0

    def __repr__(self) -> str:
        return (
            f"<Limiter limit={self.limit} in_flight={self._in_flight} "
            f"waiting={len(self._waiters)} {self.policy}>"
        )

    def fresh(self) -> Limiter:
        """A new limiter with the same policy and no state (a forked child's)."""
        return Limiter(None, policy=self.policy)

    # -- introspection -----------------------------------------------------------------------
    @property
    def max_limit(self) -> int | None:
        """The policy's ceiling."""
        return self.policy.max_limit

    @property
    def adaptive(self) -> bool:
        """Whether the limit moves with the samples."""
        return not isinstance(self.policy, FixedLimit)

    @property
    def in_flight(self) -> int:
        """Attempts currently holding a slot."""
        return self._in_flight

    @property
    def peak(self) -> int:
        """Highest number of attempts ever in flight at once."""
        return self._peak

    @property
    def waiting(self) -> int:
        """Callers queued for a slot."""
        return len(self._waiters)

    @property
    def limit(self) -> int | None:
        """Current effective limit (``None``: unbounded)."""
        return self._state.limit

    @property
    def state(self) -> LimitState:
        """The policy's current state."""
        return self._state

    def reset_peak(self) -> None:
        """Reset :attr:`peak` to the current in-flight count."""
        with self._lock:
            self._peak = self._in_flight

    # -- slots -------------------------------------------------------------------------------
    def acquire(self, timeout: float | None = None) -> None:
        """Take a slot, waiting (cooperatively, in FIFO order) up to ``timeout`` seconds.

        Raises:
            NetworkError: No slot became free in time (the request was not sent).
        """
        with self._lock:
            limit = self._state.limit
            if not self._waiters and (limit is None or self._in_flight < limit):
                self._take()
                return
            ticket = Completion()
            self._waiters.append(ticket)
        try:
            granted = ticket.wait(timeout)
        except BaseException:
            if not self._abandon(ticket):
                self.release()  # granted meanwhile: hand it on
            raise
        if granted or not self._abandon(ticket):
            return
        wait = "" if timeout is None else f" within {timeout:.1f}s"
        raise NetworkError(
            f"no free connection slot{wait} ({self._in_flight} requests in flight, "
            f"limit {self.limit}, {len(self._waiters)} waiting); the request was not sent"
        )

    def release(self, sample: Sample | None = None) -> None:
        """Give a slot back, to the longest waiter if any, after feeding ``sample`` to the policy.

        Args:
            sample: What the attempt that held the slot tells the policy (``None``: nothing).

        Raises:
            RuntimeError: No slot is held (a release without its acquire).
        """
        with self._lock:
            if self._in_flight <= 0:
                raise RuntimeError("Limiter.release() without a slot held")
            self._in_flight -= 1
            if sample is not None:
                self._observe(Sample(sample.outcome, sample.rtt, self._in_flight))
            self._grant()

    @contextmanager
    def slot(self, timeout: float | None = None) -> Iterator[None]:
        """Hold a slot for the body of a ``with`` block."""
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()

    # -- feedback without a slot (kept for callers of the previous interface) ----------------
    def on_success(self) -> None:
        """Feed an :data:`OK` sample."""
        self.observe(Sample(OK))

    def on_overload(self) -> None:
        """Feed an :data:`OVERLOAD` sample."""
        self.observe(Sample(OVERLOAD))

    def observe(self, sample: Sample) -> None:
        """Feed ``sample`` to the policy (its ``in_flight`` is taken from the limiter)."""
        with self._lock:
            self._observe(Sample(sample.outcome, sample.rtt, self._in_flight))
            self._grant()

    # -- under self._lock ----------------------------------------------------------------------
    def _take(self) -> None:
        self._in_flight += 1
        self._peak = max(self._peak, self._in_flight)

    def _observe(self, sample: Sample) -> None:
        old = self._state
        new = self.policy.update(old, sample)
        if new is old:
            return
        self._state = new
        if old.limit is not None and new.limit is not None:
            if new.limit < old.limit:
                self.decreases += 1
            elif new.limit > old.limit:
                self.increases += 1

    def _grant(self) -> None:
        """Hand free slots to the longest waiters (each woken on its own hub or lock)."""
        limit = self._state.limit
        while self._waiters and (limit is None or self._in_flight < limit):
            self._take()
            self._waiters.popleft().set()

    def _abandon(self, ticket: Completion) -> bool:
        """A waiter gives up: leave the queue; returns False if it had been granted a slot.

        A waiter granted a slot meanwhile owns it: it keeps it (its timeout raced with the
        grant) or releases it (it was interrupted), see :meth:`acquire`.
        """
        with self._lock:
            if not ticket.is_set():
                self._waiters.remove(ticket)
                return True
        return False
