"""Which journal entries a drain may send while other batches are still being applied.

A batch can take a while: a write whose outcome is unknown (the answer was lost) is confirmed
only once the read lag allowance has passed (:class:`~deeplake_sdk.journal.drain.Consistency`).
Entries journaled meanwhile by other sessions need not wait for it. Batches therefore run
side by side when they cannot interfere:

* no two batches in flight touch the same file or session log, and the operations of a file
  (the events of a session) start in journal order: an entry whose file is in flight, or
  whose file has an earlier entry still waiting, waits; the entries of other files after it
  go on;
* an operation spanning paths (a *barrier*: rename, tree delete) starts only when nothing is in
  flight and every entry before it has started, and nothing starts while it is in flight;
  nothing after it starts before it.

:class:`InFlight` is that bookkeeping, a plain value with no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from deeplake_sdk.journal.plan import BARRIERS
from deeplake_sdk.journal.store import Entry

__all__ = ["InFlight"]

_Lane = tuple[str, str]


class InFlight:
    """The batches a drain has started and not finished, in one drain cycle.

    Args:
        depth: At most this many batches in flight.

    Attributes:
        upto: Every pending entry up to this seq was read in this cycle: it has started, or is
            :attr:`held` (the next entries to read come after it). Entries a failed batch left
            pending have smaller seqs: :meth:`restart` once nothing is in flight to take them
            again.
        held: The entries read in this cycle that have not started (their file was busy), in
            seq order: kept, so that each pending entry is read once per cycle.
    """

    def __init__(self, depth: int = 4) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth!r}")
        self.depth = depth
        self.upto = 0
        self.held: list[Entry] = []
        self._batches: dict[int, tuple[frozenset[_Lane], bool]] = {}
        self._started: set[int] = set()
        self._tokens = 0

    def __len__(self) -> int:
        return len(self._batches)

    @property
    def full(self) -> bool:
        """Whether no batch may start now (depth reached, or a barrier in flight)."""
        return len(self._batches) >= self.depth or any(b for _, b in self._batches.values())

    def look(self, fresh: Sequence[Entry]) -> list[Entry]:
        """The entries to admit from next: the :attr:`held` ones, then ``fresh``.

        Args:
            fresh: The oldest pending entries after :attr:`upto`, in seq order.
        """
        if fresh:
            self.upto = max(self.upto, fresh[-1].seq)
            self.held = [*self.held, *fresh]
        return list(self.held)

    def admit(self, entries: Sequence[Entry]) -> list[Entry]:
        """Those of ``entries`` that may start now, in seq order.

        Args:
            entries: Pending entries in seq order, from the oldest not started (:meth:`look`).
        """
        if self.full:
            return []
        waiting: set[_Lane] = set()  # files in flight, or with an earlier entry not started
        for lanes, _ in self._batches.values():
            waiting |= lanes
        admitted: list[Entry] = []
        held = False  # an entry before this one waits
        for entry in entries:
            if entry.seq in self._started:  # in flight, or left pending by its batch
                waiting.add((entry.table, entry.path))
                held = True
                continue
            if entry.op in BARRIERS:
                if self._batches or held:
                    break
                admitted.append(entry)
                continue
            lane = (entry.table, entry.path)
            if lane in waiting:
                held = True
                continue
            admitted.append(entry)
        return admitted

    def start(self, batch: Sequence[Entry]) -> int:
        """Record a batch as started; returns its token for :meth:`finish`.

        Args:
            batch: What :meth:`admit` returned.
        """
        if not batch:
            raise ValueError("an empty batch cannot start")
        lanes = frozenset((e.table, e.path) for e in batch if e.op not in BARRIERS)
        barrier = any(e.op in BARRIERS for e in batch)
        self._tokens += 1
        self._batches[self._tokens] = (lanes, barrier)
        self._started.update(e.seq for e in batch)
        self.held = [e for e in self.held if e.seq not in self._started]
        return self._tokens

    def finish(self, token: int) -> None:
        """Record a batch as finished (whatever its outcome)."""
        del self._batches[token]

    def restart(self) -> None:
        """Take entries from the oldest pending again (nothing may be in flight)."""
        if self._batches:
            raise RuntimeError("batches are still in flight")
        self.upto = 0
        self.held = []
        self._started.clear()
