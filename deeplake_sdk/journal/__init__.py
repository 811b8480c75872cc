"""The local write-ahead journal: every write is durable before the call returns.

:class:`JournalStore` keeps entries on local disk until the service confirmed them
(:mod:`deeplake_sdk.journal.store`); :class:`Journal` adds the flusher that sends them and the
overlay through which the writing process reads them (:mod:`deeplake_sdk.journal.core`).
"""

from deeplake_sdk.journal.core import Journal, RejectedWriteError, drain, journal_for
from deeplake_sdk.journal.drain import Consistency
from deeplake_sdk.journal.limits import DEFAULT_LIMITS, Limits
from deeplake_sdk.journal.store import (
    MAX_ENTRY_BYTES,
    PENDING,
    REJECTED,
    Entry,
    EntryInfo,
    JournalCorruptError,
    JournalCounters,
    JournalError,
    JournalInfo,
    JournalStats,
    JournalStore,
    NewEntry,
    default_journal_root,
    journal_path,
    list_entries,
    list_journals,
    normalize_origin,
)

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_ENTRY_BYTES",
    "PENDING",
    "REJECTED",
    "Consistency",
    "Entry",
    "EntryInfo",
    "Journal",
    "JournalCorruptError",
    "JournalCounters",
    "JournalError",
    "JournalInfo",
    "JournalStats",
    "JournalStore",
    "Limits",
    "NewEntry",
    "RejectedWriteError",
    "default_journal_root",
    "drain",
    "journal_for",
    "journal_path",
    "list_entries",
    "list_journals",
    "normalize_origin",
]
