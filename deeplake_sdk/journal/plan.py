"""From journal entries to the operations a drain sends: segments, lanes and coalescing.

Entries are applied in journal order. Operations on one file form a *lane*; lanes are
independent and run in parallel. Operations spanning paths (``rename``, ``rename_tree``,
``delete_tree``) are *barriers*: everything journaled before one is confirmed before it is sent,
and everything after waits for it.

Inside a lane, entries never sent before are coalesced: a write followed by appends becomes one
write, consecutive appends one append, anything followed by a delete just the delete. Appends a
drain already started to send (``attempts > 0``) were recorded as one *group* (the seq of its
first entry, and the offset the whole group expects, or that it creates the file): they are
merged again exactly as they were sent, and nothing else joins them, so that whoever resends
them can tell whether they already applied. A write sent with the appends it absorbed is
recorded as a group too (its entries stay fresh): a later batch holds all of it, so that the
write is coalesced again with at least those appends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deeplake_sdk.journal.store import Entry

__all__ = [
    "BARRIERS",
    "EARLIER_IDS",
    "SENT_IDS",
    "Lane",
    "Op",
    "Segment",
    "first_split_group",
    "plan",
    "sent_ids",
]

#: Operations that span several paths.
BARRIERS = frozenset({"rename", "rename_tree", "delete_tree"})
#: Operations on the memory table that address one file.
FILE_OPS = frozenset({"put", "append", "delete"})
#: Meta of a write: the row ids of the creates a drain sent for it (recorded before each).
SENT_IDS = "sent_ids"
#: Meta of an operation (not journaled): rows the operations it supersedes may have created.
EARLIER_IDS = "earlier_ids"


@dataclass
class Op:
    """One operation to send, covering one or more journal entries.

    Attributes:
        kind: ``put``, ``append``, ``delete``, ``rename``, ``rename_tree``, ``delete_tree``
            or ``event``.
        table: Target table.
        path: File path (source path of a rename).
        data: File bytes (put), appended bytes (append), event JSON text (event).
        meta: The operation's parameters (row fields, dates, ids, recorded offsets).
        seqs: Journal entries this operation completes.
        fresh: No drain has started to send it before.
    """

    kind: str
    table: str
    path: str
    data: bytes
    meta: dict[str, Any]
    seqs: list[int]
    fresh: bool

    @classmethod
    def of(cls, entry: Entry) -> Op:
        """The operation of one entry."""
        return cls(
            entry.op,
            entry.table,
            entry.path,
            entry.data,
            dict(entry.meta),
            [entry.seq],
            entry.attempts == 0,
        )

    @property
    def stamp(self) -> str:
        """The date the operation writes (it identifies the write)."""
        return str(self.meta.get("stamp", ""))

    def absorb(self, later: Op) -> bool:
        """Merge a later operation of the same file into this one, if that is exact.

        A fresh append joins a write or a fresh append; an append already sent joins only the
        group it was sent with.

        Returns:
            Whether ``later`` was merged (its entries are then completed with this one).
        """
        if later.kind != "append" or self.kind not in ("put", "append"):
            return False
        if later.fresh:
            if self.kind == "append" and not self.fresh:
                return False  # its recorded offset is for its own group's bytes only
        elif self.kind != "append" or later.meta.get("group") != self.seqs[0]:
            return False
        self.data += later.data
        self.meta["stamp"] = later.stamp
        self.seqs += later.seqs
        return True


@dataclass
class Lane:
    """The operations of one file, in order."""

    table: str
    path: str
    ops: list[Op] = field(default_factory=list)

    def add(self, op: Op) -> None:
        """Append ``op``, coalescing it with what it supersedes or extends."""
        if op.kind in ("put", "delete") and op.fresh:
            # a full write or a delete makes every earlier operation of the file irrelevant,
            # but not the rows they may still create: those are waited for (and replaced)
            superseded = [s for o in self.ops for s in o.seqs]
            earlier = {i for o in self.ops for i in _created_ids(o)}
            if earlier:
                op.meta[EARLIER_IDS] = sorted(earlier.union(op.meta.get(EARLIER_IDS, ())))
            self.ops = [op]
            op.seqs[:0] = superseded
            return
        if self.ops and self.ops[-1].absorb(op):
            return
        self.ops.append(op)


def sent_ids(op: Op) -> list[str]:
    """Row ids of the creates a drain sent for ``op``, the latest last.

    Recorded before each was sent; an append's create recorded by a version that did not
    record them had the append's id.
    """
    ids = list(op.meta.get(SENT_IDS, ()))
    if not ids and op.kind == "append" and op.meta.get("create") and not op.fresh:
        ids.append(str(op.meta["append_id"]))
    return ids


def _created_ids(op: Op) -> list[str]:
    """Row ids a drain may have created for ``op`` (before it was superseded)."""
    return [*sent_ids(op), *op.meta.get(EARLIER_IDS, ())]


@dataclass
class Segment:
    """Entries that can be applied together: file lanes and events, or one barrier."""

    lanes: dict[tuple[str, str], Lane] = field(default_factory=dict)
    events: list[Op] = field(default_factory=list)
    barrier: Op | None = None

    @property
    def seqs(self) -> list[int]:
        """Every entry of the segment."""
        out = [s for lane in self.lanes.values() for op in lane.ops for s in op.seqs]
        out += [s for op in self.events for s in op.seqs]
        if self.barrier is not None:
            out += self.barrier.seqs
        return out


def plan(entries: list[Entry]) -> list[Segment]:
    """Split entries (in journal order) into segments of lanes, events and barriers."""
    segments: list[Segment] = []
    current = Segment()
    for entry in entries:
        op = Op.of(entry)
        if op.kind in BARRIERS:
            if current.lanes or current.events:
                segments.append(current)
            segments.append(Segment(barrier=op))
            current = Segment()
        elif op.kind == "event":
            current.events.append(op)
        elif op.kind in FILE_OPS:
            key = (op.table, op.path)
            lane = current.lanes.get(key)
            if lane is None:
                lane = current.lanes[key] = Lane(op.table, op.path)
            lane.add(op)
        else:
            raise ValueError(f"journal entry {entry.seq} has an unknown operation {entry.op!r}")
    if current.lanes or current.events:
        segments.append(current)
    return segments


def first_split_group(entries: Sequence[Entry]) -> int | None:
    """Where to cut ``entries`` so that no append group an earlier drain sent is split.

    A group is known by the seq of its first entry and its number of entries, recorded on each
    of them when it was first sent (an append group, or a write and the appends it absorbed).
    Groups that began before ``entries`` are not counted.

    Returns:
        None if ``entries`` hold every group they start whole; else the length of the longest
        prefix that holds whole every group it starts (0: the first group is not whole).
    """
    if not entries:
        return None
    start = entries[0].seq
    found: dict[int, list[int]] = {}  # group -> [first index, last index, entries here, size]
    for index, entry in enumerate(entries):
        group, members = entry.meta.get("group"), entry.meta.get("members")
        if group is None or members is None or int(group) < start:
            continue
        seen = found.setdefault(int(group), [index, index, 0, int(members)])
        seen[1] = index
        seen[2] += 1
    cut = min((first for first, _, here, size in found.values() if here < size), default=None)
    if cut is None:
        return None
    moved = True
    while moved:  # a group that the cut splits goes after it too
        moved = False
        for first, last, _, _ in found.values():
            if first < cut <= last:
                cut, moved = first, True
    return cut
