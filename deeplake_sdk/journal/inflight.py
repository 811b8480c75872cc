"""Which journal entries a drain may send while other batches are still being applied.

A batch can take a while: a write whose outcome is unknown (the answer was lost) is confirmed
only once the read lag allowance has passed (:class:`~deeplake_sdk.journal.drain.Consistency`).
Entries journaled meanwhile by other sessions need not wait for it. Batches therefore run
side by side when they cannot interfere:

* no two batches in flight touch the same file or session log (the operations of a file, and
  the events of a session, stay in journal order);
* an operation spanning paths (a *barrier*: rename, tree delete) starts only when nothing is in
  flight, and nothing starts while it is;
* entries start in journal order: the next batch is the longest run of the entries after the
  last one started that conflicts with nothing in flight.

:class:`InFlight` is that bookkeeping, a plain value with no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from deeplake_sdk.journal.plan import BARRIERS
from deeplake_sdk.journal.store import Entry

__all__ = ["InFlight"]

_Lane = tuple[str, str]


class InFlight:
    """The batches a drain has started and not finished.

    Args:
        depth: At most this many batches in flight.

    Attributes:
        upto: Seq of the last entry started (the next batch is taken after it). Entries a
            failed batch left pending have smaller seqs: :meth:`restart` once nothing is in
            flight to take them again.
    """

    def __init__(self, depth: int = 4) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth!r}")
        self.depth = depth
        self.upto = 0
        self._batches: dict[int, tuple[frozenset[_Lane], bool]] = {}
        self._tokens = 0

    def __len__(self) -> int:
        return len(self._batches)

    @property
    def full(self) -> bool:
        """Whether no batch may start now (depth reached, or a barrier in flight)."""
        return len(self._batches) >= self.depth or any(b for _, b in self._batches.values())

    def admit(self, entries: Sequence[Entry]) -> list[Entry]:
        """The longest prefix of ``entries`` (in seq order, after :attr:`upto`) that may start."""
        if self.full:
            return []
        busy: set[_Lane] = set()
        for lanes, _ in self._batches.values():
            busy |= lanes
        admitted: list[Entry] = []
        for entry in entries:
            if entry.op in BARRIERS and self._batches:
                break
            if (entry.table, entry.path) in busy:
                break
            admitted.append(entry)
        return admitted

    def start(self, batch: Sequence[Entry]) -> int:
        """Record a batch as started; returns its token for :meth:`finish`."""
        if not batch:
            raise ValueError("an empty batch cannot start")
        lanes = frozenset((e.table, e.path) for e in batch if e.op not in BARRIERS)
        barrier = any(e.op in BARRIERS for e in batch)
        self._tokens += 1
        self._batches[self._tokens] = (lanes, barrier)
        self.upto = max(self.upto, batch[-1].seq)
        return self._tokens

    def finish(self, token: int) -> None:
        """Record a batch as finished (whatever its outcome)."""
        del self._batches[token]

    def restart(self) -> None:
        """Take entries from the oldest pending again (nothing may be in flight)."""
        if self._batches:
            raise RuntimeError("batches are still in flight")
        self.upto = 0
