"""Apply journal entries to the service exactly once, and confirm them.

A drain takes a batch of entries (journal order), plans it (:mod:`deeplake_sdk.journal.plan`)
and applies each segment in *rounds*: in round ``r`` the ``r``-th operation of every file lane is
sent (new files together in multi-row inserts, the rest in parallel), then every lane is
*verified* by reading its rows back (one query per chunk of paths). An entry is completed only
once its effect has been seen in the table; a file or an event is settled as soon as its last
entry is (:attr:`Outcome.settled`), while the rest of the batch goes on.

Why verify: the service answers some writes and then loses them (two rapid UPDATEs of a row can
coalesce), answers others with an error although they ran (commit-then-fail), and shows a write
to other requests only after a while (read lag). So every check allows a window (at most
:attr:`Consistency.window`, less once the service has shown that its writes show sooner): an
effect not yet visible is waited for, polling, until the window since the write was answered
has passed (counted up to when the read was sent); only then is it taken as not applied and
resent. A resend never repeats a write whose effect is already there:

* a full write (``put``) is either an ``INSERT .. WHERE NOT EXISTS`` of its path or an UPDATE of
  every row of the path (idempotent); duplicates left by concurrent creators converge to the
  oldest row (``creation_date``, then ``id``), which receives the newest content;
* a file created again because its first create did not show within the window gets a row id
  of its own: if the first create shows after all (the lag grew past the window), its lag is
  learnt and the lane waits until every later copy could have shown too (``lag_factor`` times
  what the first took, after the latest create), to delete the surplus copies (the one readers
  pick stays, with whatever others appended to any copy); if only the latest copy of a write
  shows, the earlier ones were lost;
* the row id of each create is recorded in the journal before it is sent: a later drain of a
  write, or of a write or delete that supersedes it, first waits (at most the window) for those
  rows to show, instead of creating the file again while read lag hides them or deleting it
  before its create shows; a later drain of an append knows every copy it may find as its own;
* an ``append`` is a compare-and-swap on the row's size and date; the offset it expects is
  recorded in the journal *before* it is sent, so any later drain can check whether its bytes
  already sit there (:func:`~deeplake_sdk.statements.journal.append_landed`) before sending it
  again;
* writes (but those given a date of their own), deletes and renames only touch rows not newer
  than themselves (:func:`~deeplake_sdk.statements.journal.not_newer`): a copy the service runs
  late (sent by a process killed since, or a resend's slow first copy) never undoes a newer
  change; a write that finds a newer one there is done (the newer one is the file);
* session events are inserted only when no row has their id, and resent only once the window
  has shown they are absent; a copy sent again is marked, so that surplus copies can be told
  apart and deleted (:mod:`deeplake_sdk.journal.events`).

Errors: a statement the service rejects for good (400, 413, other 4xx) rejects its entries
(the others go on); anything retryable leaves the lane's entries pending for the next drain.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deeplake_sdk._coop import Failure, cooperative_sleep, run_parallel
from deeplake_sdk.errors import AmbiguousWriteError, ApiError, DeeplakeError, QueryError
from deeplake_sdk.http_errors import is_missing_schema, is_refusal
from deeplake_sdk.journal.events import EventCopies
from deeplake_sdk.journal.lag import ObservedLag
from deeplake_sdk.journal.plan import EARLIER_IDS, SENT_IDS, Lane, Op, Segment, plan, sent_ids
from deeplake_sdk.journal.store import Entry
from deeplake_sdk.sql import CHUNK
from deeplake_sdk.statements import journal as sj
from deeplake_sdk.statements.files import memory_row_bytes
from deeplake_sdk.statements.layout import MEMORY, SESSIONS, LayoutKind, TableLayout

__all__ = ["Catalog", "Consistency", "Drain", "Outcome", "Row"]

log = logging.getLogger(__name__)

#: Resends of one operation within one drain before its entries are left for the next drain.
MAX_REPAIRS = 6
#: Compare-and-swap attempts of one append racing other writers within one round.
MAX_CAS = 8
#: Bytes of file data per multi-row insert (besides :data:`CHUNK` rows).
INSERT_BYTES = 4 << 20


@dataclass(frozen=True)
class Consistency:
    """How long the service may take to show an acknowledged write to other requests.

    A drain reads back every file change it sends; a change that does not show yet is waited
    for, polling, and taken as not applied (and sent again) only once the *window* since its
    answer has passed. The window is :attr:`window` until the service has shown
    :attr:`min_samples` changes; from then on (``adaptive``) it is :attr:`lag_factor` times
    the longest time the latest changes took to show (time from a change's answer to the
    answer of the read that showed it, an upper bound of its lag), at least
    :attr:`min_window` and at most :attr:`window`. A service whose writes show at once is
    then no longer waited on for 2 s after each lost answer; one that lags keeps the whole
    window.

    Attributes:
        window: The longest window, in seconds, and the window until changes were observed.
            It costs nothing when writes show at once.
        first_poll: First polling interval, in seconds (doubles up to ``max_poll``).
        max_poll: Longest polling interval, in seconds.
        adaptive: Whether the window follows the lag observed (False: always ``window``).
        min_window: Shortest window, in seconds.
        lag_factor: Margin over the longest lag bound observed.
        min_samples: Changes to observe before the window follows them.
    """

    window: float = 2.0
    first_poll: float = 0.05
    max_poll: float = 0.4
    adaptive: bool = True
    min_window: float = 0.25
    lag_factor: float = 4.0
    min_samples: int = 16

    def __post_init__(self) -> None:
        if self.window < 0 or self.first_poll <= 0 or self.max_poll < self.first_poll:
            raise ValueError("window >= 0 and 0 < first_poll <= max_poll are required")
        if self.min_window < 0 or self.lag_factor < 1 or self.min_samples < 1:
            raise ValueError("min_window >= 0, lag_factor >= 1 and min_samples >= 1 are required")

    def effective_window(self, bounds: Collection[float]) -> float:
        """The window to allow, given upper bounds of the lag of the latest changes.

        Args:
            bounds: Seconds each of the latest acknowledged changes took at most to show.

        Returns:
            :attr:`window` while fewer than :attr:`min_samples` bounds are known (or when not
            ``adaptive``), else ``lag_factor x max(bounds)`` kept within
            [:attr:`min_window`, :attr:`window`].
        """
        if not self.adaptive or len(bounds) < self.min_samples:
            return self.window
        return min(self.window, max(self.min_window, self.lag_factor * max(bounds)))

    def polls(self) -> Iterator[float]:
        """The sleeps of one wait for changes to show.

        :attr:`first_poll`, doubling up to :attr:`max_poll`, then :attr:`max_poll` for ever.
        """
        delay = self.first_poll
        while True:
            yield delay
            delay = min(delay * 2, self.max_poll)


class Catalog:
    """The columns of the tables a drain writes to (the tables are ensured on first use).

    Args:
        columns: ``(table, kind) -> columns`` where kind is ``"memory"`` or ``"sessions"``;
            ensures the table exists.
        forget: Called with a table whose columns are forgotten (so that its source probes
            it again).
    """

    def __init__(
        self,
        columns: Callable[[str, str], Collection[str]],
        forget: Callable[[str], None] = lambda table: None,
    ) -> None:
        self._load = columns
        self._forget = forget
        self._known: dict[str, frozenset[str]] = {}

    def columns(self, table: str, kind: str) -> frozenset[str]:
        """Columns of ``table`` (ensured once)."""
        cols = self._known.get(table)
        if cols is None:
            cols = self._known[table] = frozenset(self._load(table, kind))
        return cols

    def forget(self, table: str) -> None:
        """Drop what is known about ``table`` (it was dropped or changed)."""
        self._known.pop(table, None)
        self._forget(table)


@dataclass(frozen=True)
class Row:
    """A row of a file as a read shows it."""

    id: str
    size: int
    date: str
    created: str


@dataclass
class Outcome:
    """What a drain did with its batch.

    Attributes:
        completed: Entries whose effect is confirmed.
        rejected: Entries the service refused for good, with the reason.
        failed: Entries left pending, with the retryable error that stopped them.
        lanes: What is now known of each touched file (row id, size, date), for later drains.
        settled: Told of the files and events settled while the rest of the batch goes on
            (an :class:`Outcome` of their entries, also counted in this one), so that their
            writers need not wait for the batch's slowest file.
        told: The entries :attr:`settled` was told of (see :meth:`remainder`).
    """

    completed: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    failed: dict[int, BaseException] = field(default_factory=dict)
    lanes: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    settled: Callable[[Outcome], None] | None = None
    told: set[int] = field(default_factory=set)

    def settle(self, part: Outcome) -> None:
        """Count ``part`` in this outcome and tell :attr:`settled` of it now."""
        self.completed += part.completed
        self.rejected.update(part.rejected)
        self.lanes.update(part.lanes)
        if self.settled is not None and (part.completed or part.rejected):
            self.settled(part)
            self.told.update(part.completed, part.rejected)

    def remainder(self) -> Outcome:
        """What :attr:`settled` was not told of (failures and every file's hint included)."""
        return Outcome(
            completed=[s for s in self.completed if s not in self.told],
            rejected={s: r for s, r in self.rejected.items() if s not in self.told},
            failed=self.failed,
            lanes=self.lanes,
        )


# ------------------------------------------------------------------------------------------ lanes
class _Run:
    """A lane being applied: its current operation and what is known of its row."""

    def __init__(self, lane: Lane, hint: Mapping[str, Any] | None) -> None:
        self.lane = lane
        self.index = 0
        self.row: Row | None = None  # the canonical row, when known to exist
        self.known = False  # whether ``row`` reflects a read or one of our answered writes
        if hint and hint.get("id") is not None:
            self.row = Row(str(hint["id"]), int(hint["size"]), str(hint["date"]), "")
            self.known = True
        self.acked = 0.0  # wall time of the last answered write of this lane
        self.timed = False  # whether ``acked`` is the answer of a write of this drain
        self.repairs = 0
        self.inserted: str | None = None  # row id of an insert that may have applied
        self.recreated = 0.0  # answer time of an earlier create of this op that may still show
        self.created = 0.0  # answer time of the latest create of this op
        self.seen = 0.0  # when a copy of a create sent more than once first showed
        self.dropping: frozenset[str] = frozenset()  # ids of rows deleted as duplicates
        self.awaiting: frozenset[str] = frozenset()  # rows an earlier drain may still create
        self.looked = -1  # the last operation whose earlier copies were looked for
        self.skipped = False  # an insert of this round surely did not apply (the path existed)
        self.error: BaseException | None = None
        self.reported = False  # its outcome was settled (its last operation applied)
        self.done: list[int] = []
        self.rejected: dict[int, str] = {}

    @property
    def op(self) -> Op | None:
        if self.error is not None or self.index >= len(self.lane.ops):
            return None
        return self.lane.ops[self.index]

    def answered(self, when: float | None = None) -> None:
        """This drain's write of the current operation was answered (or lost) at ``when``."""
        self.acked = time.time() if when is None else when
        self.timed = True

    def assumed_sent(self) -> None:
        """An earlier drain sent the current operation: its lag is not this drain's to time."""
        self.acked = time.time()
        self.timed = False

    def await_earlier_copies(self) -> bool:
        """Whether the current operation waits for rows an earlier drain sent.

        Decided once per operation, before this drain sends it (see :func:`_earlier_copies`).
        """
        op = self.op
        if op is not None and self.looked < self.index:
            self.looked = self.index
            self.awaiting = _earlier_copies(op)
            if self.awaiting:
                self.assumed_sent()
        return bool(self.awaiting)

    def recreating(self) -> None:
        """The current create is sent again: the earlier one may still show, as a twin."""
        if self.acked and not self.recreated:
            self.recreated = self.acked

    def settled(self) -> None:
        """Every create of the current operation that could show has shown (and was merged)."""
        self.recreated = self.created = self.seen = 0.0

    def _next(self) -> None:
        self.index += 1
        self.repairs = 0
        self.inserted, self.skipped, self.timed = None, False, False
        self.dropping = frozenset()
        self.settled()

    def advance(self) -> None:
        op = self.op
        assert op is not None
        self.done += op.seqs
        self._next()

    def reject(self, reason: str) -> None:
        op = self.op
        assert op is not None
        for seq in op.seqs:
            self.rejected[seq] = reason
        self._next()

    def hint(self) -> dict[str, Any] | None:
        if self.row is None:
            return None
        return {"id": self.row.id, "size": self.row.size, "date": self.row.date}


def _superseded(op: Op, rows: Sequence[Row]) -> bool:
    """Whether a write later than ``op`` holds its file.

    That is one row (or copies of one row, which that write's drain merges) newer than ``op``
    (:func:`~deeplake_sdk.statements.journal.supersedes`).
    """
    top = _canonical(rows)
    return (
        top is not None and sj.supersedes(top.date, op.stamp) and all(r.id == top.id for r in rows)
    )


def _canonical(rows: Sequence[Row]) -> Row | None:
    """The row every reader picks for a path: oldest ``creation_date``, then ``id``."""
    return min(rows, key=lambda r: (r.created, r.id)) if rows else None


# ------------------------------------------------------------------------------------------ drain
class Drain:
    """Applies batches of journal entries through one client.

    Args:
        api: The client (its retry policy applies to every statement).
        catalog: Table columns.
        consistency: The read-lag allowance.
        author: ``author`` of rows the drain creates when the entry does not say.
        attempt: ``(seqs, meta_updates)`` -> None; durably records that the entries are being
            sent, with what a later drain needs to check them (e.g. an append's offset).
        lanes: ``keys -> {key: hint}``: what earlier drains learnt about files.
        parallel: Statements in flight at once (default: the endpoint's pool size).
    """

    def __init__(
        self,
        api: Any,
        catalog: Catalog,
        consistency: Consistency,
        *,
        attempt: Callable[[Sequence[int], Mapping[int, Mapping[str, Any]]], None],
        lanes: Callable[[Sequence[tuple[str, str]]], Mapping[tuple[str, str], Mapping[str, Any]]],
        parallel: int | None = None,
    ) -> None:
        self.api = api
        self.catalog = catalog
        self.consistency = consistency
        self.lag = ObservedLag()
        self._attempt = attempt
        self._lanes = lanes
        self._given_parallel = parallel

    @property
    def parallel(self) -> int:
        """Requests sent at once: the given number, else the endpoint's pool size."""
        return self._given_parallel or getattr(self.api.endpoint, "pool_size", 8)

    # -- entry point --------------------------------------------------------------------------
    def apply(
        self, entries: list[Entry], settled: Callable[[Outcome], None] | None = None
    ) -> Outcome:
        """Apply a batch; stops at the first segment that could not be fully applied.

        Args:
            entries: The batch, in journal order.
            settled: Told of entries settled before the batch ends (see :class:`Outcome`).
        """
        outcome = Outcome(settled=settled)
        for segment in plan(entries):
            ok = self._segment(segment, outcome)
            if not ok:
                stopped = set(segment.seqs) - set(outcome.completed) - set(outcome.rejected)
                for seq in stopped:
                    outcome.failed.setdefault(seq, DeeplakeError("not applied yet"))
                break
        return outcome

    def _segment(self, segment: Segment, outcome: Outcome) -> bool:
        if segment.barrier is not None:
            return self._barrier(segment.barrier, outcome)
        results = self._parallel(
            [lambda: self._events(segment.events, outcome), lambda: self._files(segment, outcome)]
        )
        return all(r is True for r in results)

    def _parallel(self, jobs: list[Callable[[], Any]]) -> list[Any]:
        """Run jobs concurrently; an error that is not the service's is a bug: raise it."""
        results = run_parallel(lambda job: job(), jobs, self.parallel)
        for result in results:
            if isinstance(result, Failure) and not isinstance(result.error, DeeplakeError):
                raise result.error
        return results

    def window(self) -> float:
        """Seconds a change that does not show is waited for (see :class:`Consistency`)."""
        return self.lag.window(self.consistency)

    def _refusal(self, error: BaseException, table: str) -> str | None:
        """Why the service refuses a write for good, or None when a later try may succeed.

        A missing table or column is not a refusal: what is known of the table is dropped, so
        that the next drain ensures it again.
        """
        if not is_refusal(error):
            if is_missing_schema(error):
                self.catalog.forget(table)
            return None
        assert isinstance(error, ApiError)
        return f"HTTP {error.status}: {error.message}"

    def _refuse(self, run: _Run, error: QueryError) -> None:
        reason = self._refusal(error, run.lane.table)
        if reason is None:
            run.error = error
        else:
            run.reject(reason)

    # -- file lanes ---------------------------------------------------------------------------
    def _files(self, segment: Segment, outcome: Outcome) -> bool:
        if not segment.lanes:
            return True
        hints = self._lanes(list(segment.lanes))
        runs = [_Run(lane, hints.get(key)) for key, lane in segment.lanes.items()]
        while True:
            active = [r for r in runs if r.op is not None]
            if not active:
                break
            self._send_round(active)
            verified = [r for r in active if r.op is not None and r.error is None]
            self._verify_round(verified, outcome)
            # a lane whose operation failed (retryable) stops; the others go on
            for run in active:
                if run.error is not None:
                    run.index = len(run.lane.ops)
            _settle_finished(outcome, active)
        ok = True
        outcome.settle(_settled([r for r in runs if not r.reported]))  # the lanes that failed
        for run in runs:
            if run.error is not None:
                ok = False
                pending = [s for op in run.lane.ops for s in op.seqs]
                for seq in pending:
                    if seq not in run.done and seq not in run.rejected:
                        outcome.failed[seq] = run.error
        return ok

    def _columns(self, table: str) -> frozenset[str]:
        return self.catalog.columns(table, "memory")

    def _layout(self, table: str, kind: LayoutKind = MEMORY) -> TableLayout:
        return TableLayout(table, kind, self.catalog.columns(table, kind))

    def _send_round(self, runs: list[_Run]) -> None:
        """Send the current operation of every lane: probes, then creates, then the rest.

        An append that an earlier drain already sent with a recorded offset is not sent again
        here: the verification checks whether its bytes are there first.
        """
        runs = [r for r in runs if not r.await_earlier_copies()]
        resumed = [r for r in runs if _resumes(r.op)]
        for run in resumed:
            run.assumed_sent()
            if run.op.meta.get("create"):
                run.op.meta[SENT_IDS] = sent_ids(run.op)  # a copy sent again is named apart
                run.inserted = run.op.meta[SENT_IDS][-1]
        runs = [r for r in runs if r not in resumed]
        need_probe = [r for r in runs if r.op.kind == "append" and not r.known]
        if need_probe:
            self._probe(need_probe)
        runs = [r for r in runs if r.error is None]
        creates = [r for r in runs if self._creates(r)]
        updates = [r for r in runs if r not in creates]
        self._record(runs)
        jobs: list[Callable[[], Any]] = []
        for table, group in _by_table(creates).items():
            for chunk in _insert_chunks(group):
                jobs.append(lambda t=table, c=chunk: self._insert(t, c))
        for run in updates:
            jobs.append(lambda r=run: self._update(r))
        self._parallel(jobs)

    def _creates(self, run: _Run) -> bool:
        op = run.op
        assert op is not None
        return op.kind in ("put", "append") and run.row is None

    def _record(self, runs: list[_Run]) -> None:
        """Durably record the round's append groups and coalesced writes, in one transaction.

        Every entry of a (coalesced) append gets the group's first seq and the offset the group
        expects: a later drain merges the group again and checks whether its bytes are there
        before resending. A write's entries stay fresh (an update of every row of the path is
        exact when sent again): only the group of a write that absorbed appends is recorded
        (:func:`_write_meta`). Creates, of writes and appends, are recorded with their row ids
        as they are sent (:meth:`_record_copies`). So rounds of single writes and deletes cost
        the journal no transaction.
        """
        meta: dict[int, dict[str, Any]] = {}
        written: dict[int, dict[str, Any]] = {}
        for run in runs:
            op = run.op
            if op is None or run.error is not None:
                continue
            op.fresh = False
            if self._creates(run):
                continue  # recorded with its row id as it is sent
            if op.kind == "append":
                meta.update(_group_meta(op, run.row))
            elif op.kind == "put":
                written.update(_write_meta(op))
        if meta or written:
            self._attempt(list(meta), {**written, **meta})

    def _lane_rows(self, runs: list[_Run]) -> dict[tuple[str, str], list[Row]] | None:
        """The rows of the runs' files, or None after giving each run the read's error."""
        try:
            return self._rows([(r.lane.table, r.lane.path) for r in runs])
        except DeeplakeError as exc:
            for run in runs:
                run.error = exc
            return None

    def _probe(self, runs: list[_Run]) -> None:
        """Read the rows of files whose state is unknown (one query per chunk)."""
        found = self._lane_rows(runs)
        if found is None:
            return
        for run in runs:
            run.row = _canonical(found.get((run.lane.table, run.lane.path), []))
            run.known = True
            op = run.op
            if run.row is None and op is not None and op.meta.get("target"):
                # recorded as sent to a row that is not visible: wait before recreating it
                run.assumed_sent()

    def _insert(self, table: str, runs: list[_Run]) -> None:
        """Create files in one multi-row insert (isolating rows the service refuses)."""
        cols = self._columns(table)
        try:
            rows = [self._new_row(r, cols) for r in runs]
        except ValueError as exc:
            for run in runs:
                run.reject(str(exc))
            return
        self._record_copies([r.op for r in runs], rows)
        sql, params = sj.insert_absent(self._layout(table), rows)
        try:
            result = self.api.execute(sql, params, idempotent=False)
        except QueryError as exc:
            reason = self._refusal(exc, table)
            if reason is None:
                for run in runs:
                    run.error = exc
            elif len(runs) > 1:  # find the row the service refuses; store the others
                for run in runs:
                    self._insert(table, [run])
            else:
                runs[0].reject(reason)
            return
        except AmbiguousWriteError:
            result = None  # maybe applied: the verification decides
        except DeeplakeError as exc:
            for run in runs:
                run.error = exc
            return
        now = time.time()
        count = None if result is None else result.row_count
        for run, row in zip(runs, rows, strict=True):
            run.answered(now)
            run.created = now
            run.row = None
            # all rows inserted, or none (every path existed); else the reads tell
            run.skipped = count == 0
            run.inserted = None if run.skipped else row["id"]

    def _new_row(self, run: _Run, cols: Collection[str]) -> dict[str, Any]:
        op = run.op
        assert op is not None
        row_id = op.meta.get("row_id") or op.meta["append_id"]
        sent = len(op.meta.get(SENT_IDS, ()))
        if sent:  # told apart from the earlier copies, should they show
            row_id = f"{row_id}-{sent}"
        text = _text(op.data)
        if text is None and "content" not in cols:
            raise ValueError(f"{op.path}: binary content needs a table with a content column")
        fields = dict(op.meta.get("row") or {})
        fields.update(
            id=row_id,
            path=op.path,
            filename=posixpath.basename(op.path),
            content=op.data,
            summary=text or "",
            size_bytes=len(op.data),
            last_update_date=op.stamp,
        )
        fields.setdefault("creation_date", op.stamp)
        for col in sj.MEMORY_ROW_COLUMNS:
            fields.setdefault(col, "")
        return fields

    def _record_copies(self, ops: list[Op], rows: list[dict[str, Any]]) -> None:
        """Durably record the row ids of the creates about to be sent (one transaction).

        A create's answer does not tell when it shows: until then another drain (this process
        after a failure, or the next one after a kill) must neither create the file again
        under the same id nor conclude while it may still show (see :func:`_earlier_copies`),
        and an append's must know each copy it may find as its own (:func:`.plan.sent_ids`).
        An append's entries are recorded as its group (they are no longer fresh); a write's
        stay fresh.
        """
        meta: dict[int, dict[str, Any]] = {}
        appends: list[int] = []
        for op, row in zip(ops, rows, strict=True):
            op.meta[SENT_IDS] = [*op.meta.get(SENT_IDS, ()), row["id"]]
            if op.kind == "put":
                meta.update(_write_meta(op))
            else:
                meta.update(_group_meta(op, None))
                appends += op.seqs
        if meta:
            self._attempt(appends, meta)

    def _update(self, run: _Run) -> None:
        op = run.op
        assert op is not None
        try:
            if op.kind == "put":
                self._replace(run)
            elif op.kind == "append":
                self._cas(run)
            else:
                self._delete(run)
        except QueryError as exc:
            self._refuse(run, exc)
        except AmbiguousWriteError:
            run.answered()
        except DeeplakeError as exc:
            run.error = exc

    def _replace(self, run: _Run) -> None:
        op = run.op
        assert op is not None
        cols = self._columns(op.table)
        row = self._new_row(run, cols)
        sql, params = sj.replace(self._layout(op.table), row, guarded=not op.meta.get("dated"))
        result = self.api.execute(sql, params, idempotent=True)
        run.answered()
        if result.row_count == 0:
            # nothing visible to update (removed, not yet visible, or newer): create it if absent
            run.row, run.known = None, True
            self._insert(op.table, [run])

    def _cas(self, run: _Run) -> None:
        """Append at the known end of the row; on a lost race, look again and retry."""
        op = run.op
        assert op is not None
        layout = self._layout(op.table)
        text = _text(op.data)
        for _ in range(MAX_CAS):
            row = run.row
            assert row is not None
            sql, params = sj.append_cas(
                layout,
                op.path,
                row.id or None,
                op.data,
                text=text,
                expected_size=row.size,
                expected_date=row.date,
                date=op.stamp,
            )
            result = self.api.execute(sql, params, idempotent=True)
            run.answered()
            if result.row_count != 0:  # applied (or unknown: the verification reads)
                return
            found = _canonical(self._rows([(op.table, op.path)]).get((op.table, op.path), []))
            if found is None or (
                found.id == row.id and found.size == row.size and found.date <= row.date
            ):
                return  # not visible yet, or gone: the verification waits and decides
            if self._landed(op, found.id, row.size):
                return
            run.row = found
            if op.seqs:
                meta = _group_meta(op, found)
                self._attempt(list(meta), meta)
            else:
                op.meta["expected"], op.meta["target"] = found.size, found.id
        raise DeeplakeError(f"append to {op.path} kept losing races with other writers")

    def _landed(self, op: Op, row_id: str | None, offset: int) -> bool:
        sql, params = sj.append_landed(
            self._layout(op.table), op.path, row_id or None, op.data, offset=offset
        )
        return bool(self.api.query(sql, params))

    def _delete(self, run: _Run) -> None:
        op = run.op
        assert op is not None
        sql, params = sj.delete_path(op.table, op.path, not_after=op.stamp)
        self.api.execute(sql, params, idempotent=True)
        run.answered()

    # -- verification -------------------------------------------------------------------------
    def _verify_round(self, runs: list[_Run], outcome: Outcome) -> None:
        """Read every lane back until its operation shows, waiting out the read lag.

        A lane whose last operation shows is settled at once (``outcome``), not when the
        round's slowest lane is done.
        """
        polls = self.consistency.polls()
        pending = list(runs)
        while pending:
            asked = time.time()
            found = self._lane_rows(pending)
            if found is None:
                return
            repairs: list[tuple[_Run, list[Row], Op]] = []
            waiting: list[_Run] = []
            answered, window = time.time(), self.window()
            for run in pending:
                rows = found.get((run.lane.table, run.lane.path), [])
                if run.awaiting and self._awaits(run, rows, asked):
                    waiting.append(run)
                    continue
                verdict = self._check(run, rows)
                if verdict != "wait" and self._late_copy(run, rows, asked, answered):
                    waiting.append(run)
                elif verdict == "ok":
                    if run.timed:
                        self.lag.observe(answered - run.acked)
                    run.advance()
                elif verdict == "wait" and asked < run.acked + window:
                    waiting.append(run)
                else:
                    run.repairs += 1
                    if run.repairs > MAX_REPAIRS:
                        run.error = DeeplakeError(
                            f"{run.lane.path}: the write did not show after {MAX_REPAIRS} resends"
                        )
                    else:
                        repairs.append((run, rows, run.op))
            _settle_finished(outcome, pending)
            self._parallel([lambda r=r, rows=rows: self._repair(r, rows) for r, rows, _ in repairs])
            # a repaired lane is checked again, unless the repair settled its operation
            pending = [r for r in waiting if r.error is None]
            pending += [r for r, _, op in repairs if r.error is None and r.op is op]
            if pending and not repairs:
                cooperative_sleep(next(polls))

    def _awaits(self, run: _Run, rows: list[Row], asked: float) -> bool:
        """Whether a lane still waits for the rows an earlier drain may have created.

        It waits until every one of them shows, or the window since it began to wait has
        passed (what did not show by then never will); then its operation is checked (and
        sent, if it does not show) at once: this drain sent nothing to wait for.
        """
        shown = {r.id for r in rows}
        if not run.awaiting <= shown and asked < run.acked + self.window():
            return True
        run.awaiting, run.acked = frozenset(), 0.0
        return False

    def _late_copy(self, run: _Run, rows: list[Row], asked: float, answered: float) -> bool:
        """Whether a file created more than once shows while another copy may still show.

        A create is sent again when its first copy did not show within the window; both may
        apply (each copy has a row id of its own, :meth:`_new_row`). When a copy shows, the
        lag has grown past the window: it is learnt, and the lane waits until every copy sent
        could have shown too (``lag_factor`` times what the first took, after the latest
        create was answered), whatever the rows show meanwhile; only then are the copies
        merged and the file confirmed, instead of confirming it with a copy still to come.
        The latest copy of a ``put`` showing alone ends the wait: the earlier ones were lost.
        An ``append`` always waits: an earlier copy showing late would be the one readers
        pick, without what others appended to the latest meanwhile.
        """
        op = run.op
        if not (run.recreated and rows and op is not None and op.kind in ("put", "append")):
            return False
        if op.kind == "put" and len(rows) == 1 and rows[0].id == run.inserted:
            return False
        if not run.seen:
            run.seen, run.timed = answered, False
            self.lag.observe(answered - run.recreated)
        late = self.consistency.lag_factor * (run.seen - run.recreated)
        since = run.created or run.acked
        return asked < since + min(self.consistency.window, max(self.window(), late))

    def _check(self, run: _Run, rows: list[Row]) -> str:
        """``ok`` (the effect shows), ``wait`` (may still be lag) or ``repair``."""
        op = run.op
        assert op is not None
        top = _canonical(rows)
        if op.kind == "delete":
            return "ok" if all(sj.supersedes(r.date, op.stamp) for r in rows) else "wait"
        if any(r.id in run.dropping for r in rows):
            return "wait"  # duplicates deleted, until the deletion shows
        own = _own_rows(op, rows)
        if run.skipped and own:
            run.skipped, run.inserted = False, _canonical(own).id  # an earlier copy applied
        if op.kind == "put" and _superseded(op, rows):
            run.row = top
            return "ok"  # a later write holds the file (our guarded update left it alone)
        if run.skipped:
            return "repair"  # the create did not apply: the file existed
        if top is None:
            return "wait"
        if op.kind == "put":
            if len(rows) > 1:
                return "repair"
            if top.date >= op.stamp:
                run.row = top
                return "ok" if top.size == len(op.data) else "repair"
            return "wait"
        if run.inserted is not None:
            if not own:
                return "wait"  # our create may not show yet
            if len(own) > 1 or top != own[0]:
                return "repair"  # copies of our create, or an older row of another creator
            run.row = top
            return "ok"
        expected = op.meta.get("expected")
        if expected is None:
            return "wait"
        end = int(expected) + len(op.data)
        if top.id == op.meta.get("target") and top.date == op.stamp and top.size == end:
            run.row = top
            return "ok"
        if top.size > end or top.id != op.meta.get("target") or top.date > op.stamp:
            return "repair"  # others wrote since: check whether our bytes are there
        return "wait"

    def _repair(self, run: _Run, rows: list[Row]) -> None:
        op = run.op
        assert op is not None
        try:
            if op.kind == "delete":
                self._delete(run)
            elif op.kind == "put":
                self._repair_put(run, rows)
            else:
                self._repair_append(run, rows)
        except QueryError as exc:
            self._refuse(run, exc)
        except AmbiguousWriteError:
            run.answered()
        except DeeplakeError as exc:
            run.error = exc

    def _repair_put(self, run: _Run, rows: list[Row]) -> None:
        op = run.op
        assert op is not None
        top = _canonical(rows)
        run.inserted, run.skipped = None, False
        if top is None:
            run.row = None
            run.recreating()
            self._insert(op.table, [run])
            return
        if len(rows) > 1:
            run.settled()
            log.info("%s has %d rows: keeping the oldest", op.path, len(rows))
            run.dropping = frozenset(r.id for r in rows if r.id != top.id)
            if run.dropping:
                sql, params = sj.dedupe(op.table, op.path, sorted(run.dropping))
                self.api.execute(sql, params, idempotent=True)
            twins = sum(r.id == top.id for r in rows) > 1
            if twins and (top.id == op.meta.get("row_id") or top.date <= op.stamp):
                self._untwin(run, top.id)  # ours, or older than ours: our content wins anyway
                return
        if top.date < op.stamp or top.size != len(op.data):
            run.row = top
            self._replace(run)
        run.answered()

    def _untwin(self, run: _Run, row_id: str) -> None:
        """A create shows twice under one id: drop both copies and create ours once more.

        Read lag can hide a committed create from the check of its own resend (a process
        killed after sending it, then resumed; a lag grown past the window): both apply, with
        the same row id, which no ``id <>`` condition tells apart. Called when the copies are
        our create, or another writer's older one that our write replaces anyway. Only copies
        nobody changed since are deleted: not newer than our write, and for an append still of
        its size (another writer's append onto them holds bytes acknowledged to it).
        """
        op = run.op
        assert op is not None
        log.info("%s: row %s shows twice; creating ours once more", op.path, row_id)
        size = len(op.data) if op.kind == "append" else None
        sql, params = sj.delete_twins(op.table, op.path, row_id, not_after=op.stamp, size=size)
        self.api.execute(sql, params, idempotent=True)
        run.row = None
        self._insert(op.table, [run])

    def _repair_append(self, run: _Run, rows: list[Row]) -> None:
        op = run.op
        assert op is not None
        top = _canonical(rows)
        if top is None:
            run.row = None
            run.recreating()
            self._insert(op.table, [run])
            return
        copies = _own_rows(op, rows) if run.inserted is not None else []
        distinct: dict[str, Row] = {}
        for copy in copies:
            distinct.setdefault(copy.id, copy)
        if len(distinct) > 1:
            run.settled()
            self._drop_copies(run, list(distinct.values()))
            return
        if copies and top.id == copies[0].id and len(copies) > 1:
            self._repair_twins(run, top, copies)
            return
        if copies and top.id != copies[0].id:
            self._merge(run, top, copies[0].id)  # another creator's older row is the file
            run.advance()
            return
        expected = op.meta.get("expected")
        resent = not run.skipped and run.inserted is None and expected is not None
        if resent and self._landed(op, op.meta.get("target"), int(expected)):
            run.row = top
            run.advance()
            return
        run.row, run.inserted, run.skipped = top, None, False
        self._record([run])
        self._cas(run)

    def _drop_copies(self, run: _Run, copies: list[Row]) -> None:
        """Keep one of our create's copies (distinct row ids) and delete the others.

        Kept: the one another writer changed, if only one was (it holds their bytes), else the
        one readers pick (the first). A copy nobody changed is deleted as it is; one appended
        to as well first has the bytes past our create moved onto the copy kept. A copy that
        holds something else (rewritten apart) is left, and the append confirmed: a duplicate
        row is kept rather than someone's bytes. Otherwise the lane is checked again once the
        deletions show.
        """
        op = run.op
        assert op is not None
        changed = [r for r in copies if not _as_created(op, r)]
        kept = changed[0] if len(changed) == 1 else copies[0]
        log.info("%s: %d copies of our create; keeping %s", op.path, len(copies), kept.id)
        dropped, apart = [], []
        for copy in copies:
            if copy is kept:
                continue
            if _as_created(op, copy):
                sql, params = sj.delete_row(op.table, copy.id, copy.size)
                self.api.execute(sql, params, idempotent=True)
            elif not self._fold(run, kept, copy):
                apart.append(copy.id)
                continue
            dropped.append(copy.id)
        run.row = kept
        if apart:
            log.warning("%s: copies %s of our create were rewritten apart", op.path, apart)
            run.advance()
            return
        run.dropping = frozenset(dropped)
        run.answered()

    def _fold(self, run: _Run, kept: Row, copy: Row) -> bool:
        """Fold a copy of our create that others changed into ``kept``; False if it cannot be.

        Its bytes past our create are moved onto ``kept`` (appends), unless ``kept`` holds
        them all already (both rewritten by one later write).
        """
        op = run.op
        assert op is not None
        held, _ = self._row_bytes(op.table, kept.id)
        data, size = self._row_bytes(op.table, copy.id)
        if size is None:
            return True  # gone: someone else dropped it
        if held.startswith(data):
            sql, params = sj.delete_row(op.table, copy.id, size)
            self.api.execute(sql, params, idempotent=True)
            return True
        if not data.startswith(op.data):
            return False
        self._merge(run, kept, copy.id, skip=len(op.data))
        return True

    def _repair_twins(self, run: _Run, top: Row, copies: list[Row]) -> None:
        """Copies of our create under one row id (sent by versions that gave them one).

        Only copies nobody appended to can be deleted (:meth:`_untwin`): when every copy was
        appended to, none can be told apart to delete it alone, and the duplicate rows are
        kept rather than the others' bytes.
        """
        op = run.op
        assert op is not None
        if not any(_as_created(op, r) for r in copies):
            log.warning("%s: %d copies of row %s, appended to since", op.path, len(copies), top.id)
            run.row = top
            run.advance()
            return
        run.settled()
        self._untwin(run, top.id)

    def _merge(self, run: _Run, into: Row, mine: str, skip: int = 0) -> None:
        """Move the content of row ``mine`` (a copy this drain created) onto ``into``.

        ``skip``: bytes at the start of ``mine`` that ``into`` already holds (our create's,
        when both are copies of it).
        """
        op = run.op
        assert op is not None
        moved = skip
        for _ in range(MAX_CAS):
            data, size = self._row_bytes(op.table, mine)
            if size is None:
                return  # gone: someone else merged it
            chunk = data[moved:]
            if chunk:
                merge = Op("append", op.table, op.path, chunk, {"stamp": op.stamp}, [], False)
                target = _Run(Lane(op.table, op.path, [merge]), None)
                target.row, target.known = into, True
                self._cas(target)
                moved = size
                into = target.row or into
            sql, params = sj.delete_row(op.table, mine, size)
            result = self.api.execute(sql, params, idempotent=True)
            if result.row_count:
                return  # (an unknown count: the next read tells whether the row is gone)
        raise DeeplakeError(f"{op.path}: could not merge a duplicate row")

    def _row_bytes(self, table: str, row_id: str) -> tuple[bytes, int | None]:
        sql, params = sj.row_content(self._layout(table), row_id)
        rows = self.api.query(sql, params)
        if not rows:
            return b"", None
        return memory_row_bytes(rows[0]), int(rows[0]["size_bytes"] or 0)

    def _rows(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Row]]:
        """Rows of many files, one query per table and chunk of paths, in parallel."""
        by_table: dict[str, list[str]] = {}
        for table, path in keys:
            by_table.setdefault(table, []).append(path)
        jobs = []
        for table, file_paths in by_table.items():
            for i in range(0, len(file_paths), CHUNK):
                jobs.append((table, file_paths[i : i + CHUNK]))

        def read(job: tuple[str, list[str]]) -> list[tuple[str, dict[str, Any]]]:
            sql, params = sj.rows_of(job[0], job[1])
            return [(job[0], r) for r in self.api.query(sql, params)]

        found: dict[tuple[str, str], list[Row]] = {}
        for result in run_parallel(read, jobs, self.parallel):
            if isinstance(result, Failure):
                raise result.error
            for table, r in result:
                found.setdefault((table, r["path"]), []).append(
                    Row(
                        str(r["id"] or ""),
                        int(r["size_bytes"] or 0),
                        str(r["last_update_date"] or ""),
                        str(r["creation_date"] or ""),
                    )
                )
        return found

    # -- barriers -----------------------------------------------------------------------------
    def _barrier(self, op: Op, outcome: Outcome) -> bool:
        try:
            self._attempt(op.seqs, {})
            for sql, params in self._barrier_statements(op):
                self.api.execute(sql, params, idempotent=True)
            acked = time.time()
            self._wait_gone(op, acked)
        except DeeplakeError as exc:
            reason = self._refusal(exc, op.table)
            for seq in op.seqs:
                if reason is None:
                    outcome.failed[seq] = exc
                else:
                    outcome.rejected[seq] = reason
            return reason is not None
        outcome.completed += op.seqs
        for key in list(outcome.lanes):
            if key[0] == op.table:
                outcome.lanes[key] = None
        return True

    def _barrier_statements(self, op: Op) -> list[tuple[str, list[Any]]]:
        if op.kind == "delete_tree":
            return [sj.delete_tree(op.table, op.path, not_after=op.stamp)]
        dst = str(op.meta["dst"])
        if op.kind == "rename":
            return sj.rename_path(op.table, op.path, dst, posixpath.basename(dst), op.stamp)
        return [sj.rename_tree(op.table, op.path, dst, op.stamp)]

    def _wait_gone(self, op: Op, acked: float) -> None:
        """Poll until no row older than the operation remains at its source."""
        polls = self.consistency.polls()
        sql, params = sj.rows_under(op.table, op.path, tree=op.kind != "rename", not_after=op.stamp)
        for _ in range(MAX_REPAIRS):
            while True:
                asked = time.time()
                if not self.api.query(sql, params):
                    return
                if asked >= acked + self.window():
                    break
                cooperative_sleep(next(polls))
            for stmt_sql, stmt_params in self._barrier_statements(op):
                self.api.execute(stmt_sql, stmt_params, idempotent=True)
            acked = time.time()
        raise DeeplakeError(f"{op.kind} of {op.path} did not show after {MAX_REPAIRS} resends")

    # -- session events -----------------------------------------------------------------------
    def _events(self, ops: list[Op], outcome: Outcome) -> bool:
        if not ops:
            return True
        by_table: dict[str, list[Op]] = {}
        for op in ops:
            by_table.setdefault(op.table, []).append(op)
        ok = True
        for table, group in by_table.items():
            self._attempt([s for op in group for s in op.seqs], {})
            results = self._parallel(
                [
                    lambda c=group[i : i + CHUNK], t=table: self._event_chunk(t, c, outcome)
                    for i in range(0, len(group), CHUNK)
                ]
            )
            ok = ok and all(r is True for r in results)
        return ok

    def _event_chunk(self, table: str, ops: list[Op], outcome: Outcome) -> bool:
        """Store each event once: send, read back, send again or delete surplus copies."""
        layout = self._layout(table, SESSIONS)
        marked = layout.has("last_update_date")
        now = time.time()
        live = [_Event(op, marked, now) for op in ops]
        send = [e for e in live if e.op.fresh]
        check = [e for e in live if not e.op.fresh]
        polls = self.consistency.polls()
        while send or check:
            if send:
                sent = self._send_copies(layout, send, outcome)
                if sent is None:
                    return False
                check += sent
            if not check:
                break
            steps = self._event_steps(table, check, marked)
            if steps is None:
                return False
            send = [e for e, action in steps if action == "send"]
            fixes = [(e, action) for e, action in steps if action in ("drop", "restore")]
            check = [e for e, action in steps if action not in ("send", "ok")]
            stored = [s for e, action in steps if action == "ok" for s in e.op.seqs]
            outcome.settle(Outcome(completed=stored))
            if any(e.copies.repairs >= MAX_REPAIRS for e in send + [e for e, _ in fixes]):
                for e in check + send:
                    for seq in e.op.seqs:
                        outcome.failed[seq] = DeeplakeError("event rows did not show once")
                return False
            results = self._parallel([lambda f=f: self._fix_copies(table, *f) for f in fixes])
            if any(isinstance(r, Failure) for r in results):
                return False
            if check and not send and not fixes:
                cooperative_sleep(next(polls))
        return True

    def _send_copies(
        self, layout: TableLayout, events: list[_Event], outcome: Outcome
    ) -> list[_Event] | None:
        """Insert a new copy of each event (the events to read back; None: failed, recorded)."""
        recorded: dict[int, dict[str, Any]] = {}
        for e in events:
            again = bool(e.copies.marks)
            e.copies.new_copy()
            if again:
                e.copies.repairs += 1
                e.op.meta["copies"] = list(e.copies.marks)
                recorded.update({seq: {"copies": e.op.meta["copies"]} for seq in e.op.seqs})
        if recorded:
            self._attempt(list(recorded), recorded)
        return self._insert_copies(layout, events, outcome)

    def _insert_copies(
        self, layout: TableLayout, events: list[_Event], outcome: Outcome
    ) -> list[_Event] | None:
        try:
            sql, params = sj.insert_events(layout, [e.row() for e in events])
            result = self.api.execute(sql, params, idempotent=False)
        except AmbiguousWriteError:
            result = None
        except QueryError as exc:
            reason = self._refusal(exc, layout.name)
            if reason is not None and len(events) > 1:  # find the event the service refuses
                alone = [self._insert_copies(layout, [e], outcome) for e in events]
                return None if None in alone else [e for part in alone if part for e in part]
            if reason is not None:
                outcome.settle(Outcome(rejected=dict.fromkeys(events[0].op.seqs, reason)))
                return []
            _failed(events, exc, outcome)
            return None
        except DeeplakeError as exc:
            _failed(events, exc, outcome)
            return None
        now = time.time()
        for e in events:
            e.op.fresh = False
            e.copies.sent(now)
        if result is None or result.row_count is None or result.row_count < len(events):
            return events  # some ids existed, or the count is unknown: read them back
        alone = [e for e in events if len(e.copies.marks) == 1]
        outcome.settle(Outcome(completed=[s for e in alone for s in e.op.seqs]))
        return [e for e in events if len(e.copies.marks) > 1]

    def _event_steps(
        self, table: str, events: list[_Event], marked: bool
    ) -> list[tuple[_Event, str]] | None:
        """Read the events' rows back and decide each one's next step (None: the read failed)."""
        shown: dict[str, list[str | None]] = {}
        asked = time.time()
        for i in range(0, len(events), CHUNK):
            ids = [e.id for e in events[i : i + CHUNK]]
            sql, params = sj.event_copies(table, ids, marked=marked)
            try:
                rows = self.api.query(sql, params)
            except DeeplakeError:
                return None
            for r in rows:
                shown.setdefault(str(r["id"]), []).append(r["mark"])
        answered, window = time.time(), self.window()
        steps = []
        for e in events:
            step = e.copies.step(shown.get(e.id, []), asked, answered, window, self.consistency)
            if step.lag is not None:
                self.lag.observe(step.lag)
            steps.append((e, step.action))
        return steps

    def _fix_copies(self, table: str, event: _Event, action: str) -> None:
        """Delete an event's surplus copies (``drop``), or date the copy kept as the event.

        A ``drop`` deletes the copies it names by their marks (every copy when they cannot be
        told apart); one that names the event's own date is first recorded in the journal, so
        that no later drain dates a copy back to it. A ``restore`` sets the kept copy's
        ``last_update_date`` back to the event's own.
        """
        copies = event.copies
        if action == "drop":
            log.info("event %s shows more than once: keeping copy %r", event.id, copies.keep)
            if copies.first_dropped and not event.op.meta.get("first_dropped"):
                event.op.meta["first_dropped"] = True
                self._attempt([], {seq: {"first_dropped": True} for seq in event.op.seqs})
            sql, params = sj.delete_event_copies(table, event.id, copies.drop)
        else:
            assert copies.keep is not None
            sql, params = sj.restore_event_date(table, event.id, copies.keep, copies.first)
        copies.repairs += 1
        with contextlib.suppress(AmbiguousWriteError):  # maybe applied: the next read tells
            self.api.execute(sql, params, idempotent=True)
        if action == "drop":
            copies.dropped(time.time())
        else:
            copies.restored(time.time())


class _Event:
    """A session event being stored: its operation and its copies."""

    def __init__(self, op: Op, marked: bool, now: float) -> None:
        self.op = op
        # an event an earlier drain sent may still show: its copies are waited for from now
        self.copies = EventCopies.of(op.meta, marked, None if op.fresh else now)
        self.id = str(op.meta["row"]["id"])

    def row(self) -> dict[str, Any]:
        """The row of the latest copy: the event, marked as that copy."""
        row = dict(self.op.meta["row"])
        row["message"] = self.op.data.decode("utf-8")
        if self.copies.marked:
            row["last_update_date"] = self.copies.marks[-1]
        return row


def _failed(events: list[_Event], error: BaseException, outcome: Outcome) -> None:
    """Leave the events pending with ``error``."""
    for e in events:
        for seq in e.op.seqs:
            outcome.failed[seq] = error


# ------------------------------------------------------------------------------------------ helpers
def _resumes(op: Op | None) -> bool:
    """An append group an earlier drain sent: check whether it applied before resending."""
    return (
        op is not None
        and op.kind == "append"
        and not op.fresh
        and ("expected" in op.meta or bool(op.meta.get("create")))
    )


def _earlier_copies(op: Op) -> frozenset[str]:
    """Rows an earlier drain may have created for ``op`` or for operations it supersedes.

    Recorded before each create was sent (:meth:`Drain._record_copies`); ``plan`` carries the
    ids of superseded operations (:data:`~deeplake_sdk.journal.plan.EARLIER_IDS`). An append's
    own creates are checked as a resumed append instead (:func:`_resumes`, :func:`_own_rows`).
    """
    earlier = frozenset(op.meta.get(EARLIER_IDS, ()))
    return earlier if op.kind == "append" else earlier | frozenset(op.meta.get(SENT_IDS, ()))


def _write_meta(op: Op) -> dict[int, dict[str, Any]]:
    """What to record on every entry of a write about to be sent (its entries stay fresh).

    A write that absorbed appends is sent as one statement: it is recorded as a group, so that
    a later drain takes its entries in one batch and sends them as one write again (cut apart,
    the write alone would find the appends' bytes already there, and the appends would be sent
    on top of them). The row ids of its creates go with it (:meth:`Drain._record_copies`).
    """
    facts: dict[str, Any] = {}
    if SENT_IDS in op.meta:
        facts[SENT_IDS] = op.meta[SENT_IDS]
    if len(op.seqs) > 1:
        facts.update(group=op.seqs[0], members=len(op.seqs))
    return {seq: facts for seq in op.seqs} if facts else {}


def _group_meta(op: Op, row: Row | None) -> dict[int, dict[str, Any]]:
    """What to record on every entry of an append group about to be sent (and keep in ``op``)."""
    if row is None:
        facts: dict[str, Any] = {"create": True}
        op.meta.pop("expected", None)
    else:
        facts = {"expected": row.size, "target": row.id, "create": False}
    if SENT_IDS in op.meta:
        facts[SENT_IDS] = op.meta[SENT_IDS]
    op.meta.update(facts)
    group = {"group": op.seqs[0], "members": len(op.seqs)}
    return {seq: {**group, **facts} for seq in op.seqs}


def _own_rows(op: Op, rows: Sequence[Row]) -> list[Row]:
    """The copies of append ``op``'s create among ``rows``, the one readers pick first."""
    if op.kind != "append" or "append_id" not in op.meta:
        return []
    ids = set(sent_ids(op))
    return sorted((r for r in rows if r.id in ids), key=lambda r: (r.created, r.id))


def _as_created(op: Op, row: Row) -> bool:
    """Whether ``row`` is still as the create of append ``op`` made it (nobody appended)."""
    return row.size == len(op.data) and row.date == op.stamp


def _settle_finished(outcome: Outcome, runs: list[_Run]) -> None:
    """Settle the lanes among ``runs`` that have applied their last operation, once each."""
    finished = [r for r in runs if r.op is None and r.error is None and not r.reported]
    outcome.settle(_settled(finished))


def _settled(runs: list[_Run]) -> Outcome:
    """What these lanes did (their entries confirmed or refused, their files' hints)."""
    part = Outcome()
    for run in runs:
        run.reported = True
        part.completed += run.done
        part.rejected.update(run.rejected)
        part.lanes[(run.lane.table, run.lane.path)] = run.hint()
    return part


def _by_table(runs: list[_Run]) -> dict[str, list[_Run]]:
    out: dict[str, list[_Run]] = {}
    for run in runs:
        out.setdefault(run.lane.table, []).append(run)
    return out


def _insert_chunks(runs: list[_Run]) -> list[list[_Run]]:
    chunks: list[list[_Run]] = []
    size = 0
    for run in runs:
        op = run.op
        assert op is not None
        if not chunks or len(chunks[-1]) >= CHUNK or size + len(op.data) > INSERT_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(run)
        size += len(op.data)
    return chunks


def _text(data: bytes) -> str | None:
    """``data`` as text when it is valid UTF-8 without NUL characters, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text
