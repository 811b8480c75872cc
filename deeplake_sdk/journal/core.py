"""The journal of one workspace in this process: durable entries, their overlay, a flusher.

:func:`journal_for` returns the process's :class:`Journal` for a client's endpoint, org and
workspace (one per journal directory). Writes of every :class:`~deeplake_sdk.DeeplakeFs` and
:class:`~deeplake_sdk.SessionLog` of that workspace go through it:

1. :meth:`Journal.record` stores entries durably (fsync) and returns; the call never waits for
   the service;
2. the :class:`~deeplake_sdk.journal.flusher.Flusher` thread sends them
   (:class:`~deeplake_sdk.journal.drain.Drain`) and removes them once the service confirmed them;
3. :meth:`Journal.flush` waits until this process's entries are confirmed (or refused).

Entries left by an earlier process (killed, crashed, offline) are found when a journal is opened
and sent first; reads of the opening process see them meanwhile. At interpreter exit, and on
``SIGTERM`` when the program has not set its own handler, pending entries get a bounded last
drain; what is left stays journaled for the next process.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeplake_sdk._coop import allocate_lock, holding
from deeplake_sdk._wakeup import Beacon
from deeplake_sdk.errors import ConnectError, DeeplakeError, FlushError
from deeplake_sdk.http_errors import service_base
from deeplake_sdk.journal.drain import Catalog, Consistency, Drain, Outcome
from deeplake_sdk.journal.flusher import Flusher
from deeplake_sdk.journal.overlay import Overlay
from deeplake_sdk.journal.plan import first_split_group
from deeplake_sdk.journal.store import Entry, JournalStore, NewEntry, default_journal_root

__all__ = [
    "EXIT_TIMEOUT",
    "Journal",
    "Recorded",
    "RejectedWriteError",
    "journal_for",
]

log = logging.getLogger(__name__)

#: Seconds the exit (and SIGTERM) drain may take (env ``DEEPLAKE_EXIT_FLUSH_TIMEOUT``).
EXIT_TIMEOUT = 10.0
#: Longest wait at exit for the flusher threads to end once the last drain is done.
STOP_TIMEOUT = 5.0
#: Entries per drain batch.
BATCH_ENTRIES = 500
#: Bytes per drain batch (a larger single entry is sent alone).
BATCH_BYTES = 16 << 20


class RejectedWriteError(DeeplakeError):
    """The service refused a journaled write for good (e.g. 400, 413).

    The entry is kept aside as *rejected* in the journal (``deeplake-sdk journal ls
    --rejected``); the other writes are stored.

    Attributes:
        seq: The entry's journal sequence number.
        op: Its operation (``put``, ``append``, ``delete``, ``event``...).
        path: The file it was for.
        reason: What the service answered.
    """

    def __init__(self, seq: int, op: str, path: str, reason: str) -> None:
        self.seq, self.op, self.path, self.reason = seq, op, path, reason
        super().__init__(f"{op} of {path} was refused by the service: {reason}")


@dataclass
class _Mine:
    op: str
    path: str
    at: float  # time.monotonic() when journaled


class Journal:
    """Durable entries of one workspace, the overlay of this process, and its flusher.

    Use :func:`journal_for` rather than the constructor.

    Args:
        store: Where entries are kept.
        api: Client of the workspace (the journal drains through its own copy of it).
        consistency: Read-lag allowance of the drain's verification.
    """

    def __init__(self, store: JournalStore, api: Any, consistency: Consistency) -> None:
        self.store = store
        # a connection that cannot be made fails the drain at once: the flusher tries again
        self.api = api.connect_once()
        self.api._closed = False
        self.api.urgent = True  # every statement carries writes that callers wait for
        self.consistency = consistency
        self.overlay = Overlay()
        self._catalog = Catalog(self._columns, api.forget_table)
        self._drain = Drain(
            self.api,
            self._catalog,
            consistency,
            attempt=store.begin_attempt,
            lanes=store.lanes,
        )
        self._lock = allocate_lock()
        self._mine: dict[int, _Mine] = {}
        self._refused: dict[int, RejectedWriteError] = {}
        self._told: set[int] = set()  # entries a FlushError told the program were not stored
        self.last_error: BaseException | None = None
        #: When a drain last failed to connect to the service (monotonic; 0: it connected since).
        self.unreachable_at = 0.0
        #: Seconds from journaling to confirmation of this process's recent entries.
        self.confirm_seconds: deque[float] = deque(maxlen=10_000)
        #: Entries up to this seq were pending or settled when the store was last looked at.
        self._looked_upto = 0
        self._start_runtime()
        self._adopt(self._look(0))

    def _start_runtime(self) -> None:
        self._pid = os.getpid()
        self.beacon = Beacon()
        self.flusher = Flusher(self)

    def _adopt(self, entries: Sequence[Entry]) -> None:
        """Take over entries other processes journaled: reads see them, the flusher sends them."""
        if not entries:
            return
        log.info(
            "journal %s holds %d entries of other processes: reads see them, and they are sent",
            self.store.path or "(memory)",
            len(entries),
        )
        self.overlay.add(
            [e.seq for e in entries],
            [NewEntry(e.op, e.table, e.path, e.data, e.meta) for e in entries],
        )
        self.flusher.wake()

    def adopt_all(self) -> list[int]:
        """Take over every entry the journal holds now (left by any process).

        Returns:
            The pending entries this process did not record (another process's, earlier
            or running), which reads now see.
        """
        known = self.overlay.seqs()
        self._adopt([e for e in self._look(0) if e.seq not in known])
        with self._lock:
            return [seq for seq in self.overlay.seqs() if seq not in self._mine]

    def adopt_new(self) -> bool:
        """Take over the entries other processes journaled since the store was last looked at.

        Cheaper than :meth:`adopt_all` for a process that looks often: the store assigns seqs
        in commit order, so what was committed since has a larger seq than any seen then.

        Returns:
            Whether there were any (reads now see them).
        """
        known = self.overlay.seqs()
        new = [e for e in self._look(self._looked_upto) if e.seq not in known]
        self._adopt(new)
        return bool(new)

    def _look(self, after: int) -> list[Entry]:
        """The pending entries after seq ``after``; remembers the largest seq seen."""
        entries = self.store.pending(1 << 30, 1 << 62, after=after)
        if entries:
            self._looked_upto = max(self._looked_upto, entries[-1].seq)
        return entries

    def _check_fork(self) -> None:
        """In a forked child: new locks, thread and waiters (the parent's may be held or gone).

        The child keeps the overlay (its reads still see what the parent journaled) but waits
        only for its own entries.
        """
        if self._pid != os.getpid():
            self._lock = allocate_lock()
            self._mine, self._refused, self._told = {}, {}, set()
            self.overlay.after_fork()
            self._start_runtime()

    def __repr__(self) -> str:
        return f"<Journal {self.store.path or '(memory)'} pending={len(self.overlay)}>"

    # -- writing ------------------------------------------------------------------------------
    def record(self, entries: Sequence[NewEntry]) -> list[int]:
        """Store entries durably (one group commit) and hand them to the flusher.

        Returns:
            Their sequence numbers.
        """
        self._check_fork()
        seqs = self.store.append(entries)
        self.overlay.add(seqs, entries)
        now = time.monotonic()
        with self._lock:
            for seq, entry in zip(seqs, entries, strict=True):
                self._mine[seq] = _Mine(entry.op, entry.path, now)
        self.flusher.wake()
        return seqs

    # -- waiting ------------------------------------------------------------------------------
    @property
    def lag_window(self) -> float:
        """Seconds a change that does not show yet is waited for before it is sent again.

        :attr:`Consistency.window` until the service has shown enough changes, then what the
        read lag observed calls for (:meth:`Consistency.effective_window`).
        """
        return self._drain.window()

    def reported(self) -> bool:
        """Whether the program was told of every entry of this process still pending.

        That is, a :class:`FlushError` named them; the exit drain then does not warn of them
        again.
        """
        with self._lock:
            return self._mine.keys() <= self._told

    def pending_mine(self) -> int:
        """Entries of this process not yet confirmed or refused."""
        return len(self._mine)

    def wait_for(
        self,
        seqs: Iterable[int],
        timeout: float | None,
        *,
        native: bool = False,
        while_reachable: bool = False,
    ) -> set[int]:
        """Wait until these entries are confirmed or refused; returns those still pending.

        Args:
            seqs: The entries.
            timeout: Longest wait, in seconds (``None``: no limit).
            native: Block the thread even inside a gevent hub.
            while_reachable: Stop as soon as a drain fails to connect to the service after
                the wait began (a drain is started at once): nothing will be stored before
                the service can be reached again, and the entries stay journaled.
        """
        self._check_fork()
        wanted = set(seqs)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        while True:
            generation = self.beacon.generation
            left = self.overlay.pending_among(wanted)
            if not left:
                return set()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return left
            if while_reachable and self.unreachable_at >= started:
                return left
            self.flusher.wake()
            self.beacon.wait(
                generation, 0.5 if remaining is None else min(remaining, 0.5), native=native
            )

    def flush(
        self,
        timeout: float | None = 60.0,
        *,
        native: bool = False,
        seqs: Iterable[int] | None = None,
        while_reachable: bool = False,
    ) -> int:
        """Wait until every entry this process journaled is confirmed (or refused).

        Args:
            timeout: Longest wait, in seconds (``None``: no limit).
            native: Block the thread even inside a gevent hub (exit and signal handlers).
            seqs: Wait for these entries only (one writer's, see :class:`Recorded`), and
                report only their refusals.
            while_reachable: Stop waiting once a drain fails to connect to the service (see
                :meth:`wait_for`); what is not stored then is reported as not stored in time.

        Returns:
            How many entries were waited for.

        Raises:
            FlushError: Some entries were refused by the service (they are kept aside as
                rejected; the error names each with the reason), or were not confirmed in time
                (they stay journaled and are sent later).
        """
        wanted = None if seqs is None else set(seqs)
        with self._lock:
            if wanted is None:
                mine = dict(self._mine)
            else:
                mine = {seq: self._mine[seq] for seq in wanted if seq in self._mine}
        left = self.wait_for(mine, timeout, native=native, while_reachable=while_reachable)
        with self._lock:  # refusals since the last report, including before this call
            if wanted is None:
                refused, self._refused = self._refused, {}
            else:
                refused = {seq: self._refused.pop(seq) for seq in wanted & self._refused.keys()}
        errors: dict[str, BaseException] = {e.path: e for e in refused.values()}
        if left:
            why = self.last_error or DeeplakeError("not confirmed by the service in time")
            for seq in sorted(left):
                errors.setdefault(mine[seq].path, why)
            with self._lock:
                self._told |= left
        if errors:
            raise FlushError(errors.keys(), errors, journaled=len(left))
        return len(mine)

    def unsettled(self, seqs: Iterable[int]) -> set[int]:
        """Those of ``seqs`` not confirmed yet, or refused and not reported by a flush yet."""
        with self._lock:
            return {seq for seq in seqs if seq in self._mine or seq in self._refused}

    # -- draining (called by the flusher thread) ------------------------------------------------
    def has_pending(self) -> bool:
        """Whether the journal (any process's part of it) holds entries to send."""
        return self.store.stats().pending > 0

    def next_batch(self, after: int = 0, held: Sequence[Entry] = ()) -> list[Entry]:
        """The pending entries a drain sends next: the oldest after seq ``after``.

        An append group an earlier drain sent (:mod:`~deeplake_sdk.journal.plan`) is never cut:
        its offset is the whole group's, so a part of it alone could not tell whether it
        applied. A batch ends before a group it cannot hold whole, or, if such a group comes
        first, is read again larger until the group is whole.

        Args:
            after: Read entries with a larger seq only.
            held: Entries read before that wait for their file: none are read while these
                already fill a batch.
        """
        if len(held) >= BATCH_ENTRIES or sum(len(e.data) for e in held) >= BATCH_BYTES:
            return []
        limit, max_bytes = BATCH_ENTRIES, BATCH_BYTES
        while True:
            entries = self.store.pending(limit, max_bytes, after=after)
            cut = first_split_group(entries)
            if cut is None or (cut == 0 and limit >= BATCH_ENTRIES << 6):
                return entries  # whole, or a group larger than any batch should ever be
            if cut > 0:
                return entries[:cut]
            limit, max_bytes = limit * 2, max_bytes * 2

    def drain_batch(self, batch: Sequence[Entry]) -> bool:
        """Send one batch (from :meth:`next_batch`); returns whether all of it settled.

        Batches that touch different files may be sent at the same time
        (:class:`~deeplake_sdk.journal.inflight.InFlight` says which).
        """
        if not batch:
            return True
        # files and events done before the rest of the batch are recorded as they settle
        outcome = self._drain.apply(list(batch), lambda part: self._record_outcome(batch, part))
        self._record_outcome(batch, outcome.remainder())
        return not outcome.failed

    def _record_outcome(self, batch: Sequence[Entry], outcome: Outcome) -> None:
        """Durably complete or refuse the entries, then let their writers know."""
        self.store.complete(outcome.completed, outcome.lanes)
        for seq, reason in outcome.rejected.items():
            self.store.reject(seq, reason)
        self._settle(batch, outcome)

    def _settle(self, batch: Sequence[Entry], outcome: Outcome) -> None:
        self.overlay.retire(outcome.completed, self.consistency.window)
        self.overlay.remove(outcome.rejected)
        with self._lock:
            for entry in batch:
                if entry.seq in outcome.rejected:
                    if entry.seq in self._mine:
                        self._refused[entry.seq] = RejectedWriteError(
                            entry.seq, entry.op, entry.path, outcome.rejected[entry.seq]
                        )
                    log.error(
                        "journal entry %d (%s %s) refused by the service: %s",
                        entry.seq,
                        entry.op,
                        entry.path,
                        outcome.rejected[entry.seq],
                    )
            self._forget(outcome.completed, confirmed=True)
            self._forget(outcome.rejected, confirmed=False)
        if outcome.failed:
            self.note_error(next(iter(outcome.failed.values())))
        self.beacon.notify()

    def follow(self) -> None:
        """Learn which entries another process confirmed (or refused) meanwhile."""
        watched = self.overlay.seqs()
        if not watched:
            return
        states = self.store.states(sorted(watched))
        gone = [s for s in watched if s not in states]
        refused = [s for s, state in states.items() if state == "rejected"]
        if refused:
            reasons = {e.seq: e for e in self.store.rejected() if e.seq in set(refused)}
            with self._lock:
                for seq in refused:
                    entry = reasons.get(seq)
                    if entry is not None and seq in self._mine:
                        self._refused[seq] = RejectedWriteError(
                            seq, entry.op, entry.path, entry.error or "refused"
                        )
        if gone or refused:
            self.overlay.remove([*gone, *refused])
            with self._lock:
                self._forget(gone, confirmed=True)
                self._forget(refused, confirmed=False)
            self.beacon.notify()

    def _forget(self, seqs: Iterable[int], *, confirmed: bool) -> None:
        """Drop settled entries of this process (under the lock), timing confirmed ones."""
        now = time.monotonic()
        for seq in seqs:
            mine = self._mine.pop(seq, None)
            if mine is not None and confirmed:
                self.confirm_seconds.append(now - mine.at)

    def note_error(self, error: BaseException) -> None:
        """Remember why the last drain stopped (reported by :meth:`flush`)."""
        self.last_error = error
        self.unreachable_at = time.monotonic() if isinstance(error, ConnectError) else 0.0
        self.beacon.notify()

    def note_progress(self) -> None:
        """Forget the last error: a drain sent everything it took."""
        self.last_error = None
        self.unreachable_at = 0.0

    def columns(self, table: str, kind: str) -> frozenset[str]:
        """Columns of ``table`` (``kind``: ``memory`` or ``sessions``), ensuring it exists."""
        return self._catalog.columns(table, kind)

    def _columns(self, table: str, kind: str) -> frozenset[str]:
        return self.api.ensure_tables({table: kind})[table].columns


# ------------------------------------------------------------------------------- registry
_registry: dict[tuple[str | None, str, str, str], Journal] = {}
_registry_lock = allocate_lock()


class Recorded:
    """The entries one writer (a filesystem, a session log) journaled: what its flush waits for.

    Several writers of one workspace in one process share its :class:`Journal`; each waits only
    for its own entries (and hears only of their refusals), not for its neighbours'.

    Args:
        journal: The workspace's journal.
    """

    #: Entries remembered before the settled ones are dropped from the set.
    PRUNE_AT = 4096

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._seqs: set[int] = set()

    def record(self, entries: Sequence[NewEntry]) -> list[int]:
        """Journal ``entries`` (see :meth:`Journal.record`) and remember them."""
        seqs = self.journal.record(entries)
        self._seqs.update(seqs)
        if len(self._seqs) >= self.PRUNE_AT:
            self._seqs = self.journal.unsettled(self._seqs)
        return seqs

    def flush(
        self, timeout: float | None, *, native: bool = False, while_reachable: bool = False
    ) -> int:
        """Wait until the entries recorded here are stored (see :meth:`Journal.flush`)."""
        seqs = self._seqs
        try:
            return self.journal.flush(
                timeout, native=native, seqs=seqs, while_reachable=while_reachable
            )
        finally:
            self._seqs = self.journal.unsettled(seqs) | (self._seqs - seqs)


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = allocate_lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def journal_for(
    api: Any,
    journal: bool | str | os.PathLike[str] | None = None,
    *,
    consistency: Consistency | None = None,
) -> Journal:
    """The process's journal for a client's endpoint, org and workspace.

    Args:
        api: The client (a :class:`~deeplake_sdk.DeeplakeApi`).
        journal: ``None``/``True`` for the default directory (``$DEEPLAKE_JOURNAL_DIR`` or
            ``~/.deeplake/journal``), a
            directory, or ``False`` for a null journal (kept in memory: nothing survives the
            process, nothing is shared with other processes).
        consistency: Read-lag allowance (default :class:`Consistency`); the first caller for
            a journal decides.
    """
    creds = api.credentials
    where = service_base(creds.api_url)
    if journal is False:
        root: Path | None = None
    elif journal is None or journal is True:
        root = default_journal_root()
    else:
        root = Path(journal).expanduser()
    key = (None if root is None else str(root.resolve()), where, creds.org_id, creds.workspace_id)
    with holding(_registry_lock):  # opening a journal may wait for its committer thread
        found = _registry.get(key)
        if found is not None:
            found._check_fork()
        if found is None:
            store = (
                JournalStore.memory()
                if root is None
                else JournalStore.open(root, where, creds.org_id, creds.workspace_id)
            )
            found = _registry[key] = Journal(store, api, consistency or Consistency())
            _install_exit_handlers()
    return found


def drain(
    api: Any, journal: bool | str | os.PathLike[str] | None = None, timeout: float = 60.0
) -> int:
    """Send everything a workspace's journal holds, whichever process journaled it.

    Returns:
        How many entries are left (0: all stored, or refused and set aside).

    Args:
        api: A client of the workspace.
        journal: The journal directory (see :func:`journal_for`).
        timeout: Longest wait, in seconds.
    """
    target = journal_for(api, journal)
    target.adopt_all()
    target.flusher.start(force=True)  # even where DEEPLAKE_JOURNAL_SEND=0: asked for
    return len(target.wait_for(target.overlay.seqs(), timeout))


def flush_all(timeout: float, *, native: bool = True, while_reachable: bool = True) -> list[str]:
    """Last drain of every journal of the process; returns what stays journaled (messages).

    Args:
        timeout: Longest wait for each journal, in seconds.
        native: Block the thread even inside a gevent hub (exit and signal handlers).
        while_reachable: The drain of a journal on disk ends once the service cannot be
            connected to (what it holds is sent by the next process); a journal in memory
            always waits ``timeout``.

    What stays is logged as a warning, or at INFO level for a journal on disk whose pending
    entries the program was already told of (a :class:`FlushError` raised by a flush).
    """
    left = []
    for journal in list(_registry.values()):
        if journal._pid != os.getpid() or not journal.pending_mine():
            continue
        on_disk = journal.store.path is not None
        told = on_disk and journal.reported()
        try:
            journal.flush(timeout, native=native, while_reachable=while_reachable and on_disk)
        except FlushError as exc:
            where = journal.store.path or "memory (lost at exit: a null journal)"
            left.append(f"{exc}; kept in {where}")
            report = log.info if told else log.warning  # the program was told: no repeat
            report("%s; they stay in journal %s", exc, where)
    return left


def stop_all(timeout: float) -> None:
    """Stop the flusher threads of this process's journals (waiting at most ``timeout``)."""
    deadline = time.monotonic() + timeout
    for journal in list(_registry.values()):
        if journal._pid == os.getpid():
            journal.flusher.stop(max(0.0, deadline - time.monotonic()))


def close_all(timeout: float = STOP_TIMEOUT) -> None:
    """Stop and forget every journal of this process (what they hold stays on disk).

    For programs and tests that remove a journal directory while the process goes on: a
    later use opens the journal again.
    """
    stop_all(timeout)
    with holding(_registry_lock):
        journals = list(_registry.values())
        _registry.clear()
    for journal in journals:
        if journal._pid == os.getpid():
            journal.store.close()


def _at_exit() -> None:
    flush_all(_exit_timeout())
    stop_all(STOP_TIMEOUT)


def _exit_timeout() -> float:
    try:
        return float(os.environ.get("DEEPLAKE_EXIT_FLUSH_TIMEOUT", EXIT_TIMEOUT))
    except ValueError:
        return EXIT_TIMEOUT


_handlers_installed = False


def _install_exit_handlers() -> None:
    """Drain at exit, and on SIGTERM when the program left SIGTERM to its default."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_at_exit)
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter thread, or no signals here
        log.debug("cannot install a SIGTERM handler", exc_info=True)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Drain what can be drained in time, then die of SIGTERM as the program would have."""
    del frame
    flush_all(_exit_timeout())
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
