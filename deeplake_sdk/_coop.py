"""Cooperative-execution helpers: how to block without freezing other greenlets or threads.

Nothing here patches anything; the helpers only look at what the user has done:

* :func:`sockets_patched` - did the user run ``gevent.monkey.patch_all()`` (sockets)?
* :func:`hub_if_exists` - the calling thread's gevent hub, without creating one. A thread
  without a hub runs no greenlets, so blocking it blocks nobody else.
* :func:`cooperative_sleep` - :func:`gevent.sleep` where greenlets may be waiting,
  :func:`time.sleep` in plain threads (which would otherwise get a hub created for nothing).
* :func:`holding` - hold a native lock that greenlets of one thread and other threads share,
  waiting cooperatively for it (a greenlet that blocked its thread on it would never let the
  greenlet holding it run again).
* :class:`Completion` - a one-shot event set from any thread and waited for on the waiter's
  own hub (or natively when it has none): the only cross-thread wake-up the SDK uses.
* :func:`run_parallel` - map a function over items on greenlets, and when the caller is
  interrupted, kill every child and wait for it before the interruption propagates.

gevent itself is imported only when something needs it (:func:`load_gevent`): a process that
never runs greenlets (a hook that journals one event and exits) does not pay for it. Until
``gevent.monkey`` is imported nothing can have been patched, so :func:`original` then returns
the module's own function, and a thread without gevent imported has no hub.

Why not :class:`gevent.lock.Semaphore` or :class:`gevent.event.Event` across threads: such an
object belongs to the hub of the first thread that waited on it, and a wake-up crossing threads
is delivered by a callback on *that* hub. If the owning thread is blocked outside its hub (in
``Thread.join()``, ``time.sleep``, plain synchronous code) or has ended, waiters of every other
thread are never woken, although the resource is free.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Completion",
    "Failure",
    "allocate_lock",
    "cooperative_sleep",
    "current_task",
    "holding",
    "hub_if_exists",
    "in_greenlet",
    "load_gevent",
    "original",
    "run_parallel",
    "sockets_patched",
]


def original(module: str, name: str) -> Any:
    """``module.name`` as it was before any monkey-patching (``gevent.monkey.get_original``)."""
    if "gevent.monkey" not in sys.modules:  # nothing can have been patched yet
        return getattr(importlib.import_module(module), name)
    from gevent.monkey import get_original

    return get_original(module, name)


#: A native (never monkey-patched) lock factory: safe across threads and hubs, never yields.
allocate_lock = original("_thread", "allocate_lock")


_gevent: list[Any] = []  # the module, once imported whole
_gevent_lock = allocate_lock()


def load_gevent() -> Any:
    """gevent, with the parts the SDK uses, imported whole before any thread uses it.

    Its first import is not thread-safe (it swaps in the compiled versions of its modules'
    globals): another thread calling into it meanwhile can fail with ``NameError``. So the
    SDK imports it here, under a lock, and looks for a hub only once it is whole.
    """
    if not _gevent:
        with _gevent_lock:
            if not _gevent:
                import gevent
                import gevent.event
                import gevent.hub
                import gevent.pool

                _gevent.append(gevent)
    return _gevent[0]


def _patched(module: str) -> bool:
    if "gevent.monkey" not in sys.modules:
        return False
    from gevent.monkey import is_module_patched

    return bool(is_module_patched(module))


def sockets_patched() -> bool:
    """Tell whether the user monkey-patched ``socket`` (then I/O already yields)."""
    return _patched("socket")


_hub_getters: list[Callable[[], Any]] = []  # gevent's, once gevent is imported


def hub_if_exists() -> Any:
    """Return the calling thread's gevent hub, or ``None`` if it has none (never creates one)."""
    if not _hub_getters:
        if "gevent" not in sys.modules:  # no hub without gevent
            return None
        load_gevent()  # imported by the program, or being imported by another thread
        try:  # gevent >= 20: tells whether this thread already has a hub, without creating one
            from gevent._hub_local import get_hub_if_exists
        except ImportError:  # pragma: no cover
            from gevent.hub import _get_hub as get_hub_if_exists  # type: ignore[attr-defined,no-redef]
        _hub_getters.append(get_hub_if_exists)
    return _hub_getters[0]()


def current_task() -> Any:
    """The running greenlet: every thread has one, with gevent or without (a per-task key)."""
    from greenlet import getcurrent  # gevent's own, without importing gevent

    return getcurrent()


def in_greenlet(hub: Any) -> bool:
    """Whether the caller runs in a greenlet of ``hub`` (not in the hub itself)."""
    return current_task() is not hub


def cooperative_sleep(seconds: float) -> None:
    """Sleep, letting other greenlets of this thread run if there can be any."""
    if seconds <= 0:
        return
    if _patched("time") or hub_if_exists() is not None:
        load_gevent().sleep(seconds)
    else:
        time.sleep(seconds)


#: Pause between tries of a contended lock inside a hub (greenlets of this thread run meanwhile).
_LOCK_POLL_S = 0.001


@contextlib.contextmanager
def holding(lock: Any) -> Iterator[None]:
    """Hold a native lock (:data:`allocate_lock`) for the ``with`` block.

    Unlike ``with lock:``, a greenlet inside a running hub waits for a contended lock
    cooperatively (trying again every millisecond), so the greenlet of its own thread that
    holds the lock, and may be waiting for I/O or another thread, can go on and release it.
    Plain threads block natively. Meant for locks that are rarely contended (first uses).
    """
    if not lock.acquire(False):
        hub = hub_if_exists()
        if hub is None or not in_greenlet(hub):
            lock.acquire()
        else:
            while not lock.acquire(False):
                cooperative_sleep(_LOCK_POLL_S)
    try:
        yield
    finally:
        lock.release()


class Completion:
    """A one-shot event: set once from any thread, waited for by one waiter at a time.

    A waiter inside a running gevent hub waits on its own hub (other greenlets of its thread
    keep running) and is woken through a thread-safe ``async`` watcher of that hub; a waiter
    without one (plain code, or the hub itself) blocks its thread on a native lock. :meth:`set`
    may run before, during or after :meth:`wait`, from any thread. A waiter that gives up
    (timeout, ``gevent.Timeout``, ``kill``, ``KeyboardInterrupt``) leaves nothing armed behind:
    a later :meth:`set` touches no watcher of a closed wait.
    """

    __slots__ = ("_done", "_lock", "_wake")

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._done = False
        self._wake: Callable[[], Any] | None = None

    def is_set(self) -> bool:
        """Whether :meth:`set` was called."""
        return self._done

    def set(self) -> None:
        """Mark the event done and wake its waiter, if one is waiting (any thread)."""
        with self._lock:  # the waiter may be abandoning its wait concurrently
            self._done = True
            wake, self._wake = self._wake, None
            if wake is not None:
                wake()

    def set_in_forked_child(self) -> None:
        """:meth:`set`, in a forked child whose thread that held the lock may not exist."""
        self._lock = allocate_lock()
        self.set()

    def _arm(self, wake: Callable[[], Any]) -> bool:
        with self._lock:
            if self._done:
                return False
            if self._wake is not None:  # a second waiter would leave the first asleep
                raise RuntimeError("a Completion has one waiter at a time; it already has one")
            self._wake = wake
            return True

    def _disarm(self) -> None:
        with self._lock:
            self._wake = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`set` is called or ``timeout`` seconds pass.

        Args:
            timeout: Longest wait in seconds (``None``: no limit).

        Returns:
            Whether the event is set.

        Raises:
            RuntimeError: Another waiter is waiting (one waiter at a time).
        """
        if self._done:
            return True
        hub = hub_if_exists()
        if hub is None or not in_greenlet(hub):
            lock = allocate_lock()
            lock.acquire()
            if not self._arm(lock.release):
                return True
            try:
                lock.acquire(True, -1 if timeout is None else max(0.0, timeout))
            finally:
                self._disarm()
            return self._done
        gevent = load_gevent()
        watcher = hub.loop.async_()
        waiter = gevent.hub.Waiter(hub)
        watcher.start(waiter.switch, None)  # started before anyone can send it
        try:
            if not self._arm(watcher.send):  # thread-safe wake-up of this hub
                return True
            if timeout is None:
                waiter.get()  # other greenlets of this thread run meanwhile
            else:
                with gevent.Timeout(timeout, False):
                    waiter.get()
        finally:
            self._disarm()  # no set() can touch the watcher after this
            watcher.stop()
            watcher.close()
        return self._done


@dataclass
class Failure:
    """A failed item of :func:`run_parallel`: its exception."""

    error: Exception


def run_parallel(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    size: int,
    *,
    catch: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> list[Any]:
    """Run ``fn`` over ``items`` on greenlets; results in input order, failures as values.

    At most ``size`` run at once (the endpoint's limiter bounds the requests anyway). A single
    item runs in the calling greenlet.

    Cancellation: if the caller is interrupted while it waits (``gevent.Timeout``,
    ``GreenletExit`` from ``kill``, ``KeyboardInterrupt``), every child is killed and waited
    for *before* the interruption propagates, so no child is left running (or sending) after
    the caller gave up. A child killed in the middle of a request cancels it (see
    :mod:`deeplake_sdk.transport`).

    Args:
        fn: Called with each item.
        items: The items.
        size: Most children running at once.
        catch: Exceptions that become a :class:`Failure` in the result list. Any other
            exception of a child is raised once every child has finished (the first one, in
            input order); ``()`` catches nothing.

    Returns:
        ``fn(item)`` for each item, or ``Failure(error)`` for one that raised a ``catch``
        exception.
    """
    items = list(items)
    results: list[Any] = [None] * len(items)
    raised: list[tuple[int, BaseException]] = []

    def one(index: int, item: Any) -> None:
        try:
            results[index] = fn(item)
        except catch as exc:
            results[index] = Failure(exc)  # type: ignore[arg-type]
        except Exception as exc:  # raised to the caller below (gevent would only print it)
            raised.append((index, exc))

    if len(items) <= 1:
        for index, item in enumerate(items):
            one(index, item)
    else:
        pool = load_gevent().pool.Pool(max(1, min(len(items), size)))
        children = []
        try:
            for index, item in enumerate(items):
                children.append(pool.spawn(one, index, item))  # waits for room in the pool
            pool.join()
        except BaseException:
            # The caller gave up: no child may outlive it. kill() waits for each to exit;
            # a child in the middle of a request cancels it before exiting.
            pool.kill(block=True)
            raise
    if raised:
        raise min(raised, key=lambda pair: pair[0])[1]
    return results
