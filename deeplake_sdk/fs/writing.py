"""Writing side of the filesystem: full writes and appends, journaled before they return."""

from __future__ import annotations

import errno
from typing import Any

from deeplake_sdk.errors import FsError
from deeplake_sdk.fs import paths
from deeplake_sdk.fs.base import FsBase, guess_mime
from deeplake_sdk.fs.writer import text_copy


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
        """Write a file.

        The write is durable in the local journal when this returns; the journal's flusher
        stores it in the table in the background (:meth:`flush` waits for it).

        Args:
            path: Where to write; parent directories are implicit.
            data: The new content.
            mime_type: Stored MIME type (default: guessed from the name).
            project: Value of the ``project`` column (kept when None).
            description: Value of the ``description`` column (kept when None).
            creation_date: ISO-8601 creation date of a new file (default: now).
            last_update_date: ISO-8601 date of this change (default: now).

        Raises:
            FsError: ``EISDIR``, ``ENOTDIR`` (a parent is a file), ``EPERM`` (session file),
                ``EFBIG`` (over :attr:`Limits.file_bytes <deeplake_sdk.journal.Limits>`) or
                ``EINVAL`` (binary data for a table without a ``content`` column).
        """
        self._check_open()
        p = self._check_writable(path)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        self.writer.put(
            p,
            bytes(data),
            mime_type=mime_type or guess_mime(p, binary=True),
            project=project,
            description=description,
            creation_date=creation_date,
            last_update_date=last_update_date,
        )

    def write_text(self, path: str, text: str, encoding: str = "utf-8", **kwargs: Any) -> None:
        """Write a text file (keyword arguments as for :meth:`write_bytes`)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        kwargs.setdefault("mime_type", guess_mime(path, binary=False))
        self.write_bytes(path, text.encode(encoding), **kwargs)

    def append_bytes(self, path: str, data: bytes) -> None:
        """Append to a file, creating it when missing.

        Durable in the local journal when this returns. The flusher applies it exactly once:
        a compare-and-swap on the file's size, whose offset is journaled before it is sent, so an
        append whose answer was lost is never applied twice and appends of other processes are
        never overwritten (see :mod:`deeplake_sdk.journal.drain`).

        Raises:
            FsError: ``EISDIR``, ``ENOTDIR``, ``EPERM`` (session file), ``EFBIG`` or ``EINVAL``
                (see :meth:`write_bytes`).
        """
        self._check_open()
        p = self._check_writable(path)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        data = bytes(data)
        meta = self.tree.get(p)
        mime = meta.mime_type if meta else guess_mime(p, text_copy(data) is None)
        self.writer.append(p, data, mime_type=mime)

    def append_text(self, path: str, text: str, encoding: str = "utf-8") -> None:
        """Append text to a file, creating it when missing (see :meth:`append_bytes`)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        self.append_bytes(path, text.encode(encoding))

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
