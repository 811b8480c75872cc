"""What the service's read lag has been, as this process's own writes showed it.

Every file change a drain sends is read back (:mod:`deeplake_sdk.journal.drain`); the time from
the change's answer to the answer of the read that first showed it is an upper bound of the
lag that change met. :class:`ObservedLag` keeps the latest of these bounds, and
:meth:`~deeplake_sdk.journal.Consistency.effective_window` turns them into the window a drain
allows before it takes a change that does not show as not applied.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deeplake_sdk.journal.drain import Consistency

__all__ = ["ObservedLag"]

#: Bounds kept: the window follows the largest of the latest ones.
KEPT = 64


class ObservedLag:
    """The latest upper bounds of the read lag of acknowledged writes.

    Args:
        keep: How many of the latest bounds are kept.
    """

    def __init__(self, keep: int = KEPT) -> None:
        self._bounds: deque[float] = deque(maxlen=keep)

    def observe(self, seconds: float) -> None:
        """Record that a change answered ``seconds`` ago showed in a read answered now."""
        self._bounds.append(max(0.0, seconds))

    def window(self, policy: Consistency) -> float:
        """The window ``policy`` allows after what was observed (from any thread)."""
        return policy.effective_window(tuple(self._bounds))

    def __len__(self) -> int:
        return len(self._bounds)
