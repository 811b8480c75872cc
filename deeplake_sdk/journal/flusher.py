"""The flusher: a native thread with its own gevent hub that drains one journal.

It runs whatever the program does: a plain script that never yields to gevent, a program that
monkey-patched everything, threads. It is started by the first write (or by opening a journal
that holds entries of an earlier process), sleeps while there is nothing to send, and wakes at
once when an entry is journaled. Only one process drains a journal at a time (the store's drain
lock); the others keep polling which of their entries were confirmed.

Inside its thread the drain runs statements in parallel on a gevent pool: with unpatched sockets
each blocking request goes to that hub's thread pool, with patched ones it runs in a greenlet.
Up to :data:`PIPELINE_DEPTH` batches that touch different files (and session logs) are applied
at the same time (:class:`~deeplake_sdk.journal.inflight.InFlight`), so that a write waiting
out the read lag does not hold back the writes journaled after it.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from deeplake_sdk._coop import Completion, allocate_lock, load_gevent, original
from deeplake_sdk.config import says_off
from deeplake_sdk.journal.inflight import InFlight
from deeplake_sdk.journal.store import Entry

if TYPE_CHECKING:
    from deeplake_sdk.journal.core import Journal

__all__ = ["Flusher"]

log = logging.getLogger(__name__)

_start_new_thread = original("_thread", "start_new_thread")

#: Seconds between looks at the journal while another process drains it.
FOLLOW_POLL = 0.1
#: Seconds between looks at an idle journal (entries of other processes may appear).
IDLE_POLL = 2.0
#: Backoff after a drain that could not send everything (doubles up to BACKOFF_MAX).
BACKOFF_MIN = 0.25
BACKOFF_MAX = 8.0
#: Batches applied at the same time (they never touch the same file or session log).
PIPELINE_DEPTH = 4
#: Environment variable: ``0`` keeps this process from sending its journal (it journals, and
#: another process sends: the hooks' background drain, ``deeplake-sdk journal flush``).
ENV_SEND = "DEEPLAKE_JOURNAL_SEND"


def sending_enabled() -> bool:
    """Whether this process sends its journals (:data:`ENV_SEND` is not ``0``)."""
    return not says_off(os.environ.get(ENV_SEND, "1"))


class Flusher:
    """Drains a journal from a dedicated native thread.

    Args:
        journal: The journal to drain.
    """

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._lock = allocate_lock()
        self._watcher: Any = None
        self._event: Any = None  # the thread's wake-up event (set by wake() and batch ends)
        self._flight = InFlight(PIPELINE_DEPTH)
        self._wanted = False
        self._started = False
        self._stopped = False
        self._ended = Completion()
        self.backoff = 0.0
        self.cycles = 0

    def start(self, *, force: bool = False) -> None:
        """Start the thread (once).

        Args:
            force: Start it even in a process that does not send (:data:`ENV_SEND`): a drain
                asked for explicitly.
        """
        with self._lock:
            if self._started or not (force or sending_enabled()):
                return
            self._started = True
        load_gevent()  # whole, before the thread exists: its first import is not thread-safe
        _start_new_thread(self._main, ())

    def wake(self) -> None:
        """Ask for a drain now (from any thread); starts the thread if needed."""
        self.start()
        with self._lock:
            self._wanted = True
            watcher = self._watcher
        if watcher is not None:
            watcher.send()

    def stop(self, timeout: float | None = None) -> bool:
        """Let the thread end after its current cycle, and wait for it (bounded).

        A thread still running a gevent hub while the interpreter finalizes can crash the
        process, so the exit handler stops it this way.

        Args:
            timeout: Longest wait for the thread to end (``0``: do not wait).

        Returns:
            Whether the thread has ended (or never started).
        """
        with self._lock:
            self._stopped = True
            started, watcher = self._started, self._watcher
        if not started:
            return True
        if watcher is not None:
            watcher.send()
        return timeout == 0 or self._ended.wait(timeout)

    # -- the thread ---------------------------------------------------------------------------
    def _main(self) -> None:
        gevent = load_gevent()  # imported whole by start()
        hub = gevent.get_hub()
        event = gevent.event.Event()
        watcher = hub.loop.async_()
        watcher.start(event.set)
        self._event = event
        with self._lock:
            self._watcher = watcher
            if self._wanted:
                event.set()
        try:
            while not self._stopped:
                event.clear()
                with self._lock:
                    self._wanted = False
                pause = self._cycle()
                if pause and not self._stopped:
                    event.wait(pause)
        except BaseException:  # the thread must never die silently
            log.exception("journal flusher stopped by an unexpected error")
            raise
        finally:
            with self._lock:
                self._watcher = None
            watcher.stop()
            watcher.close()
            from deeplake_sdk.transport import close_thread_connections

            close_thread_connections()  # this hub's sockets, while it still exists
            hub.destroy(destroy_loop=True)
            self._ended.set()

    def _cycle(self) -> float:
        """One look at the journal; returns how long to wait before the next (0: at once)."""
        self.cycles += 1
        journal = self._journal
        try:
            if not journal.has_pending():
                journal.follow()
                return IDLE_POLL
            if not journal.store.try_lock_drain():
                journal.follow()
                return FOLLOW_POLL
            try:
                progressed = self._drain()
            finally:
                journal.store.unlock_drain()
        except Exception as exc:  # a broken journal file, a bug: report, keep running
            self._report(exc)
            progressed = False
        if progressed:
            self.backoff = 0.0
            return 0.0
        self.backoff = min(BACKOFF_MAX, max(BACKOFF_MIN, self.backoff * 2))
        log.debug("journal drain incomplete; next try in %.2f s", self.backoff)
        return self.backoff

    def _drain(self) -> bool:
        """Apply pending entries, several batches at a time; returns whether all settled.

        New batches start as entries are journaled and as batches end, until nothing is left
        or a batch could not settle (then the running ones finish, and the cycle ends).
        """
        gevent = load_gevent()
        journal, event, flight = self._journal, self._event, self._flight
        flight.restart()  # a cycle begins with the oldest pending entry
        failed: list[bool] = []

        def run(batch: list[Entry], token: int) -> None:
            try:
                if not journal.drain_batch(batch):
                    failed.append(True)
            except Exception as exc:
                self._report(exc)
                failed.append(True)
            finally:
                flight.finish(token)
                event.set()

        while True:
            event.clear()
            while not (failed or self._stopped or flight.full):
                try:
                    fresh = journal.next_batch(flight.upto, held=flight.held)
                except Exception as exc:  # the running batches still end before the cycle
                    self._report(exc)
                    failed.append(True)
                    break
                if failed:  # a batch failed while reading: its entries go first, next cycle
                    break
                batch = flight.admit(flight.look(fresh))
                if not batch:
                    break
                gevent.spawn(run, batch, flight.start(batch))
                if flight.held:  # the rest waits for a batch to end
                    break
            if not flight:
                break
            event.wait()
        if not failed:
            journal.note_progress()
        return not failed

    def _report(self, exc: Exception) -> None:
        """A broken journal file, a bug: report it and keep running."""
        log.error("journal drain failed: %s", exc, exc_info=exc)
        self._journal.note_error(exc)
