"""The cross-process drain lock of a journal: ``flock`` on a sidecar file.

Only one process holds it at a time; the kernel releases it when the holder dies, SIGKILL
included (the lock belongs to the open file description, which dies with the last descriptor
on it). Within a process it is re-entrant: every holder counts, the lock is released when the
count is back to zero.

Fork: the child inherits a copy of the descriptor, hence of the parent's lock. The child must
not unlock it (``LOCK_UN`` on the shared description would release the parent's lock): it only
closes its copy, which leaves the parent's lock in place while the parent keeps its own
descriptor, and starts with a count of zero.
"""

from __future__ import annotations

import errno
import fcntl
import os
import weakref

from deeplake_sdk._coop import original

__all__ = ["DrainLock"]

_RLock = original("_thread", "RLock")


class DrainLock:
    """A process's hold on one journal's drain lock.

    Args:
        path: The sidecar file (created 0600), or ``None`` for an in-memory journal, whose
            lock is process-local (always granted, counted).
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fd: int | None = None
        self._count = 0
        self._lock = _RLock()  # re-entrant: a signal handler may come in on the same thread
        _locks.add(self)

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._count > 0

    def try_acquire(self) -> bool:
        """Take the lock without waiting.

        Returns:
            ``True`` if this process now holds it (count incremented), ``False`` if another
            process does.
        """
        with self._lock:
            if self._count == 0 and self.path is not None:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        return False
                    raise
            self._count += 1
            return True

    def release(self) -> None:
        """Give back one hold; the last one releases the lock (no-op if none is held)."""
        with self._lock:
            if self._count == 0:
                return
            self._count -= 1
            if self._count == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Release the lock if held and close the sidecar file."""
        with self._lock:
            self._count = 0
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)  # closing the only descriptor releases the lock
        _locks.discard(self)

    def _forget_in_child(self) -> None:
        fd, self._fd = self._fd, None
        self._count = 0
        self._lock = _RLock()
        if fd is not None:
            os.close(fd)  # the child's copy only: the parent's lock stays


_locks: weakref.WeakSet[DrainLock] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lock in list(_locks):
        lock._forget_in_child()
    _locks.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
