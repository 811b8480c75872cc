"""Reading side of the filesystem: content, metadata, listings, prefetch."""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from deeplake_sdk.errors import FsError
from deeplake_sdk.fs import paths
from deeplake_sdk.fs.base import FsBase
from deeplake_sdk.fs.index import INDEX_PATH, render_index
from deeplake_sdk.fs.tree import FileMeta
from deeplake_sdk.statements import files as st
from deeplake_sdk.statements.layout import oldest_per_path


@dataclass(frozen=True)
class FileStat:
    """What :meth:`DeeplakeFs.stat` returns.

    Attributes:
        path: Normalised absolute path.
        type: ``"file"`` or ``"directory"``.
        size: Size in bytes (0 for directories; for a session file, known once read).
        mime_type: MIME type of a file (empty for directories).
        last_update_date: ISO-8601 timestamp of the last change of a file.
        kind: ``"memory"``, ``"session"`` (read-only), ``"virtual"`` (``/index.md``), or
            ``"directory"``.
    """

    path: str
    type: Literal["file", "directory"]
    size: int = 0
    mime_type: str = ""
    last_update_date: str = ""
    kind: str = "memory"


class ReadingMixin(FsBase):
    """read_bytes, read_text, prefetch, exists, stat, ls, walk."""

    def read_bytes(self, path: str) -> bytes:
        """Content of a file.

        Looks in order at journaled writes not yet stored, the content cache, session rows
        and the memory row.
        A path this process has not seen is looked up in the tables (one query), so files
        created by other processes can be read without :meth:`refresh`.

        Raises:
            FsError: ``ENOENT`` (no such file) or ``EISDIR`` (a directory).
        """
        self._check_open()
        p = paths.normalize(path)
        view = self.writer.view(p)
        if view is not None:
            if view.state == "full":
                return view.data
            if view.state == "deleted":
                raise FsError(errno.ENOENT, p)
            self.writer.settle(p, view, self.flush_timeout)
        meta = self.tree.get(p)
        if meta is None:
            if self.tree.is_dir(p):
                raise FsError(errno.EISDIR, p)
            if p == INDEX_PATH:
                return render_index(self.tree).encode()
            return self._read_unknown(p)
        if meta.kind == "session":
            return self._read_session(meta)
        data = self.cache.get(self._key(p), meta.version)
        if data is not None:
            return data
        found = self._fetch([p])
        if p not in found:
            self.tree.remove(p)
            raise FsError(errno.ENOENT, p)
        return found[p]

    def read_text(self, path: str, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Content of a file decoded as text (see :meth:`read_bytes`)."""
        return self.read_bytes(path).decode(encoding, errors)

    def _read_unknown(self, p: str) -> bytes:
        found = self._fetch([p])
        if p in found:
            return found[p]
        if self.sessions_enabled and self.sessions_layout is not None:
            meta = FileMeta(path=p, size=0, kind="session", mime_type="application/x-ndjson")
            data = self._read_session(meta)
            if meta.rows:
                self.tree.put(meta)
                return data
        raise FsError(errno.ENOENT, p)

    def _read_session(self, meta: FileMeta) -> bytes:
        assert self.sessions_layout is not None
        sql, params = st.session_lines(self.sessions_layout, meta.path)
        rows = self.api.query(sql, params)
        lines = st.session_file_lines(rows)
        stored = {str(r["id"]) for r in rows} | {str(r["event_key"]) for r in rows}
        lines += self.journal.overlay.event_lines(self.sessions_layout.name, meta.path, stored)
        data = "".join(line + "\n" for line in lines).encode()
        meta.rows, meta.size = len(lines), len(data)
        return data

    def _fetch(self, batch: list[str]) -> dict[str, bytes]:
        """Read memory rows, one query per :data:`~deeplake_sdk.statements.files.CHUNK` paths."""
        found: dict[str, bytes] = {}
        for i in range(0, len(batch), st.CHUNK):
            sql, params = st.memory_read(self.layout, batch[i : i + st.CHUNK])
            for path, row in oldest_per_path(self.api.query(sql, params)).items():
                p = paths.normalize(path)
                found[p] = data = st.memory_row_bytes(row)
                meta = self.tree.get(p)
                if meta is None or meta.kind != "memory":
                    meta = FileMeta(path=p, size=len(data))
                    self.tree.put(meta)
                meta.size = int(row["size_bytes"] or len(data))
                meta.last_update_date = row["last_update_date"] or ""
                meta.mime_type = row["mime_type"] or meta.mime_type
                meta.persisted = True
                self.cache.set(self._key(p), meta.version, data)
        return found

    def prefetch(self, paths_: Iterable[str]) -> int:
        """Load many files into the cache, one query per 50 paths; returns how many were read.

        Paths with journaled writes not yet stored, already cached at their current version,
        session files or unknown are skipped.
        """
        self._check_open()
        wanted = []
        for raw in paths_:
            p = paths.normalize(raw)
            meta = self.tree.get(p)
            if meta is None or meta.kind != "memory" or self.writer.view(p) is not None:
                continue
            if self.cache.get(self._key(p), meta.version) is None:
                wanted.append(p)
        return len(self._fetch(wanted)) if wanted else 0

    def exists(self, path: str) -> bool:
        """Whether a file or directory exists (in this process's view of the tables)."""
        self._check_open()
        p = paths.normalize(path)
        return self.tree.is_file(p) or self.tree.is_dir(p) or p == INDEX_PATH

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory."""
        self._check_open()
        return self.tree.is_dir(paths.normalize(path))

    def is_file(self, path: str) -> bool:
        """Whether ``path`` is a file (including the virtual ``/index.md``)."""
        self._check_open()
        p = paths.normalize(path)
        return self.tree.is_file(p) or p == INDEX_PATH

    def stat(self, path: str) -> FileStat:
        """Metadata of a file or directory.

        Raises:
            FsError: ``ENOENT`` when nothing exists at ``path``.
        """
        self._check_open()
        p = paths.normalize(path)
        meta = self.tree.get(p)
        if meta is not None:
            return FileStat(p, "file", meta.size, meta.mime_type, meta.last_update_date, meta.kind)
        if self.tree.is_dir(p):
            return FileStat(p, "directory", kind="directory")
        if p == INDEX_PATH:
            size = len(render_index(self.tree).encode())
            return FileStat(p, "file", size, "text/markdown", "", "virtual")
        raise FsError(errno.ENOENT, p)

    def ls(self, path: str = "/", detail: bool = False) -> list[Any]:
        """Entries of a directory sorted by name, or their :class:`FileStat` with ``detail``.

        The virtual ``/index.md`` is listed in the root when no real file has that path.

        Raises:
            FsError: ``ENOENT`` (missing) or ``ENOTDIR`` (a file).
        """
        self._check_open()
        p = paths.normalize(path)
        if not self.tree.is_dir(p):
            raise FsError(errno.ENOTDIR if self.tree.is_file(p) else errno.ENOENT, p)
        names = self.tree.listdir(p)
        if p == paths.ROOT and paths.basename(INDEX_PATH) not in names:
            names = sorted([*names, paths.basename(INDEX_PATH)])
        if not detail:
            return names
        return [self.stat(paths.join(p, n)) for n in names]

    def listdir(self, path: str = "/") -> list[str]:
        """Names of the entries of a directory (same as :meth:`ls`)."""
        return self.ls(path)

    def walk(self, top: str = "/") -> Iterator[tuple[str, list[str], list[str]]]:
        """Yield ``(dirpath, dirnames, filenames)`` for every directory, like :func:`os.walk`."""
        self._check_open()
        yield from self.tree.walk(paths.normalize(top))
