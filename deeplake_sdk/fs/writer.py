"""The filesystem's writes: journal entries, and the local view kept in step with them.

Every change (write, append, delete, rename) becomes one journal entry, durable when the call
returns (:mod:`deeplake_sdk.journal`); the journal's flusher stores it in the table. Meanwhile
the directory tree and the content cache of this filesystem reflect the change at once, and reads
consult the journal's overlay for content that is not stored yet.
"""

from __future__ import annotations

import errno
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from deeplake_sdk.dates import next_stamp
from deeplake_sdk.errors import DeeplakeError, FlushError, FsError
from deeplake_sdk.fs import paths
from deeplake_sdk.fs.tree import FileMeta, Tree
from deeplake_sdk.journal.core import Journal, Recorded
from deeplake_sdk.journal.limits import Limits
from deeplake_sdk.journal.overlay import FileView
from deeplake_sdk.journal.store import NewEntry

__all__ = ["FileWriter", "new_row_id", "text_copy"]

log = logging.getLogger(__name__)


def text_copy(data: bytes) -> str | None:
    """``data`` as text when it is valid UTF-8 without NUL characters, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def new_row_id() -> str:
    """A client-generated row id."""
    return uuid.uuid4().hex


class FileWriter:
    """Turns filesystem changes into journal entries and keeps the local view in step.

    Args:
        journal: The workspace's journal.
        table: Memory table name.
        tree: The filesystem's metadata (updated at once).
        invalidate: Called with a path whose cached content is stale.
        author: ``author`` of new rows.
        limits: Size limits checked before anything is journaled.
    """

    def __init__(
        self,
        journal: Journal,
        table: str,
        tree: Tree,
        invalidate: Callable[[str], None],
        *,
        author: str,
        limits: Limits,
    ) -> None:
        self.journal = journal
        self.recorded = Recorded(journal)
        self.table = table
        self.tree = tree
        self.invalidate = invalidate
        self.author = author
        self.limits = limits
        #: Whether the table stores binary files (None: its layout is not known yet).
        self.binary_ok: bool | None = True

    # -- the overlay ----------------------------------------------------------------------------
    def view(self, path: str) -> FileView | None:
        """What journaled, unconfirmed entries say about ``path``."""
        return self.journal.overlay.file(self.table, path)

    def view_all(self, scope: str = paths.ROOT, also: Iterable[str] = ()) -> dict[str, FileView]:
        """Views of the table's files with journaled, unconfirmed entries.

        Args:
            scope: Only the files at or below it (the root: all).
            also: More paths to include if they have such entries.
        """
        return self.journal.overlay.paths(self.table, scope, also)

    def settle(self, path: str, view: FileView, timeout: float | None) -> None:
        """Wait until the entries behind ``view`` are stored (the table is then current).

        Raises:
            FlushError: They were not confirmed in time (they stay journaled).
        """
        left = self.journal.wait_for(view.seqs, timeout)
        if left:
            error = self.journal.last_error or DeeplakeError("not confirmed by the service in time")
            raise FlushError([path], {path: error}, journaled=len(left))

    # -- changes --------------------------------------------------------------------------------
    def put(
        self,
        path: str,
        data: bytes,
        *,
        mime_type: str,
        project: str | None = None,
        description: str | None = None,
        creation_date: str | None = None,
        last_update_date: str | None = None,
    ) -> None:
        """Journal a full write of a file."""
        self._check(path, data, self.limits.file_bytes, "file")
        stamp = last_update_date or next_stamp()
        row: dict[str, Any] = {
            "author": self.author,
            "mime_type": mime_type,
            "creation_date": creation_date or stamp,
        }
        if project is not None:
            row["project"] = project
        if description is not None:
            row["description"] = description
        meta: dict[str, Any] = {"row_id": new_row_id(), "stamp": stamp, "row": row}
        if last_update_date:
            meta["dated"] = True  # the caller's date: it replaces the file whatever its date
        self._record([NewEntry("put", self.table, path, data, meta)])
        previous = self.tree.get(path)
        self.tree.put(
            FileMeta(
                path=path,
                size=len(data),
                mime_type=mime_type,
                last_update_date=stamp,
                kind="memory",
                description=description
                if description is not None
                else (previous.description if previous else ""),
            )
        )

    def append(self, path: str, data: bytes, *, mime_type: str) -> None:
        """Journal an append (creating the file if it does not exist when it is applied)."""
        self._check(path, data, self.limits.file_bytes, "append")
        stamp = next_stamp()
        row = {
            "author": self.author,
            "mime_type": mime_type,
        }
        meta = {"stamp": stamp, "append_id": new_row_id(), "row": row}
        self._record([NewEntry("append", self.table, path, data, meta)])
        previous = self.tree.get(path)
        if previous is not None and previous.kind == "memory":
            self.tree.put(replace(previous, size=previous.size + len(data), last_update_date=stamp))
        else:
            self.tree.put(FileMeta(path, len(data), mime_type, stamp, "memory"))

    def delete(self, path: str) -> None:
        """Journal the removal of a file."""
        self._record([NewEntry("delete", self.table, path, b"", {"stamp": next_stamp()})])
        self.tree.remove(path)

    def delete_tree(self, directory: str) -> None:
        """Journal the removal of every file inside ``directory``."""
        self._record([NewEntry("delete_tree", self.table, directory, b"", {"stamp": next_stamp()})])

    def move(self, src: str, dst: str, *, tree: bool) -> str:
        """Journal a rename of a file (or of a directory with ``tree``); returns its date."""
        stamp = next_stamp()
        op = "rename_tree" if tree else "rename"
        self._record([NewEntry(op, self.table, src, b"", {"dst": dst, "stamp": stamp})])
        return stamp

    def flush(self, timeout: float | None, *, while_reachable: bool = False) -> int:
        """Wait until the changes journaled here are stored (see :meth:`Journal.flush`)."""
        return self.recorded.flush(timeout, while_reachable=while_reachable)

    # -- helpers --------------------------------------------------------------------------------
    def _check(self, path: str, data: bytes, limit: int, what: str) -> None:
        if len(data) > limit:
            raise FsError(
                errno.EFBIG,
                path,
                f"{what} of {len(data):,} bytes exceeds the {limit:,}-byte limit of one "
                "write (Limits.file_bytes): the service takes each write in one request; "
                "split the data or raise the limit if your service accepts more",
            )
        if not self.binary_ok and text_copy(data) is None:
            if self.binary_ok is None:
                raise FsError(
                    errno.EAGAIN,
                    path,
                    f"binary data (not UTF-8 text, or with NUL) is refused while the layout of "
                    f"table {self.table!r} is unknown (the service was unreachable): a table "
                    "of the agent-memory plugin could not store it. Write text, or retry once "
                    "the service answers (any read learns the layout)",
                )
            raise FsError(
                errno.EINVAL,
                path,
                f"binary data (not UTF-8 text, or with NUL) cannot be stored in table "
                f"{self.table!r}: it has no content column and keeps files as text in "
                "summary (a table created by the agent-memory plugin). Write text, or use a "
                "memory table created by this SDK",
            )

    def _record(self, entries: list[NewEntry]) -> None:
        self.recorded.record(entries)
        for entry in entries:
            self.invalidate(entry.path)
