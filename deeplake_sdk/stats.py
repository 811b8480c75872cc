"""What a client has done so far: requests sent, retries, the concurrency limit.

:attr:`DeeplakeApi.stats <deeplake_sdk.DeeplakeApi.stats>` is a :class:`ClientStats`: read its
properties from any thread or greenlet, or take a :class:`StatsSnapshot` and subtract an
earlier one to see what a piece of code cost::

    before = api.stats.snapshot()
    fs.grep("needle")
    print((api.stats.snapshot() - before).requests_sent)   # 1
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from deeplake_sdk._coop import allocate_lock

if TYPE_CHECKING:
    from collections.abc import Callable

    from deeplake_sdk.retry import RetryEvent
    from deeplake_sdk.transport import Endpoint

__all__ = ["ClientStats", "StatsSnapshot"]

#: Retry decisions kept by :attr:`ClientStats.retry_events` (the oldest are dropped).
RECENT_RETRIES = 1000


@dataclass(frozen=True)
class StatsSnapshot:
    """The counters at one moment; ``later - earlier`` gives the counts in between.

    Attributes:
        requests_sent: HTTP requests sent through the client's endpoint by this process
            (every client of the same URL and settings shares it; retries included).
        retries: Retries of this client (each one a request sent again after a failure).
        limit: Requests in flight allowed now (the adaptive limit moves within
            ``[1, max_limit]``); ``None``: unbounded.
        max_limit: The configured ceiling (``max_concurrency``); ``None``: unbounded.
        in_flight: Requests in flight through the endpoint now.
    """

    requests_sent: int = 0
    retries: int = 0
    limit: int | None = None
    max_limit: int | None = None
    in_flight: int = 0

    def __sub__(self, earlier: StatsSnapshot) -> StatsSnapshot:
        """Counts since ``earlier``; the limit and in-flight figures are this snapshot's."""
        return replace(
            self,
            requests_sent=self.requests_sent - earlier.requests_sent,
            retries=self.retries - earlier.retries,
        )


class ClientStats:
    """Live counters of one :class:`~deeplake_sdk.DeeplakeApi`; safe to use from any thread.

    Args:
        endpoint: Returns the endpoint (connection pool and limiter) the client sends through;
            called at each reading, because a client makes its endpoint at its first request.
    """

    def __init__(self, endpoint: Callable[[], Endpoint]) -> None:
        self._endpoint_of = endpoint
        self._lock = allocate_lock()
        self._retries = 0
        self._events: deque[RetryEvent] = deque(maxlen=RECENT_RETRIES)

    def __repr__(self) -> str:
        s = self.snapshot()
        return (
            f"<ClientStats requests_sent={s.requests_sent} retries={s.retries} "
            f"limit={s.limit}/{s.max_limit} in_flight={s.in_flight}>"
        )

    @property
    def requests_sent(self) -> int:
        """See :attr:`StatsSnapshot.requests_sent`."""
        return self._endpoint_of().requests_sent

    @property
    def retries(self) -> int:
        """See :attr:`StatsSnapshot.retries`."""
        return self._retries

    @property
    def limit(self) -> int | None:
        """See :attr:`StatsSnapshot.limit`."""
        return self._endpoint_of().limiter.limit

    @property
    def max_limit(self) -> int | None:
        """See :attr:`StatsSnapshot.max_limit`."""
        return self._endpoint_of().limiter.max_limit

    @property
    def in_flight(self) -> int:
        """See :attr:`StatsSnapshot.in_flight`."""
        return self._endpoint_of().limiter.in_flight

    @property
    def retry_events(self) -> list[RetryEvent]:
        """The latest retry decisions (up to 1,000), oldest first."""
        with self._lock:
            return list(self._events)

    def snapshot(self) -> StatsSnapshot:
        """All counters at once."""
        limiter = self._endpoint_of().limiter
        with self._lock:
            retries = self._retries
        return StatsSnapshot(
            self._endpoint_of().requests_sent,
            retries,
            limiter.limit,
            limiter.max_limit,
            limiter.in_flight,
        )

    def record_retry(self, event: RetryEvent) -> None:
        """Count one retry (called by the client before it sleeps and re-sends)."""
        with self._lock:
            self._retries += 1
            self._events.append(event)
