"""The sleeps of a drain between read-backs of changes that do not show yet.

A change that does not show is read back again and again until it shows or its window (see
:class:`~deeplake_sdk.journal.drain.Consistency`) has passed, when it is taken as not applied
and sent again. The sleeps double, so that a change that shows soon is seen soon and one that
lags is not polled too often; but a sleep never ends far past the next *deadline*, the moment
a window ends: only a read sent after it can turn "wait" into "send it again", and one sent up
to the longest sleep later would hold every write whose answer was lost that much longer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from deeplake_sdk._coop import cooperative_sleep

__all__ = ["PAST_DEADLINE", "Polls"]

#: Seconds a poll due at a deadline is sent after it (the read must be asked past it).
PAST_DEADLINE = 0.002


class Polls:
    """Sleeps that double from ``first`` up to ``longest``, each ending at the next deadline.

    Args:
        first: The first sleep, in seconds.
        longest: The longest sleep, in seconds.
    """

    def __init__(self, first: float, longest: float) -> None:
        if first <= 0 or longest < first:
            raise ValueError("need 0 < first <= longest")
        self._next = first
        self._longest = longest

    def delay(self, now: float, deadlines: Iterable[float] = ()) -> float:
        """The next sleep, from ``now``, given the deadlines of the changes waited for.

        Deadlines already past do not shorten it (their changes are no longer waited out).
        """
        delay = self._next
        self._next = min(delay * 2, self._longest)
        upcoming = [d - now for d in deadlines if d > now]
        if upcoming:
            delay = min(delay, min(upcoming) + PAST_DEADLINE)
        return delay

    def sleep(self, deadlines: Iterable[float] = ()) -> None:
        """Sleep (cooperatively) until the next poll; deadlines are wall-clock times."""
        cooperative_sleep(self.delay(time.time(), deadlines))
