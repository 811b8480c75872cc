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

from deeplake_sdk._coop import Completion, original

__all__ = ["NativeWorker"]

logger = logging.getLogger(__name__)

_start_new_thread = original("_thread", "start_new_thread")


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
