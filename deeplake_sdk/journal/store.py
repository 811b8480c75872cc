"""The journal's durable store: entries kept on local disk until the service confirmed them.

One journal per (endpoint origin, org, workspace): an SQLite file in WAL mode under a root
directory (default :func:`default_journal_root`), shared by every process of the host that
uses that workspace. :meth:`JournalStore.append` returns once its entries are committed and
fsynced; concurrent appends of a process share one transaction and one fsync (group commit,
see :mod:`deeplake_sdk.journal._committer`). A drainer reads :meth:`~JournalStore.pending`
entries, counts its attempts, removes them with :meth:`~JournalStore.complete` once the
service confirmed them, or sets them aside with :meth:`~JournalStore.reject`.
:meth:`~JournalStore.try_lock_drain` makes sure only one process drains a journal at a time.

Usable from greenlets (monkey-patched or not), native threads, plain scripts, signal handlers
and atexit: every operation runs on the journal's committer thread and the caller waits
cooperatively. After ``fork()`` the child gets a fresh connection, thread and owner id on first
use, and does not hold the parent's drain lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deeplake_sdk._coop import allocate_lock, original
from deeplake_sdk.errors import ConfigError
from deeplake_sdk.http_errors import service_base
from deeplake_sdk.journal import _sqlite
from deeplake_sdk.journal._committer import Committer
from deeplake_sdk.journal._drainlock import DrainLock
from deeplake_sdk.journal._model import (
    PENDING,
    REJECTED,
    Entry,
    EntryInfo,
    JournalCorruptError,
    JournalCounters,
    JournalError,
    JournalInfo,
    JournalStats,
    NewEntry,
)

__all__ = [
    "MAX_ENTRY_BYTES",
    "PENDING",
    "REJECTED",
    "Entry",
    "EntryInfo",
    "JournalCorruptError",
    "JournalCounters",
    "JournalError",
    "JournalInfo",
    "JournalStats",
    "JournalStore",
    "NewEntry",
    "default_journal_root",
    "journal_path",
    "list_entries",
    "list_journals",
    "normalize_origin",
]

#: Largest payload of one entry (the store's own bound; the service's limits are lower).
MAX_ENTRY_BYTES = 256 << 20
#: File name suffix of a journal (its SQLite database).
SUFFIX = ".sqlite"


# ---------------------------------------------------------------------------------------------
# Where journals live


def default_journal_root() -> Path:
    """The default root directory of the journals.

    Returns:
        ``$DEEPLAKE_JOURNAL_DIR`` if set, else ``~/.deeplake/journal``.
    """
    explicit = os.environ.get("DEEPLAKE_JOURNAL_DIR")
    return Path(explicit).expanduser() if explicit else Path.home() / ".deeplake" / "journal"


def normalize_origin(origin: str) -> str:
    """The canonical form of an endpoint URL, so that spellings of one endpoint share a journal.

    The same text as every other per-service key of the SDK
    (:func:`~deeplake_sdk.http_errors.service_base`): scheme and host lower-cased, credentials,
    query and fragment dropped, a trailing slash removed (a path prefix is kept: it may name
    another service).

    Args:
        origin: The endpoint URL, e.g. ``https://api.deeplake.ai``.

    Returns:
        The canonical URL.

    Raises:
        ValueError: Not an absolute http(s) URL.
    """
    try:
        return service_base(origin.strip())
    except ConfigError:
        raise ValueError(f"not an endpoint URL: {origin!r} (expected e.g. https://host)") from None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-.")[:40] or "x"


def journal_path(root: Path | str, origin: str, org: str, workspace: str) -> Path:
    """The file of the journal of one endpoint, org and workspace: the one place for that key.

    The name is a readable slug (host, org, workspace) followed by a hash of the exact key, so
    that distinct keys never share a file.

    Args:
        root: The journals' root directory.
        origin: Endpoint URL (normalised by :func:`normalize_origin`).
        org: Organisation id.
        workspace: Workspace id.

    Returns:
        ``root/<host>_<org>_<workspace>-<hash>.sqlite``.

    Raises:
        ValueError: An empty org or workspace, or an origin that is not a URL.
    """
    if not org or not workspace:
        raise ValueError("a journal needs a non-empty org and workspace")
    canonical = normalize_origin(origin)
    key = json.dumps([canonical, org, workspace], ensure_ascii=False)
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    host = urlsplit(canonical).netloc
    name = f"{_slug(host)}_{_slug(org)}_{_slug(workspace)}-{digest}{SUFFIX}"
    return Path(root).expanduser().absolute() / name


def _file_bytes(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += os.stat(f"{path}{suffix}").st_size
    return total


def list_journals(root: Path | str) -> list[JournalInfo]:
    """Describe every journal under a root, without creating or changing anything.

    Args:
        root: The journals' root directory (a missing one holds no journal).

    Returns:
        One :class:`JournalInfo` per journal file, by origin, org and workspace; an
        unreadable file is listed (first) with its ``error`` rather than raising.
    """
    directory = Path(root).expanduser()
    if not directory.is_dir():
        return []
    infos = []
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        if not path.is_file():
            continue
        ident: dict[str, str] = {}
        per_state: dict[str, tuple[int, int, float | None]] = {}
        owners: dict[str, int] = {}
        error = None
        try:
            conn = _sqlite.inspect(str(path))
            if conn is not None:
                try:
                    ident = _sqlite.identity(conn)
                    per_state, owners = _sqlite.stats(conn)
                finally:
                    conn.close()
        except (JournalError, sqlite3.Error) as exc:
            error = str(_sqlite.map_error(exc, str(path)))
        pending = per_state.get(PENDING, (0, 0, None))
        rejected = per_state.get(REJECTED, (0, 0, None))
        infos.append(
            JournalInfo(
                path=path,
                origin=ident.get("origin", ""),
                org=ident.get("org", ""),
                workspace=ident.get("workspace", ""),
                pending=pending[0],
                rejected=rejected[0],
                bytes=pending[1] + rejected[1],
                file_bytes=_file_bytes(path),
                oldest=pending[2],
                owners=owners,
                error=error,
            )
        )
    return sorted(infos, key=lambda i: (i.origin, i.org, i.workspace, i.path.name))


def list_entries(
    path: Path | str, *, state: str | None = None, limit: int | None = None
) -> list[EntryInfo]:
    """List the entries of a journal file (without payloads), creating nothing.

    Args:
        path: The journal file.
        state: Only entries in this state (``"pending"`` or ``"rejected"``).
        limit: At most this many (the first in seq order).

    Returns:
        The entries in seq order.

    Raises:
        JournalCorruptError: The file is damaged or not a journal.
        JournalError: It cannot be opened.
    """
    try:
        conn = _sqlite.inspect(str(path))
        if conn is None:
            return []
        try:
            rows = _sqlite.by_state(conn, state, limit, data=False)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise _sqlite.map_error(exc, str(path)) from exc
    return [_entry_info(row) for row in rows]


# ---------------------------------------------------------------------------------------------
# Rows to values


def _entry(row: tuple[Any, ...]) -> Entry:
    seq, op, tbl, path, _size, meta, owner, created, attempts, state, error, data = row
    return Entry(
        seq, op, tbl, path, bytes(data), json.loads(meta), owner, created, attempts, state, error
    )


def _entry_info(row: tuple[Any, ...]) -> EntryInfo:
    seq, op, tbl, path, size, meta, owner, created, attempts, state, error = row
    return EntryInfo(
        seq, op, tbl, path, size, json.loads(meta), owner, created, attempts, state, error
    )


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"journal entry {what} must be str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"journal entry {what} is not valid text: {value!r} ({exc})") from None
    return value


def _json_ready(meta: Mapping[str, Any], what: str) -> str:
    try:
        return _sqlite.dump_meta(meta)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"journal {what} must be JSON-serialisable: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Owner id and per-process backends


def _new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


_owner = [_new_owner()]


@dataclass(frozen=True)
class _Spec:
    path: str | None
    identity: dict[str, str] | None
    durable: bool


class _Backend:
    """What one process keeps open for one journal: its committer and its drain lock."""

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec
        name = f"journal {spec.path}" if spec.path else "in-memory journal"
        self.committer = Committer(
            spec.path,
            lambda: _sqlite.open_journal(spec.path, spec.durable, spec.identity),
            close_across_fork=spec.path is not None,
            name=name,
        )
        lock_path = None if spec.path is None else spec.path[: -len(SUFFIX)] + ".lock"
        self.drain = DrainLock(lock_path)
        self.refs = 0

    def shutdown(self) -> None:
        try:
            self.committer.stop()
        finally:
            self.drain.close()


_RLock = original("_thread", "RLock")
_backends: dict[str, _Backend] = {}
_backends_lock = allocate_lock()
#: Serialises a store's first use after a fork, so that concurrent callers attach it once.
_attach_lock = _RLock()


def _acquire(spec: _Spec) -> _Backend:
    if spec.path is None:
        backend = _Backend(spec)
        backend.refs = 1
        return backend
    with _backends_lock:
        backend = _backends.get(spec.path)
        if backend is None:
            _sqlite.create_file(spec.path)
            backend = _backends[spec.path] = _Backend(spec)
        elif backend.spec.durable != spec.durable:
            raise JournalError(
                f"journal {spec.path} is already open in this process with "
                f"durable={backend.spec.durable}"
            )
        backend.refs += 1
        return backend


def _release(backend: _Backend) -> None:
    if backend.spec.path is None:
        backend.shutdown()
        return
    with _backends_lock:
        backend.refs -= 1
        last = backend.refs == 0
        if last and _backends.get(backend.spec.path) is backend:
            del _backends[backend.spec.path]
    if last:
        backend.shutdown()


def _after_fork_in_child() -> None:
    global _backends_lock, _attach_lock
    _backends_lock = allocate_lock()
    _attach_lock = _RLock()
    _backends.clear()  # the parent's; stores reattach on first use
    _owner[0] = _new_owner()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _noop(conn: sqlite3.Connection) -> None:
    return None


# ---------------------------------------------------------------------------------------------
# The store


class JournalStore:
    """A journal: durable entries, their drain state, and the cross-process drain lock.

    Create one with :meth:`open` (a file shared by the host's processes) or :meth:`memory`
    (the null journal: same interface, in memory, not durable, process-local). Instances of one
    file in one process share one committer thread, connection and drain lock.
    """

    def __init__(self, spec: _Spec) -> None:
        """Use :meth:`open` or :meth:`memory`."""
        self._spec = spec
        self._closed = False
        self._pid = 0
        self._backend: _Backend | None = None
        self._attach()

    @classmethod
    def open(
        cls, root: Path | str, origin: str, org: str, workspace: str, *, durable: bool = True
    ) -> JournalStore:
        """Open (creating if needed) the journal of an endpoint, org and workspace.

        Args:
            root: The journals' root directory (created 0700 if missing), e.g.
                :func:`default_journal_root`.
            origin: Endpoint URL.
            org: Organisation id.
            workspace: Workspace id.
            durable: Fsync every commit (``synchronous=FULL``). ``False`` keeps entries safe
                from a crash of the process but not of the machine (tests, benchmarks).

        Returns:
            The store.

        Raises:
            JournalCorruptError: The file exists but is damaged or not a journal.
            JournalError: It cannot be created or opened, belongs to another key, or was
                written by a newer SDK.
        """
        path = journal_path(root, origin, org, workspace)
        identity = {"origin": normalize_origin(origin), "org": org, "workspace": workspace}
        return cls(_Spec(str(path), identity, durable))

    @classmethod
    def memory(cls) -> JournalStore:
        """The null journal: in memory, not durable, process-local, same interface.

        A forked child starts with an empty one (the parent's entries stay the parent's).
        """
        return cls(_Spec(None, None, False))

    def _attach(self) -> None:
        backend = _acquire(self._spec)
        try:
            backend.committer.call(_noop)  # opens and checks the file now
        except BaseException:
            _release(backend)
            raise
        self._backend, self._pid = backend, os.getpid()

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        if self._closed:
            raise JournalError(f"{self!r} is closed")
        if self._pid != os.getpid():  # forked: the parent's thread and connection are not ours
            self._reattach()
        assert self._backend is not None
        return self._backend.committer.call(fn, *args, **kw)

    def _reattach(self) -> None:
        # Nothing under the lock waits (no switch to another greenlet of this thread): the
        # parent checked the file, the first operation reopens it.
        with _attach_lock:
            if self._pid != os.getpid():
                self._backend, self._pid = _acquire(self._spec), os.getpid()

    @property
    def owner(self) -> str:
        """Id of this process's writer (``host:pid:random``); a forked child gets a new one."""
        return _owner[0]

    @property
    def path(self) -> Path | None:
        """The journal file (``None`` for the null journal)."""
        return None if self._spec.path is None else Path(self._spec.path)

    @property
    def durable(self) -> bool:
        """Whether commits are fsynced."""
        return self._spec.durable

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def counters(self) -> JournalCounters:
        """Work this process did on this journal (calls, batches, transactions...)."""
        if self._backend is None or self._pid != os.getpid():
            return JournalCounters(0, 0, 0, 0, 0)
        return self._backend.committer.counters()

    # -- writing ---------------------------------------------------------------------------

    def append(self, entries: Sequence[NewEntry]) -> list[int]:
        """Journal entries; they are durable (committed and fsynced) when this returns.

        Concurrent callers share one transaction and one fsync. A greenlet in a running hub
        lets other greenlets run while it waits; a thread without a hub blocks only itself.

        Args:
            entries: The entries, in order.

        Returns:
            Their seqs, in the same order.

        Raises:
            TypeError: An entry is not a :class:`NewEntry`, or its meta is not JSON.
            ValueError: A payload is larger than :data:`MAX_ENTRY_BYTES`, or a text field is
                not valid Unicode.
            JournalError: The journal cannot be written (closed, damaged, disk full...).
        """
        now = time.time()
        owner = self.owner
        rows = []
        total = 0
        for entry in entries:
            if not isinstance(entry, NewEntry):
                raise TypeError(f"expected NewEntry, got {type(entry).__name__}")
            if not isinstance(entry.data, (bytes, bytearray, memoryview)):
                raise TypeError(f"entry data must be bytes, not {type(entry.data).__name__}")
            data = bytes(entry.data)
            if len(data) > MAX_ENTRY_BYTES:
                raise ValueError(
                    f"journal entry for {entry.path!r} holds {len(data)} bytes, more than the "
                    f"journal's limit of {MAX_ENTRY_BYTES} bytes per entry"
                )
            rows.append(
                (
                    _text(entry.op, "op"),
                    _text(entry.table, "table"),
                    _text(entry.path, "path"),
                    len(data),
                    _json_ready(entry.meta, "entry meta"),
                    owner,
                    now,
                    data,
                )
            )
            total += len(data)
        if not rows:
            return []
        return self._call(_sqlite.append, rows, write=True, nbytes=total, entries=len(rows))

    def begin_attempt(
        self,
        seqs: Sequence[int],
        meta_updates: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> None:
        """Durably count a sending attempt and merge meta updates, in one transaction.

        Args:
            seqs: Entries about to be sent: ``attempts += 1`` each.
            meta_updates: ``seq -> fields`` merged into that entry's meta (e.g. the size an
                append expects), so a later sender can tell whether it took effect.
        """
        updates = {int(k): dict(v) for k, v in (meta_updates or {}).items()}
        for update in updates.values():
            _json_ready(update, "meta update")
        self._call(_sqlite.begin_attempt, [int(s) for s in seqs], updates, write=True)

    def complete(
        self,
        seqs: Sequence[int],
        lanes: Mapping[tuple[str, str], Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Durably, in one transaction: delete confirmed entries and update lane hints.

        Args:
            seqs: Entries the service confirmed.
            lanes: ``(table, path) -> hint`` (a JSON object) to store, or ``None`` to delete.
        """
        hints = [
            (
                _text(t, "lane table"),
                _text(p, "lane path"),
                None if h is None else _json_ready(h, "lane hint"),
            )
            for (t, p), h in (lanes or {}).items()
        ]
        self._call(_sqlite.complete, [int(s) for s in seqs], hints, write=True)

    def reject(self, seq: int, reason: str) -> None:
        """Durably set an entry aside (state ``rejected``); :meth:`pending` skips it.

        Args:
            seq: The entry.
            reason: Why the service refused it (shown by ``deeplake-sdk journal ls``).
        """
        self._call(_sqlite.reject, int(seq), str(reason), write=True)

    def requeue(self, seqs: Sequence[int]) -> None:
        """Make rejected entries pending again; they keep their seqs, hence their order."""
        self._call(_sqlite.requeue, [int(s) for s in seqs], write=True)

    def discard(self, seqs: Sequence[int]) -> None:
        """Delete rejected entries for good (pending ones are left alone)."""
        self._call(_sqlite.discard, [int(s) for s in seqs], write=True)

    # -- reading ---------------------------------------------------------------------------

    def pending(self, limit: int = 500, max_bytes: int = 16 << 20, after: int = 0) -> list[Entry]:
        """The first pending entries, in seq order.

        Args:
            limit: At most this many.
            max_bytes: Stop before the payloads exceed this many bytes, but always return at
                least one entry if there is one (even larger).
            after: Only entries with a larger seq.

        Returns:
            The entries.
        """
        rows = self._call(_sqlite.pending, int(limit), int(max_bytes), int(after))
        return [_entry(row) for row in rows]

    def rejected(self) -> list[Entry]:
        """Every rejected entry, in seq order."""
        return [_entry(row) for row in self._call(_sqlite.by_state, REJECTED, None, True)]

    def entries(self, state: str | None = None, limit: int | None = None) -> list[EntryInfo]:
        """Entries without their payloads, in seq order (for listings).

        Args:
            state: Only this state (``"pending"`` or ``"rejected"``); all by default.
            limit: At most this many.
        """
        rows = self._call(_sqlite.by_state, state, limit, False)
        return [_entry_info(row) for row in rows]

    def states(self, seqs: Sequence[int]) -> dict[int, str]:
        """The state of each entry still present (absent means completed or discarded).

        Returns:
            ``seq -> "pending" | "rejected"``.
        """
        return self._call(_sqlite.states, [int(s) for s in seqs])

    def stats(self) -> JournalStats:
        """Counts and bytes of pending and rejected entries, oldest pending, owners."""
        per_state, owners = self._call(_sqlite.stats)
        pending = per_state.get(PENDING, (0, 0, None))
        rejected = per_state.get(REJECTED, (0, 0, None))
        return JournalStats(pending[0], pending[1], rejected[0], rejected[1], pending[2], owners)

    def lanes(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The lane hints stored for these ``(table, path)`` keys (absent keys omitted)."""
        found = self._call(_sqlite.lanes, [(str(t), str(p)) for t, p in keys])
        return {key: json.loads(text) for key, text in found.items()}

    # -- the drain lock --------------------------------------------------------------------

    def _drain(self) -> DrainLock:
        if self._closed:
            raise JournalError(f"{self!r} is closed")
        if self._pid != os.getpid():
            self._reattach()
        assert self._backend is not None
        return self._backend.drain

    def try_lock_drain(self) -> bool:
        """Take the journal's drain lock without waiting.

        Only one process holds it at a time; the kernel releases it when the holder dies
        (SIGKILL included). Re-entrant within a process: each ``True`` needs one
        :meth:`unlock_drain`. A forked child does not hold its parent's lock.

        Returns:
            ``True`` if this process now holds it, ``False`` if another process does.
        """
        return self._drain().try_acquire()

    def unlock_drain(self) -> None:
        """Give back one hold of the drain lock (no-op if this process holds none)."""
        if self._closed or self._pid != os.getpid() or self._backend is None:
            return
        self._backend.drain.release()

    @property
    def drain_locked(self) -> bool:
        """Whether this process holds the drain lock."""
        return (
            not self._closed
            and self._pid == os.getpid()
            and self._backend is not None
            and self._backend.drain.held
        )

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Release this instance; the last one of a journal in a process closes it."""
        if self._closed:
            return
        self._closed = True
        if self._backend is not None and self._pid == os.getpid():
            _release(self._backend)

    def __enter__(self) -> JournalStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._spec.path or "memory"
        return f"JournalStore({where!r})"
