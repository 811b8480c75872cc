"""The copies of one session event a drain sent, and which one the table keeps.

A session event is inserted only when no row has its id (``INSERT .. WHERE NOT EXISTS``), and a
drain sends it again when it did not show within the window. Read lag hides a committed insert
from that guard as well: when the service's lag has grown past the window, both copies apply,
under one id. So every copy after the first carries a mark of its own in ``last_update_date``
(the time it was made, recorded in the journal before it is sent), and :class:`EventCopies`
decides from the copies a read shows:

* none shows: wait out the window since the latest write was answered, then send another copy;
* several show: the first copy is kept when it shows (it is dated as the event already), else
  the latest; the others are deleted by their marks (a delete names the copies it removes, so a
  copy of it that the service runs late never removes the one kept);
* the latest copy shows: the earlier ones that do not show were lost (the service shows writes
  in the order it answered them);
* only an earlier copy shows: the lag grew. It is learnt, and the later copies are waited for
  (``lag_factor`` times what the earlier copy took, at most :attr:`Consistency.window`), so
  that one that shows late is deleted as well;
* the one copy left is a marked one: its ``last_update_date`` is set back to the event's date
  (the plugin's rows have both dates equal to the event's timestamp), and the event is done
  once that shows; unless a delete ever named the event's own date (copies under that date
  that could not be told apart): a late copy of that delete would remove the row dated back,
  so the copy keeps its mark.

A table without ``last_update_date`` cannot tell copies apart: an event there is done once any
copy shows (and a lag grown past the window may leave two rows, which readers show once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from deeplake_sdk.dates import utc_stamp

if TYPE_CHECKING:
    from deeplake_sdk.journal.drain import Consistency

__all__ = ["EventCopies", "Step"]

#: What to do next with an event: ``ok`` (stored once), ``wait`` (read again), ``send`` (a new
#: copy), ``drop`` (delete the copies marked :attr:`EventCopies.drop`: every one but
#: :attr:`EventCopies.keep`), ``restore`` (set the one copy left, :attr:`EventCopies.keep`, back
#: to the event's date).
Action = Literal["ok", "wait", "send", "drop", "restore"]


class Step(NamedTuple):
    """The next action for one event, and a read-lag bound the read revealed (or None)."""

    action: Action
    lag: float | None = None


@dataclass
class EventCopies:
    """What one process knows of the copies of one session event.

    Attributes:
        first: ``last_update_date`` of the first copy (the event's own date).
        marked: Whether the table keeps ``last_update_date`` (copies can be told apart).
        marks: The ``last_update_date`` of every copy sent, in the order they were sent.
        answered: ``mark -> wall time`` its insert was answered (or lost), for copies this
            process sent.
        since: Wall time of the latest write of this event (copy or delete) answered or lost,
            or when an earlier process is assumed to have sent it.
        seen: When an earlier copy first showed alone while a later one had been sent.
        deleted: Wall time of the latest delete of surplus copies, 0 when none is pending.
        keep: The copy to keep, for a ``drop`` (None: delete every copy), and the copy whose
            date a ``restore`` sets back to the event's.
        drop: The marks of the copies a ``drop`` deletes.
        first_dropped: A ``drop`` named the event's own date (recorded in the journal as
            ``first_dropped``): no copy is dated back to it any more.
        latest_seen: The latest copy sent has shown (no later copy can show).
        restoring: A ``restore`` was sent.
        repairs: Copies sent again and deletes sent, in this process.
    """

    first: str
    marked: bool
    marks: list[str] = field(default_factory=list)
    answered: dict[str, float] = field(default_factory=dict)
    since: float = 0.0
    seen: float = 0.0
    deleted: float = 0.0
    keep: str | None = None
    drop: list[str] = field(default_factory=list)
    first_dropped: bool = False
    latest_seen: bool = False
    restoring: bool = False
    repairs: int = 0

    @classmethod
    def of(cls, meta: Mapping[str, Any], marked: bool, sent_before: float | None) -> EventCopies:
        """The copies of the event of an entry.

        Args:
            meta: The entry's meta (``row``, and the ``copies`` an earlier drain recorded).
            marked: Whether the table has ``last_update_date``.
            sent_before: None when no drain sent the event yet, else the time from which its
                earlier copies are waited for.
        """
        first = str(meta["row"].get("last_update_date") or "")
        copies = cls(first, marked, first_dropped=bool(meta.get("first_dropped")))
        if sent_before is not None:
            copies.marks = [str(m) for m in meta.get("copies") or [first]]
            copies.since = sent_before
        return copies

    def new_copy(self, now: datetime | None = None) -> str:
        """Mark the next copy to send (the event's own date for the first) and return it."""
        if not self.marks:
            mark = self.first
        else:
            stamp = now or datetime.now(timezone.utc)
            mark = utc_stamp(stamp)
            while mark in self.marks or mark == self.first:
                stamp += timedelta(microseconds=1)
                mark = utc_stamp(stamp)
        self.marks.append(mark)
        self.latest_seen = False
        return mark

    def sent(self, when: float) -> None:
        """The latest copy's insert was answered (or its answer lost) at ``when``."""
        self.answered[self.marks[-1]] = when
        self.since = when

    def dropped(self, when: float) -> None:
        """A delete of surplus copies was answered (or its answer lost) at ``when``."""
        self.deleted = self.since = when

    def restored(self, when: float) -> None:
        """The kept copy's date was set back to the event's at ``when`` (answered or lost)."""
        self.restoring, self.since = True, when

    def step(
        self,
        shown: Sequence[str | None],
        asked: float,
        answered: float,
        window: float,
        policy: Consistency,
    ) -> Step:
        """What to do after a read that shows the copies ``shown``.

        Args:
            shown: ``last_update_date`` of every row with the event's id (None per row when
                the table has no such column).
            asked: When the read was sent.
            answered: When it was answered.
            window: The window allowed now (:meth:`Drain.window`).
            policy: The consistency policy (its ``window`` and ``lag_factor``).
        """
        if not shown:
            return Step("send" if asked >= self.since + window else "wait")
        if not self.marked:
            return Step("ok")
        if self.restoring and len(shown) == 1 and shown[0] in (self.first, self.keep):
            if shown[0] == self.first:
                return Step("ok")
            return Step("wait" if asked < self.since + window else "restore")
        if self.marks and self.marks[-1] in shown:
            self.latest_seen = True
        keep = self.first if self.first in shown else max(shown, key=self._rank)
        if len(shown) > 1:
            if self.deleted and asked < self.deleted + window:
                return Step("wait")  # the delete may not show yet
            self.keep = None if shown.count(keep) > 1 else keep
            self.drop = sorted({str(m) for m in shown if m != self.keep})
            self.first_dropped |= self.first in self.drop
            return Step("drop")
        self.deleted = 0.0
        if self._rank(keep) == len(self.marks) - 1 or self.latest_seen:
            return self._settle(keep)
        held = self._hold(keep, asked, answered, policy, window)
        return held if held.action == "wait" else self._settle(keep, held.lag)

    def _settle(self, keep: str | None, lag: float | None = None) -> Step:
        """The one copy left is kept: done, once it bears the event's own date again."""
        if keep == self.first or self.first_dropped:
            return Step("ok", lag)
        self.keep = keep
        return Step("restore", lag)

    def _hold(
        self, keep: str | None, asked: float, answered: float, policy: Consistency, window: float
    ) -> Step:
        """An earlier copy shows alone: wait until the later ones could have shown too."""
        sent = self.answered.get(keep or "", 0.0)
        lag = None
        if not self.seen:
            self.seen = answered
            lag = answered - sent if sent else None
        hold = policy.window
        if sent:
            hold = min(policy.window, max(window, policy.lag_factor * (self.seen - sent)))
        return Step("wait" if asked < self.since + hold else "ok", lag)

    def _rank(self, mark: str | None) -> int:
        """Send order of a copy (-1: not one this event's drains sent)."""
        return self.marks.index(mark) if mark in self.marks else -1
