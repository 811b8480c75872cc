"""An fsspec filesystem over the memory tables: ``deeplake://<table>/<path>``.

Registered through the ``fsspec.specs`` entry point (extra ``[fsspec]``), so once the package
is installed::

    import fsspec, pandas

    with fsspec.open("deeplake://memory/notes/a.md", "w") as f:
        f.write("hello")
    pandas.read_csv("deeplake://memory/data/cities.csv")

The URL's first component is the memory table (``memory`` by default in the SDK); the rest is
the file's path in :class:`~deeplake_sdk.DeeplakeFs`. Credentials come from the environment or
``~/.deeplake/credentials.json``, or from storage options (``token``, ``org_id``,
``workspace_id``, ``api_url``) or an ``api`` (:class:`~deeplake_sdk.DeeplakeApi`). Every
method is a thin call into one :class:`~deeplake_sdk.DeeplakeFs` per table; writes are
journaled (durable when the call returns) and stored by the background flusher.
"""

from __future__ import annotations

import errno
import threading
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from deeplake_sdk.errors import FsError
from deeplake_sdk.fs import DeeplakeFs, FileStat
from deeplake_sdk.fs import paths as fspaths

__all__ = ["DeeplakeFileSystem"]


class DeeplakeFileSystem(AbstractFileSystem):
    """fsspec filesystem of protocol ``deeplake``; paths are ``<table>/<path in the table>``.

    Args:
        api: A client (default: one built from ``token``/``org_id``/``workspace_id``/
            ``api_url`` and the environment).
        token: Bearer token.
        org_id: Organisation id.
        workspace_id: Workspace id.
        api_url: Service URL.
        sessions_table: Sessions table shown under ``/sessions`` (default: the client's).
        storage_options: Passed to :class:`fsspec.spec.AbstractFileSystem`. fsspec's listing
            cache options say how long the metadata read from the tables is trusted (the
            ``max_age`` of each :class:`~deeplake_sdk.DeeplakeFs`): ``listings_expiry_time``
            (seconds; default: until :meth:`invalidate_cache`), and
            ``use_listings_cache=False`` to refresh before every call.
    """

    protocol = "deeplake"
    root_marker = ""

    def __init__(
        self,
        api: Any = None,
        *,
        token: str | None = None,
        org_id: str | None = None,
        workspace_id: str | None = None,
        api_url: str | None = None,
        sessions_table: str | None = "",
        **storage_options: Any,
    ) -> None:
        """Build the filesystem (arguments: see the class)."""
        super().__init__(**storage_options)
        if api is None:
            from deeplake_sdk.api import DeeplakeApi

            api = DeeplakeApi(token, org_id, workspace_id, api_url)
        self.api = api
        self.sessions_table = sessions_table
        self.max_age: float | None = (
            storage_options.get("listings_expiry_time")
            if storage_options.get("use_listings_cache", True)
            else 0.0
        )
        self._filesystems: dict[str, DeeplakeFs] = {}
        self._lock = threading.Lock()

    # -- paths ------------------------------------------------------------------------------
    def _split(self, path: str) -> tuple[DeeplakeFs, str, str]:
        """``(filesystem, path in it, table)`` of an fsspec path."""
        stripped = self._strip_protocol(path).strip("/")
        table, _, rest = stripped.partition("/")
        if not table:
            raise ValueError(f"{path!r} names no table: use deeplake://<table>/<path>")
        with self._lock:
            fs = self._filesystems.get(table)
            if fs is None:
                fs = DeeplakeFs(self.api, table, self.sessions_table, max_age=self.max_age)
                self._filesystems[table] = fs
        return fs, fspaths.normalize("/" + rest), table

    @staticmethod
    def _name(table: str, path: str) -> str:
        return table + (path if path != "/" else "")

    def _entry(self, fs: DeeplakeFs, table: str, path: str) -> dict[str, Any]:
        return self._entry_of(table, fs.stat(path))

    def _entry_of(self, table: str, st: FileStat) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self._name(table, st.path),
            "size": st.size,
            "type": st.type,
        }
        if st.type == "file":
            entry.update(mime_type=st.mime_type, last_update_date=st.last_update_date, kind=st.kind)
        return entry

    # -- reading ----------------------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """Entries of a directory (a file lists itself), as fsspec dicts or names."""
        fs, p, table = self._split(path)
        # a file lists itself; a directory's entries come from one call (one snapshot)
        stats = [fs.stat(p)] if fs.is_file(p) else fs.ls(p, detail=True)
        entries = [self._entry_of(table, st) for st in stats]
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """``name``, ``size``, ``type`` (and MIME type, date, kind of a file)."""
        fs, p, table = self._split(path)
        try:
            return self._entry(fs, table, p)
        except FsError as exc:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path) from exc

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """A file's bytes (``start``/``end`` as in :meth:`bytes.__getitem__`)."""
        fs, p, _ = self._split(path)
        return fs.read_bytes(p)[start:end]

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, **kwargs: Any) -> Any:
        return _DeeplakeFile(self, path, mode, block_size=block_size or "default", **kwargs)

    # -- writing ----------------------------------------------------------------------------
    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Create or replace a file with ``value``."""
        fs, p, _ = self._split(path)
        if mode == "create" and fs.exists(p):
            raise FileExistsError(errno.EEXIST, "File exists", path)
        fs.write_bytes(p, bytes(value))

    def rm_file(self, path: str) -> None:
        """Remove a file."""
        fs, p, _ = self._split(path)
        fs.rm(p)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Remove files, or directory trees with ``recursive``."""
        for one in [path] if isinstance(path, str) else path:
            fs, p, _ = self._split(one)
            fs.rm(p, recursive=recursive)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy a file (both paths in one table, else through this process)."""
        fs1, p1, t1 = self._split(path1)
        fs2, p2, t2 = self._split(path2)
        if t1 == t2:
            fs1.cp(p1, p2)
        else:
            fs2.write_bytes(p2, fs1.read_bytes(p1))

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Create a directory (and its parents with ``create_parents``)."""
        fs, p, _ = self._split(path)
        fs.mkdir(p, parents=create_parents, exist_ok=create_parents)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Create a directory and its parents."""
        fs, p, _ = self._split(path)
        fs.mkdir(p, parents=True, exist_ok=exist_ok)

    def invalidate_cache(self, path: str | None = None) -> None:
        """See other processes' changes: refresh the table of ``path`` (every table if None)."""
        with self._lock:
            opened = dict(self._filesystems)
        if path is None:
            chosen = list(opened.values())
        else:
            table = self._strip_protocol(path).strip("/").partition("/")[0]
            chosen = [opened[table]] if table in opened else []
        for fs in chosen:
            fs.refresh()
        super().invalidate_cache(path)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every change made through this filesystem is stored."""
        for fs in list(self._filesystems.values()):
            fs.flush(timeout)


class _DeeplakeFile(AbstractBufferedFile):
    """A buffered file: reads ranges of the file's bytes, writes it whole when closed."""

    fs: DeeplakeFileSystem

    def _fetch_range(self, start: int, end: int) -> bytes:
        return self.fs.cat_file(self.path, start, end)

    def _initiate_upload(self) -> None:
        self._parts: list[bytes] = []

    def _upload_chunk(self, final: bool = False) -> bool:
        self._parts.append(self.buffer.getvalue())
        if final:
            self.fs.pipe_file(self.path, b"".join(self._parts))
        return True
