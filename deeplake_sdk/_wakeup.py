"""A wake-up signal that works across native threads and gevent hubs.

:class:`Beacon` lets any number of waiters (greenlets of any hub, plain threads) wait until
some state changes, and lets any thread announce that it did. A waiter in a running gevent hub
waits on its hub (other greenlets keep running) and is woken through a thread-safe async
watcher; a waiter without a hub blocks on a native lock. A generation counter closes the race
between checking the state and starting to wait::

    while True:
        generation = beacon.generation
        if done():
            break
        beacon.wait(generation, timeout=remaining)

Nothing here is patched or depends on whether ``gevent.monkey.patch_all()`` ran.
"""

from __future__ import annotations

from collections.abc import Callable

from deeplake_sdk._coop import allocate_lock, hub_if_exists, in_greenlet, load_gevent

__all__ = ["Beacon"]


class Beacon:
    """Wake every waiter when :meth:`notify` is called (from any thread)."""

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._waiters: list[Callable[[], None]] = []
        self.generation = 0

    def notify(self) -> None:
        """Announce a change: every current waiter returns."""
        with self._lock:
            self.generation += 1
            waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()

    def wait(self, generation: int, timeout: float | None, *, native: bool = False) -> None:
        """Wait until the generation moves past ``generation`` or ``timeout`` seconds pass.

        Args:
            generation: The :attr:`generation` read before checking the state.
            timeout: Longest wait in seconds (``None``: no limit).
            native: Block the calling thread even inside a gevent hub (signal handlers, exit).
        """
        hub = None if native else hub_if_exists()
        if hub is None or not in_greenlet(hub):
            self._wait_native(generation, timeout)
        else:
            self._wait_hub(hub, generation, timeout)

    def _wait_native(self, generation: int, timeout: float | None) -> None:
        done = allocate_lock()
        done.acquire()
        with self._lock:
            if self.generation != generation:
                return
            self._waiters.append(done.release)
        done.acquire(True, -1 if timeout is None else max(0.0, timeout))
        self._forget(done.release)

    def _wait_hub(self, hub: object, generation: int, timeout: float | None) -> None:
        gevent = load_gevent()
        watcher = hub.loop.async_()  # type: ignore[attr-defined]
        waiter = gevent.hub.Waiter(hub)
        watcher.start(waiter.switch, None)
        try:
            with self._lock:
                if self.generation != generation:
                    return
                self._waiters.append(watcher.send)
            with gevent.Timeout(timeout, False):
                waiter.get()
        finally:
            self._forget(watcher.send)
            watcher.stop()
            watcher.close()

    def _forget(self, wake: Callable[[], None]) -> None:
        with self._lock:
            if wake in self._waiters:
                self._waiters.remove(wake)
