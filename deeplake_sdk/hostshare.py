"""One concurrency budget per service origin for all the processes of a host.

Clients that run as many short processes (one per hook, say) would otherwise each send up to
their own limit. Each process's limiter publishes, every :attr:`HostShare.refresh` seconds, its
requests in flight, its demand (in flight + queued) and its limit in a small JSON file per
origin, under an exclusive POSIX record lock (``lockf``: held by the process, so a child
forked while it is held does not keep it); it reads the others' entries in the same step. Its
limit then becomes its part of the host's, in proportion to demand
(``limit x mine / (mine + others')``), and its limit policy sees the host-wide number of
requests in flight. A process publishes at once when it goes idle (nothing in flight or
queued), and an idle process claims no part of the limit. Entries of processes that ended
(``kill(pid, 0)`` fails) or that have not written for :attr:`HostShare.stale` seconds are
dropped, so a crashed process leaks nothing for long.

The files live in ``$DEEPLAKE_LIMIT_DIR`` (default: ``<tempdir>/deeplake-sdk-<uid>/limits``);
``DEEPLAKE_LIMIT_DIR=off`` turns sharing off. Any I/O error turns it off for that limiter (it
keeps the whole limit) and is logged at DEBUG: sharing is an optimisation, never a failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from deeplake_sdk._coop import allocate_lock
from deeplake_sdk.config import says_off

__all__ = ["HostShare", "share_dir", "share_for"]

logger = logging.getLogger(__name__)

#: Environment variable naming the directory of the shared files (``off``: no sharing).
ENV_DIR = "DEEPLAKE_LIMIT_DIR"


#: Threads of one process take turns (a POSIX record lock does not exclude them).
_process_lock = allocate_lock()


def _after_fork_in_child() -> None:
    global _process_lock
    _process_lock = allocate_lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def share_dir() -> Path | None:
    """The directory of the shared files, or ``None`` when sharing is off."""
    value = os.environ.get(ENV_DIR)
    if value is not None:
        return None if not value.strip() or says_off(value) else Path(value)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"deeplake-sdk-{uid}" / "limits"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


class HostShare:
    """The shared file of one origin, as one process sees it.

    Args:
        path: The file.
        refresh: Seconds between two exchanges of a limiter.
        stale: Entries not written for this long are dropped.
    """

    def __init__(self, path: Path, refresh: float = 0.05, stale: float = 10.0) -> None:
        self.path = path
        self.refresh = refresh
        self.stale = stale
        self.pid = os.getpid()

    def __repr__(self) -> str:
        return f"<HostShare {self.path}>"

    def exchange(self, in_flight: int, demand: int, limit: int | None) -> tuple[int, int] | None:
        """Publish this process's figures; return the other live processes' totals.

        Args:
            in_flight: Requests this process has in flight.
            demand: In flight plus queued.
            limit: This process's limit (informational).

        Returns:
            ``(others in flight, others' demand)``, or ``None`` when the file cannot be used.
        """
        try:
            with _process_lock:
                return self._exchange(in_flight, demand, limit)
        except (OSError, ValueError) as exc:
            logger.debug("%r: host-wide sharing off for this process: %s", self, exc)
            return None

    def _exchange(self, in_flight: int, demand: int, limit: int | None) -> tuple[int, int]:
        now = time.time()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as f:
            fcntl.lockf(f.fileno(), fcntl.LOCK_EX)
            try:
                text = f.read()
                entries = json.loads(text) if text.strip() else {}
                if not isinstance(entries, dict):
                    entries = {}
                others_in_flight = others_demand = 0
                live = {}
                for key, entry in entries.items():
                    pid = int(key)
                    if pid == self.pid or now - float(entry[3]) > self.stale or not _alive(pid):
                        continue
                    live[key] = entry
                    others_in_flight += int(entry[0])
                    others_demand += int(entry[1])
                live[str(self.pid)] = [in_flight, demand, limit, now]
                f.seek(0)
                f.truncate()
                f.write(json.dumps(live))
                f.flush()
            finally:
                fcntl.lockf(f.fileno(), fcntl.LOCK_UN)
        return others_in_flight, others_demand

    def leave(self) -> None:
        """Remove this process's entry (at exit; a crash is covered by the liveness check).

        The last process to leave removes the file, and the directories if they are empty.
        """
        with (
            _process_lock,
            contextlib.suppress(OSError, ValueError),
            open(self.path, "r+", encoding="utf-8") as f,
        ):
            fcntl.lockf(f.fileno(), fcntl.LOCK_EX)
            entries = json.loads(f.read() or "{}")
            entries.pop(str(os.getpid()), None)
            if entries:
                f.seek(0)
                f.truncate()
                f.write(json.dumps(entries))
                return
            self.path.unlink()
        for directory in (self.path.parent, self.path.parent.parent):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if empty


def share_for(origin: str) -> HostShare | None:
    """The shared file of ``origin`` (a normalised origin), or ``None`` when sharing is off."""
    root = share_dir()
    if root is None:
        return None
    name = hashlib.sha256(origin.encode("utf-8")).hexdigest()[:20]
    return HostShare(root / f"{name}.json")
