"""The journal's value types and errors (re-exported by :mod:`deeplake_sdk.journal.store`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeplake_sdk.errors import DeeplakeError

__all__ = [
    "PENDING",
    "REJECTED",
    "Entry",
    "EntryInfo",
    "JournalCorruptError",
    "JournalCounters",
    "JournalError",
    "JournalInfo",
    "JournalStats",
    "NewEntry",
]

#: State of an entry waiting to be sent.
PENDING = "pending"
#: State of an entry set aside after the service refused it for good.
REJECTED = "rejected"


class JournalError(DeeplakeError):
    """The journal cannot be used: closed, unwritable, or written by a newer SDK."""


class JournalCorruptError(JournalError):
    """A journal file is unreadable or damaged; nothing in it was dropped.

    Attributes:
        path: The journal file.
    """

    def __init__(self, path: str | Path, detail: str) -> None:
        self.path = str(path)
        super().__init__(
            f"journal file {self.path} is unreadable ({detail}). It was left untouched and "
            f"nothing was dropped: move it aside (mv '{self.path}' '{self.path}.bad', with its "
            f"-wal file if there is one) to start a new journal, and inspect or recover its "
            f"entries with the sqlite3 shell ('.recover')."
        )


@dataclass(frozen=True)
class NewEntry:
    """An entry to journal; the store does not interpret its fields.

    Attributes:
        op: What to do: ``put``, ``append``, ``delete``, ``delete_tree``, ``rename``,
            ``rename_tree`` or ``event`` (any text is accepted).
        table: The target table.
        path: The file path (the session path for events).
        data: The payload: file bytes, appended bytes, event JSON text.
        meta: JSON-serialisable parameters of the operation.
    """

    op: str
    table: str
    path: str
    data: bytes = b""
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """A stored entry.

    Attributes:
        seq: Unique and strictly increasing in journal order; never reused.
        op: As journaled.
        table: As journaled.
        path: As journaled.
        data: As journaled.
        meta: As journaled, with the updates of :meth:`JournalStore.begin_attempt` merged in.
        owner: The :attr:`JournalStore.owner` of the process that journaled it.
        created: ``time.time()`` when it was journaled.
        attempts: How many times a drainer started sending it.
        state: ``"pending"`` or ``"rejected"``.
        error: Why it was rejected (``None`` while pending).
    """

    seq: int
    op: str
    table: str
    path: str
    data: bytes
    meta: dict[str, Any]
    owner: str
    created: float
    attempts: int
    state: str
    error: str | None


@dataclass(frozen=True)
class EntryInfo:
    """An entry without its payload (for listings).

    Attributes:
        seq: As in :class:`Entry`.
        op: As in :class:`Entry`.
        table: As in :class:`Entry`.
        path: As in :class:`Entry`.
        size: Length of the payload in bytes.
        meta: As in :class:`Entry`.
        owner: As in :class:`Entry`.
        created: As in :class:`Entry`.
        attempts: As in :class:`Entry`.
        state: As in :class:`Entry`.
        error: As in :class:`Entry`.
    """

    seq: int
    op: str
    table: str
    path: str
    size: int
    meta: dict[str, Any]
    owner: str
    created: float
    attempts: int
    state: str
    error: str | None


@dataclass(frozen=True)
class JournalStats:
    """What a journal holds.

    Attributes:
        pending: Entries waiting to be sent.
        pending_bytes: Total payload bytes of those entries.
        rejected: Entries set aside.
        rejected_bytes: Total payload bytes of those entries.
        oldest_created: ``created`` of the oldest pending entry (``None`` if none).
        owners: Pending entries per owner id.
    """

    pending: int
    pending_bytes: int
    rejected: int
    rejected_bytes: int
    oldest_created: float | None
    owners: dict[str, int]


@dataclass(frozen=True)
class JournalInfo:
    """One journal file found by :func:`list_journals`.

    Attributes:
        path: The journal file.
        origin: Endpoint origin it belongs to (``""`` if unreadable).
        org: Organisation id.
        workspace: Workspace id.
        pending: Pending entries.
        rejected: Rejected entries.
        bytes: Payload bytes held (pending and rejected).
        file_bytes: Size on disk (database, write-ahead log and shared-memory files).
        oldest: ``created`` of the oldest pending entry (``None`` if none).
        owners: Pending entries per owner id.
        error: Why the file could not be read (``None`` if it could).
    """

    path: Path
    origin: str
    org: str
    workspace: str
    pending: int
    rejected: int
    bytes: int
    file_bytes: int
    oldest: float | None
    owners: dict[str, int]
    error: str | None = None


@dataclass(frozen=True)
class JournalCounters:
    """Work done by this process on one journal, since it opened it (for tests and benchmarks).

    Attributes:
        calls: Operations run.
        batches: Batches the operations were grouped into.
        transactions: Write transactions committed (each one fsync when durable).
        entries: Entries appended.
        busy_waits: Times the journal was locked by another process longer than the busy
            timeout, and the batch was tried again.
    """

    calls: int
    batches: int
    transactions: int
    entries: int
    busy_waits: int
