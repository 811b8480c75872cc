"""What the writing process sees of its journaled, not yet confirmed writes.

Reads in the process that wrote (or replays) journal entries must see them before the service
does. The overlay keeps those entries per file and answers, for one path:

* the file's full content, when the pending entries determine it (a write, plus appends);
* that the file is deleted;
* that the content depends on the table *and* on pending entries (an append to a stored file,
  a rename): the reader must wait for those entries to be confirmed and read the table;
* nothing (no pending entry touches the path).

Session events pending for a session file are listed so that a reader can merge them with
the rows already stored (by row id). Entries leave the overlay once confirmed or rejected;
confirmed events stay listed for the read-lag window (:meth:`Overlay.retire`), since the service
may not show a new row to the next read at once, and a reader drops those it already sees.
The overlay is shared by every filesystem and session log of a journal in the process; it is
safe to use from several threads (one short lock, no I/O under it).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from deeplake_sdk._coop import allocate_lock
from deeplake_sdk.journal.store import NewEntry

__all__ = ["FileView", "Overlay"]


@dataclass(frozen=True)
class FileView:
    """The overlay's answer for one file.

    Attributes:
        state: ``"full"`` (``data`` is the content), ``"deleted"``, or ``"wait"`` (the
            content needs the table once ``seqs`` are confirmed).
        data: The content when ``state`` is ``"full"``.
        meta: Row fields of the latest full write (MIME type, ``last_update_date``...).
        seqs: Entries the view depends on.
    """

    state: str
    data: bytes = b""
    meta: dict[str, Any] = field(default_factory=dict)
    seqs: tuple[int, ...] = ()


@dataclass
class _Pending:
    seq: int
    entry: NewEntry


class Overlay:
    """Pending entries by file, for reads of the process that journaled them."""

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._files: dict[tuple[str, str], list[_Pending]] = {}
        self._sorted: dict[str, list[str]] = {}  # table -> its paths in _files, sorted
        self._spans: list[_Pending] = []  # entries touching many paths (trees, renames)
        self._where: dict[int, tuple[str, str] | None] = {}
        self._retired: dict[tuple[str, str], list[tuple[float, _Pending]]] = {}

    def after_fork(self) -> None:
        """Give a forked child its own lock (another thread may have held the parent's)."""
        self._lock = allocate_lock()

    def __len__(self) -> int:
        return len(self._where)

    def add(self, seqs: Iterable[int], entries: Iterable[NewEntry]) -> None:
        """Remember journaled entries (same order as their seqs)."""
        with self._lock:
            for seq, entry in zip(seqs, entries, strict=True):
                item = _Pending(seq, entry)
                if entry.op in ("put", "append", "delete", "event"):
                    key = (entry.table, entry.path)
                    if key not in self._files:
                        self._files[key] = []
                        bisect.insort(self._sorted.setdefault(entry.table, []), entry.path)
                    self._files[key].append(item)
                    self._where[seq] = key
                else:
                    self._spans.append(item)
                    self._where[seq] = None

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget entries that were confirmed or rejected."""
        with self._lock:
            for seq in seqs:
                if seq not in self._where:
                    continue
                key = self._where.pop(seq)
                if key is None:
                    self._spans = [p for p in self._spans if p.seq != seq]
                    continue
                items = [p for p in self._files.get(key, ()) if p.seq != seq]
                if items:
                    self._files[key] = items
                elif self._files.pop(key, None) is not None:
                    self._unlist(*key)

    def retire(self, seqs: Iterable[int], seconds: float) -> None:
        """Forget confirmed entries, keeping events listed for ``seconds`` more (read lag)."""
        until = time.monotonic() + seconds
        with self._lock:
            for seq in seqs:
                key = self._where.get(seq)
                if key is None:
                    continue
                for item in self._files.get(key, ()):
                    if item.seq == seq and item.entry.op == "event":
                        self._retired.setdefault(key, []).append((until, item))
        self.remove(seqs)

    def seqs(self) -> set[int]:
        """Every entry still pending in the overlay."""
        with self._lock:
            return set(self._where)

    def pending_among(self, seqs: Iterable[int]) -> set[int]:
        """Those of ``seqs`` still pending in the overlay."""
        with self._lock:
            return {seq for seq in seqs if seq in self._where}

    def file(self, table: str, path: str) -> FileView | None:
        """What the pending entries say about one file (None: nothing pending touches it)."""
        with self._lock:
            items = [p for p in self._files.get((table, path), ()) if p.entry.op != "event"]
            spans = [p for p in self._spans if p.entry.table == table and _touches(p.entry, path)]
        if spans:
            return FileView("wait", seqs=tuple(p.seq for p in spans + items))
        if not items:
            return None
        view: FileView | None = None
        for item in items:
            entry = item.entry
            done = (*(view.seqs if view else ()), item.seq)
            stamp = {"last_update_date": entry.meta.get("stamp", "")}
            if entry.op == "put":
                meta = {**(entry.meta.get("row") or {}), **stamp}
                view = FileView("full", entry.data, meta, done)
            elif entry.op == "delete":
                view = FileView("deleted", seqs=done)
            elif entry.op == "append" and view is not None and view.state != "wait":
                base = view.data if view.state == "full" else b""
                meta = {**(entry.meta.get("row") or {}), **view.meta, **stamp}
                view = FileView("full", base + entry.data, meta, done)
            else:
                view = FileView("wait", seqs=done)
        return view

    def events(self, table: str, path: str) -> list[NewEntry]:
        """Session events of one file still pending or recently confirmed, in journal order."""
        key = (table, path)
        now = time.monotonic()
        with self._lock:
            retired = [(u, p) for u, p in self._retired.get(key, ()) if u > now]
            if retired:
                self._retired[key] = retired
            else:
                self._retired.pop(key, None)
            items = [p for _, p in retired]
            items += [p for p in self._files.get(key, ()) if p.entry.op == "event"]
        return [p.entry for p in sorted(items, key=lambda p: p.seq)]

    def event_lines(self, table: str, path: str, stored: set[str]) -> list[str]:
        """JSON lines of a session's pending events whose row id is not in ``stored``."""
        return [
            entry.data.decode("utf-8")
            for entry in self.events(table, path)
            if str(entry.meta["row"]["id"]) not in stored
        ]

    def event_paths(self, table: str, scope: str = "/", also: Iterable[str] = ()) -> list[str]:
        """Session files of ``table`` with pending events at or below ``scope`` or in ``also``.

        Sorted. The cost follows the files found, not the files pending in the process.
        """
        with self._lock:
            return self._listed(table, scope, also)

    def paths(self, table: str, scope: str = "/", also: Iterable[str] = ()) -> dict[str, FileView]:
        """Files of ``table`` with pending entries at or below ``scope`` or in ``also``, viewed."""
        with self._lock:
            found = self._listed(table, scope, also)
        views = {p: self.file(table, p) for p in found}
        return {p: v for p, v in views.items() if v is not None}

    def _listed(self, table: str, scope: str, also: Iterable[str]) -> list[str]:
        """Paths of ``table`` in ``_files`` at or below ``scope`` or in ``also`` (lock held)."""
        listed = self._sorted.get(table, [])
        prefix = _prefix(scope)
        found = {p for p in (scope, *also) if (table, p) in self._files}
        at = bisect.bisect_left(listed, prefix)
        while at < len(listed) and listed[at].startswith(prefix):
            found.add(listed[at])
            at += 1
        return sorted(found)

    def _unlist(self, table: str, path: str) -> None:
        listed = self._sorted[table]
        del listed[bisect.bisect_left(listed, path)]
        if not listed:
            del self._sorted[table]


def _touches(entry: NewEntry, path: str) -> bool:
    """Whether a many-path entry (tree delete, rename) can change ``path``."""
    if entry.op == "rename":
        return path in (entry.path, str(entry.meta.get("dst")))
    dst = str(entry.meta.get("dst") or "")
    return _under(path, entry.path) or bool(dst and _under(path, dst))


def _under(path: str, directory: str) -> bool:
    return path.startswith(_prefix(directory))


def _prefix(directory: str) -> str:
    """What every path strictly inside ``directory`` starts with (``/`` for the root)."""
    return directory.rstrip("/") + "/"
