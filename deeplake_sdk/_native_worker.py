"""A native worker thread that owns a resource, callable from greenlets and plain threads.

Under gevent monkey-patching ``threading`` creates greenlets and ``threading.local`` is
greenlet-local, so a library that keeps per-thread state (diskcache's SQLite connections)
multiplies it per greenlet. :class:`NativeWorker` runs all calls on one real OS thread that
owns the resource. A caller inside a running gevent hub waits on that hub (other greenlets
keep running); a caller without one (plain code, or the hub itself) blocks its thread. The
primitives used are the unpatched ones, so this works whether or not, and whenever,
``gevent.monkey.patch_all()`` is called; importing the module patches nothing.
"""

from __future__ import annotations

import logging
from _queue import SimpleQueue  # the C queue: blocks natively, whatever is patched
from collections.abc import Callable
from typing import Any

from gevent import monkey
from gevent.hub import Waiter, getcurrent

try:
    from gevent._hub_local import get_hub_if_exists
except ImportError:  # pragma: no cover - older gevent
    from gevent.hub import _get_hub as get_hub_if_exists

__all__ = ["Completion", "NativeWorker", "allocate_lock"]

logger = logging.getLogger(__name__)

allocate_lock = monkey.get_original("_thread", "allocate_lock")
_start_new_thread = monkey.get_original("_thread", "start_new_thread")


class Completion:
    """A one-shot event: set once from any thread, waited for cooperatively.

    A waiter inside a running gevent hub waits on that hub (other greenlets keep running); a
    waiter without one (plain code, or the hub itself) blocks its thread. :meth:`set` may run
    before, during or after :meth:`wait`, from any thread; a waiter that gives up (an exception
    such as ``gevent.Timeout`` while waiting) leaves nothing armed behind it.
    """

    __slots__ = ("_done", "_lock", "_notify")

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._done = False
        self._notify: Callable[[], None] | None = None

    @property
    def done(self) -> bool:
        """Whether :meth:`set` was called."""
        return self._done

    def set(self) -> None:
        """Mark the event done and wake the waiter, if one is waiting."""
        with self._lock:  # the waiter may be abandoning its wait concurrently
            self._done = True
            if self._notify is not None:
                self._notify()
                self._notify = None

    def _arm(self, notify: Callable[[], None]) -> bool:
        with self._lock:
            if self._done:
                return False
            self._notify = notify
            return True

    def wait(self) -> None:
        """Return once :meth:`set` was called, letting other greenlets run meanwhile."""
        if self._done:
            return
        hub = get_hub_if_exists()
        if hub is None or getcurrent() is hub:
            done = allocate_lock()
            done.acquire()
            if self._arm(done.release):
                done.acquire()  # no gevent hub to yield to: block this thread
            return
        watcher = hub.loop.async_()
        waiter = Waiter(hub)
        watcher.start(waiter.switch, None)  # started before it can be sent
        try:
            if self._arm(watcher.send):  # thread-safe wake-up of this hub
                waiter.get()  # other greenlets run meanwhile
        finally:
            with self._lock:
                self._notify = None
            watcher.stop()
            watcher.close()


class _Job:
    """One call to run on the worker thread, and how to tell its caller it is done."""

    __slots__ = ("args", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self.fn = fn
        self.args = args
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = Completion()

    def run(self, resource: Any) -> None:
        try:
            self.result = self.fn(resource, *self.args)
        except BaseException as exc:  # handed to the caller
            self.error = exc
        self.done.set()


class NativeWorker:
    """One OS thread that creates a resource and runs every call on it, in order.

    Args:
        factory: Called once on the worker thread to create the resource. If it raises, the
            error is logged and the resource is ``None``.
        finalizer: Called with the resource on the worker thread by :meth:`stop`.
        name: Used in log messages.
    """

    def __init__(
        self,
        factory: Callable[[], Any],
        finalizer: Callable[[Any], None] | None = None,
        name: str = "worker",
    ) -> None:
        self.name = name
        self._factory = factory
        self._finalizer = finalizer
        self._queue: SimpleQueue = SimpleQueue()
        self._stopped = False
        _start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            resource = self._factory()
        except Exception:
            logger.warning("%s: could not be opened", self.name, exc_info=True)
            resource = None
        while True:
            job = self._queue.get()
            if job is None:
                break
            job.run(resource)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(resource, *args)`` on the worker thread and return its result.

        Args:
            fn: The function; it must not call back into this worker.
            *args: Its further arguments.

        Returns:
            What ``fn`` returned.

        Raises:
            BaseException: Whatever ``fn`` raised, or ``RuntimeError`` after :meth:`stop`.
        """
        if self._stopped:
            raise RuntimeError(f"{self.name} is stopped")
        job = _Job(fn, args)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def stop(self) -> None:
        """Run the finalizer after the queued calls, wait for it, and end the thread."""
        if self._stopped:
            return
        try:
            if self._finalizer is not None:
                self.call(self._finalizer)
        finally:
            self._stopped = True
            self._queue.put(None)
