"""The filesystem as the reference client built it before its fix (the benchmark's baseline).

Kept out of :class:`~deeplake_sdk.DeeplakeFs` so that its knobs are not part of the public
filesystem: the tables are prepared one after the other, and grep reads every file in scope
with one round trip each before matching lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deeplake_sdk.errors import DeeplakeError
from deeplake_sdk.fs import DeeplakeFs
from deeplake_sdk.fs.writer import text_copy
from deeplake_sdk.grep import GrepOptions

__all__ = ["ReferenceFs"]


class ReferenceFs(DeeplakeFs):
    """The filesystem with a sequential bootstrap and a per-file grep (same arguments)."""

    def _run_all(self, funcs: list[Callable[[], Any]]) -> list[Any]:
        out: list[Any] = []
        for func in funcs:
            try:
                out.append(func())
            except DeeplakeError as exc:
                out.append(exc)
        return out

    def _grep_candidates(
        self, opts: GrepOptions, scope: str, sessions: bool
    ) -> tuple[dict[str, str], dict[str, list[tuple[int, str]]]]:
        texts = {}
        for p in self._files_in_scope(scope, sessions):
            text = text_copy(self.read_bytes(p))
            if text is not None:
                texts[p] = text
        return texts, {}
