"""The filesystem as the reference client built it before its fix (the benchmark's baseline).

Kept out of :class:`~deeplake_sdk.DeeplakeFs` so that its knobs are not part of the public
filesystem: the tables' metadata is read one table after the other, and grep reads every
file in scope with one round trip each before matching lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from deeplake_sdk.fs import DeeplakeFs
from deeplake_sdk.fs.tree import FileMeta
from deeplake_sdk.fs.writer import text_copy
from deeplake_sdk.grep import GrepOptions

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi

__all__ = ["ReferenceFs"]


class ReferenceFs(DeeplakeFs):
    """The filesystem with one metadata read per table and a per-file grep (same arguments)."""

    def _scoped_rows(
        self, scope: str, exact: Sequence[str], api: DeeplakeApi, quick: bool
    ) -> tuple[list[FileMeta], list[FileMeta]]:
        return self._scoped_rows_apart(scope, exact, api, quick)

    def _grep_candidates(
        self, opts: GrepOptions, scope: str, sessions: bool, *, alone: bool, probe: bool
    ) -> list[dict[str, Any]]:
        rows = []
        for p in self._files_in_scope(scope, sessions):
            text = text_copy(self.read_bytes(p))
            if text is not None:
                rows.append({"kind": "memory", "path": p, "id": "", "text": text})
        return rows
