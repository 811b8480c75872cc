"""Writing side of the filesystem: queued writes and exact appends."""

from __future__ import annotations

import errno
import logging
from typing import Any

from deeplake_sdk.errors import DeeplakeError, FsError
from deeplake_sdk.fs import paths
from deeplake_sdk.fs.base import FsBase, guess_mime
from deeplake_sdk.fs.tree import FileMeta
from deeplake_sdk.fs.writer import PendingWrite, meta_for, new_row_id, text_copy, utc_now
from deeplake_sdk.statements import files as st

log = logging.getLogger(__name__)

#: How often an append re-reads the file size after losing a race before giving up.
APPEND_ATTEMPTS = 8


class WritingMixin(FsBase):
    """write_bytes, write_text, append_bytes, append_text."""

    def write_bytes(
        self,
        path: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        project: str | None = None,
        description: str | None = None,
        creation_date: str | None = None,
        last_update_date: str | None = None,
    ) -> None:
        """Write a file (queued; stored by the next flush).

        Args:
            path: Where to write; parent directories are implicit.
            data: The new content.
            mime_type: Stored MIME type (default: guessed from the name).
            project: Value of the ``project`` column (kept when None).
            description: Value of the ``description`` column (kept when None).
            creation_date: ISO-8601 creation date of a new file (default: now).
            last_update_date: ISO-8601 date of this change (default: now).

        Raises:
            FsError: ``EISDIR``, ``ENOTDIR`` (a parent is a file), ``EPERM`` (session file)
                or ``EINVAL`` (binary data for a table without ``content``).
        """
        self._tick()
        p = self._check_writable(path)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        self._check_storable(p, data)
        self._queue(
            PendingWrite(
                path=p,
                data=bytes(data),
                mime_type=mime_type or guess_mime(p, binary=True),
                last_update_date=last_update_date or utc_now(),
                row_id=new_row_id(),
                project=project,
                description=description,
                creation_date=creation_date,
            )
        )

    def write_text(self, path: str, text: str, encoding: str = "utf-8", **kwargs: Any) -> None:
        """Write a text file (keyword arguments as for :meth:`write_bytes`)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        kwargs.setdefault("mime_type", guess_mime(path, binary=False))
        self.write_bytes(path, text.encode(encoding), **kwargs)

    def append_bytes(self, path: str, data: bytes) -> None:
        """Append to a file, creating it when missing.

        A queued file gets the data merged into its queued write (no round trip). A stored file
        gets one ``UPDATE .. SET content = content || data`` guarded by the size it is expected
        to have, so an append whose answer was lost is applied exactly once, and appends from
        other processes are never overwritten; its cached content is invalidated.

        Raises:
            FsError: ``EISDIR``, ``ENOTDIR``, ``EPERM`` (session file) or ``EINVAL``
                (binary data for a table without ``content``).
        """
        self._tick()
        p = self._check_writable(path)
        data = bytes(data)
        self._check_storable(p, data)
        with self.writer.lock:
            pending = self.writer.get(p)
            if pending is not None:
                self._queue(pending.appended(data))
                return
            if not self._append_stored(p, data):
                meta = self.tree.get(p)
                mime = meta.mime_type if meta else guess_mime(p, text_copy(data) is None)
                self._queue(PendingWrite(p, data, mime, utc_now(), new_row_id()))

    def append_text(self, path: str, text: str, encoding: str = "utf-8") -> None:
        """Append text to a file, creating it when missing (see :meth:`append_bytes`)."""
        self.append_bytes(path, text.encode(encoding))

    def _queue(self, entry: PendingWrite) -> None:
        self._invalidate(entry.path)
        self.tree.put(meta_for(entry, self.tree.get(entry.path)))
        self.writer.put(entry)

    def _check_writable(self, path: str) -> str:
        p = paths.normalize(path)
        if p == paths.ROOT or (self.tree.is_dir(p) and not self.tree.is_file(p)):
            raise FsError(errno.EISDIR, p)
        meta = self.tree.get(p)
        if meta is not None and meta.kind == "session":
            raise FsError(errno.EPERM, p, "session files are read-only")
        for ancestor in paths.ancestors(p):
            if self.tree.is_file(ancestor) and not self.tree.is_dir(ancestor):
                raise FsError(errno.ENOTDIR, p, f"not a directory: {ancestor}")
        return p

    def _check_storable(self, p: str, data: bytes) -> None:
        """Refuse binary data (non-UTF-8, NUL) when the table keeps files in ``summary`` only."""
        if not self.layout.binary_ok and data and text_copy(bytes(data)) is None:
            raise FsError(
                errno.EINVAL,
                p,
                f"binary data (not UTF-8 text, or with NUL) cannot be stored in table "
                f"{self.layout.name!r}: it has no content column and keeps files as text in "
                "summary (a table created by the agent-memory plugin). Write text, or use a "
                "memory table created by this SDK",
            )

    def _append_stored(self, p: str, data: bytes) -> bool:
        """Append to the stored row of ``p``; False when no row exists (caller creates one)."""
        meta = self.tree.get(p)
        if meta is None or not meta.persisted:
            meta = self._probe(p)
            if meta is None:
                return False
        text = text_copy(data)
        for _ in range(APPEND_ATTEMPTS):
            expected, date = meta.size, utc_now()
            sql, params = st.memory_append(
                self.layout, p, data, text=text, expected_size=expected, date=date
            )

            def landed(expected: int = expected) -> bool:
                check_sql, check_params = st.memory_append_landed(self.layout, p, data, expected)
                return bool(self.api.query(check_sql, check_params))

            result = self.api.execute(sql, params, confirm=landed)
            if result.confirmed or result.row_count is None or result.row_count >= 1:
                meta.size, meta.last_update_date = expected + len(data), date
                self._invalidate(p)
                return True
            # The file changed size since we last saw it (another writer): look again.
            probed = self._probe(p)
            if probed is None:
                return False
            meta = probed
        raise DeeplakeError(
            f"append to {p} kept losing races with other writers after {APPEND_ATTEMPTS} "
            "attempts; try again"
        )

    def _probe(self, p: str) -> FileMeta | None:
        """Current size/date of the stored row of ``p`` (None if there is none)."""
        sql, params = st.memory_probe(self.layout, p)
        rows = self.api.query(sql, params)
        if not rows:
            return None
        meta = self.tree.get(p)
        if meta is None or meta.kind != "memory":
            meta = FileMeta(path=p, size=0)
            self.tree.put(meta)
        meta.size = int(rows[0]["size_bytes"] or 0)
        meta.last_update_date = rows[0]["last_update_date"] or ""
        meta.persisted = True
        return meta
