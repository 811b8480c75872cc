"""State shared by the parts of :class:`~deeplake_sdk.fs.DeeplakeFs`.

The filesystem is assembled from mixins, one per concern (reading, writing, namespace
operations, grep); this base declares what they share and the small helpers they all use.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from deeplake_sdk.cache import CacheKey
from deeplake_sdk.errors import ClosedError
from deeplake_sdk.fs.tree import Tree
from deeplake_sdk.http_errors import service_base

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.cache import ContentCache
    from deeplake_sdk.fs.writer import FileWriter
    from deeplake_sdk.journal.core import Journal
    from deeplake_sdk.statements.layout import TableLayout


class FsBase:
    """Attributes and helpers common to every part of the filesystem."""

    api: DeeplakeApi
    table: str
    sessions_table: str | None
    layout: TableLayout
    sessions_layout: TableLayout | None = None
    sessions_enabled: bool
    cache: ContentCache
    tree: Tree
    journal: Journal
    writer: FileWriter
    closed: bool
    flush_timeout: float | None

    if TYPE_CHECKING:  # implemented by the mixins, used across them

        def read_bytes(self, path: str) -> bytes:  # noqa: D102
            ...

        def prefetch(self, paths_: Iterable[str]) -> int:  # noqa: D102
            ...

        def write_bytes(self, path: str, data: bytes, **kwargs: Any) -> None:  # noqa: D102
            ...

        def _check_writable(self, path: str) -> str: ...

    def _check_open(self) -> None:
        if self.closed:
            raise ClosedError("operation on a closed DeeplakeFs")

    def _key(self, path: str) -> CacheKey:
        creds = self.api.credentials
        return CacheKey(
            service_base(creds.api_url), creds.org_id, creds.workspace_id, self.table, path
        )

    def _invalidate(self, path: str) -> None:
        self.cache.invalidate(self._key(path))


def guess_mime(path: str, binary: bool) -> str:
    """MIME type from the file name; text/plain or application/octet-stream otherwise."""
    guessed, _ = mimetypes.guess_type(path)
    if guessed:
        return guessed
    if path.endswith((".md", ".markdown")):
        return "text/markdown"
    return "application/octet-stream" if binary else "text/plain"
