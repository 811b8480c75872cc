"""Identical reads waiting at the same time in one process are sent once.

A thousand agent sessions in one process that each read ``/index.md`` send the same statement
(every file's metadata) a thousand times; each answer is as large as the tables' file lists.
:class:`SharedReads` sends such a read once per *round*: a caller joins the next round that
starts after it asked, never one already in flight, so its answer is as fresh as a statement
of its own (it sees every write confirmed before it asked), and at most one round of a
statement is in flight at a time, with one more gathering callers behind it.

Reads are shared only between clients of one tenant (service, org, workspace and token) and
only for the exact same statement and parameters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from deeplake_sdk._coop import Completion, allocate_lock

__all__ = ["SharedReads", "shared_reads"]

T = TypeVar("T")


class _Round:
    """One sending of a statement, and the callers waiting for its answer."""

    __slots__ = ("error", "value", "waiters")

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.waiters: list[Completion] = []


class _Slot:
    """The round of one statement in flight, and the round gathering callers behind it."""

    __slots__ = ("gathering", "sending")

    def __init__(self) -> None:
        self.sending: _Round | None = None
        self.gathering: _Round | None = None


class SharedReads:
    """Send identical reads of concurrent callers once per round (thread and greenlet safe).

    Attributes:
        sent: Rounds sent.
        shared: Callers answered by a round another caller sent.
        followed_failure: Callers who joined one more round after a failed one.
    """

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._slots: dict[Hashable, _Slot] = {}
        self.sent = 0
        self.shared = 0
        self.followed_failure = 0

    def read(
        self,
        key: Hashable,
        send: Callable[[], T],
        again: Callable[[Exception], bool] | None = None,
    ) -> T:
        """What ``send()`` returns, from a round of ``key`` that starts after this call.

        The first caller of a round sends it (with its own client, retries and deadline);
        callers that ask while it is being sent wait for the next round, sent by the first of
        them once the current one ends. Every caller of a round gets the same object: treat
        it as read-only.

        Args:
            key: What identifies the read.
            send: Sends it (once per round).
            again: Tells whether a failure of a round this caller did not send is worth one
                more round (None: never); the caller then joins the round in flight, or
                sends one, once.

        Raises:
            Exception: What ``send`` raised for the round this caller sent, or for the last
                round it waited for. A round whose sender was interrupted (``gevent.Timeout``,
                ``kill``) is sent again by its other callers.
        """
        followed = False
        while True:
            round_, wait_for, leads = self._join(key, in_flight_is_fresh=followed)
            if leads:
                self._send(key, round_, wait_for, send)
            else:
                wait_for.wait()
            error = round_.error
            if error is None:
                return round_.value
            if leads:
                raise error
            if not isinstance(error, Exception):
                continue  # its sender was interrupted: this caller's read was not sent
            if again is None or followed or not again(error):
                raise error
            followed = True
            with self._lock:
                self.followed_failure += 1

    def _join(
        self, key: Hashable, in_flight_is_fresh: bool = False
    ) -> tuple[_Round, Completion, bool]:
        """The round this caller is part of, what it waits for, and whether it sends it.

        The sender of a gathering round waits for the round in flight to end; any other
        caller of it waits for its answer. A caller back from a failed round joins the round
        in flight if there is one (``in_flight_is_fresh``: it started after that failed round
        ended, so after the caller asked), so that its fellow callers share one more round.
        """
        done = Completion()
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
            if slot.sending is None:
                slot.sending = _Round()
                done.set()
                return slot.sending, done, True
            if in_flight_is_fresh:
                slot.sending.waiters.append(done)
                self.shared += 1
                return slot.sending, done, False
            if slot.gathering is None:
                slot.gathering = _Round()
                slot.sending.waiters.append(done)
                return slot.gathering, done, True
            slot.gathering.waiters.append(done)
            self.shared += 1
            return slot.gathering, done, False

    def _send(
        self, key: Hashable, round_: _Round, turn: Completion, send: Callable[[], Any]
    ) -> None:
        """Wait for ``turn`` (the round before has ended), send ``round_``, wake its waiters.

        The round's outcome (value or exception, interruptions included) is left on it.
        """
        try:
            turn.wait()
            round_.value = send()
        except BaseException as exc:
            round_.error = exc
        finally:
            with self._lock:
                self.sent += round_.error is None
                slot = self._slots.get(key)
                if slot is not None:
                    if slot.sending is round_:  # the round gathering behind it may go
                        slot.sending, slot.gathering = slot.gathering, None
                    elif slot.gathering is round_:  # interrupted before its turn
                        slot.gathering = None
                    if slot.sending is None and slot.gathering is None:
                        del self._slots[key]
                waiters, round_.waiters = round_.waiters, []
            for done in waiters:
                done.set()

    def reset(self) -> None:
        """Forget every round (in a forked child: the parent's rounds are not its own)."""
        self._lock = allocate_lock()
        self._slots = {}


def read_key(tenant: Sequence[str], sql: str, params: Sequence[Any] | None) -> Hashable:
    """The key under which a read is shared: the tenant, the statement and its parameters."""
    return (*tenant, sql, json.dumps(list(params or ()), sort_keys=True, default=str))


#: The process's shared reads.
shared_reads = SharedReads()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=shared_reads.reset)
