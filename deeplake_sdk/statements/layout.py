"""Table layouts: which columns a memory or sessions table really has, and what follows.

A workspace's tables were not all created by this SDK: the agent-memory plugin creates a
``memory`` table without ``content`` (text lives in ``summary`` only) and older clients left
other column sets. :class:`TableLayout` records the columns one ``information_schema`` probe
found, and every statement of :mod:`deeplake_sdk.statements.files` is built from it, so the SDK
only ever names columns that exist.

This module also holds the one rule that picks a row when a path has several (a table without
keys can hold more than one row per path): **the oldest** ``creation_date``, **then the
smallest** ``id`` (text order). Statements ``ORDER BY`` it (:meth:`TableLayout.order_by`) and
:func:`row_rank` / :func:`oldest_per_path` apply it to rows in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from deeplake_sdk._version import __version__
from deeplake_sdk.errors import ConfigError
from deeplake_sdk.statements import MEMORY_COLUMNS, SESSIONS_COLUMNS, Column

__all__ = [
    "AGENT",
    "MEMORY",
    "PLUGIN_VERSION",
    "SESSIONS",
    "LayoutKind",
    "TableLayout",
    "TableLayoutError",
    "columns_of",
    "oldest_per_path",
    "row_rank",
]

#: Layout kinds.
MEMORY: Literal["memory"] = "memory"
SESSIONS: Literal["sessions"] = "sessions"
LayoutKind = Literal["memory", "sessions"]

#: Value of the ``agent`` column in rows this SDK writes.
AGENT = "deeplake-sdk"
#: Value of the ``plugin_version`` column in rows this SDK writes: the SDK's version.
PLUGIN_VERSION = __version__

#: Columns without which the SDK cannot use a table of each kind. A memory table also needs
#: ``summary`` or ``content`` (somewhere to keep the file).
_REQUIRED: dict[str, tuple[str, ...]] = {
    MEMORY: ("id", "path", "size_bytes"),
    SESSIONS: ("id", "path", "message"),
}


class TableLayoutError(ConfigError):
    """A table lacks columns the SDK cannot work without (e.g. ``path``).

    Attributes:
        layout: The layout that was found.
        missing: The missing columns (``"summary|content"`` when neither exists).
    """

    def __init__(self, layout: TableLayout, missing: list[str]) -> None:
        self.layout = layout
        self.missing = missing
        have = ", ".join(sorted(layout.columns)) or "none"
        super().__init__(
            f"table {layout.name!r} cannot be used as a {layout.kind} table: it lacks "
            f"{', '.join(missing)} (it has: {have}). Point the SDK at another table "
            "(DEEPLAKE_TABLE / DEEPLAKE_SESSIONS_TABLE), or ensure it with migrate=True to add "
            "the missing columns"
        )


def columns_of(kind: LayoutKind) -> tuple[Column, ...]:
    """The columns of a table of ``kind`` as this SDK creates it."""
    if kind == MEMORY:
        return MEMORY_COLUMNS
    if kind == SESSIONS:
        return SESSIONS_COLUMNS
    raise ValueError(f"unknown table kind {kind!r} (expected 'memory' or 'sessions')")


@dataclass(frozen=True)
class TableLayout:
    """The columns one table has, as found by the ``information_schema`` probe.

    Attributes:
        name: Table name.
        kind: ``"memory"`` (files) or ``"sessions"`` (session events).
        columns: Names of the table's columns.
    """

    name: str
    kind: LayoutKind
    columns: frozenset[str]

    @classmethod
    def full(cls, name: str, kind: LayoutKind) -> TableLayout:
        """The layout of a table this SDK creates (every column of :func:`columns_of`)."""
        return cls(name, kind, frozenset(c.name for c in columns_of(kind)))

    def has(self, column: str) -> bool:
        """Whether the table has ``column``."""
        return column in self.columns

    @property
    def binary_ok(self) -> bool:
        """Whether the table can hold any bytes: it has a ``content`` (BYTEA) column.

        Without it a file lives in ``summary`` (TEXT) only, which holds UTF-8 text without NUL.
        """
        return "content" in self.columns

    @property
    def order_by(self) -> str:
        """The row order of the duplicate rule: ``creation_date, id`` (``id`` without dates)."""
        return "creation_date, id" if self.has("creation_date") else "id"

    def missing(self) -> list[str]:
        """Columns the SDK cannot do without that the table lacks (empty: usable)."""
        out = [c for c in _REQUIRED[self.kind] if c not in self.columns]
        if self.kind == MEMORY and not ({"summary", "content"} & self.columns):
            out.append("summary|content")
        return out

    def check(self) -> TableLayout:
        """Return the layout itself if the SDK can use it.

        Raises:
            TableLayoutError: The table lacks a column the SDK needs.
        """
        missing = self.missing()
        if missing:
            raise TableLayoutError(self, missing)
        return self

    def to_add(self) -> list[Column]:
        """Columns a migration adds: the SDK's columns the table lacks, never ``content``.

        ``content`` is only ever part of a table the SDK creates: adding it to an existing
        table would open the service's window of failing INSERTs for the table's other
        writers, and they would not fill it anyway.
        """
        return [c for c in columns_of(self.kind) if c.name not in self.columns | {"content"}]

    def with_columns(self, names: Iterable[str]) -> TableLayout:
        """A copy with ``names`` added (after a migration)."""
        return TableLayout(self.name, self.kind, self.columns | frozenset(names))


def row_rank(row: Mapping[str, Any]) -> tuple[str, str]:
    """Sort key of the duplicate rule: ``(creation_date, id)``, missing values as ``""``."""
    return (str(row.get("creation_date") or ""), str(row.get("id") or ""))


def oldest_per_path(
    rows: Iterable[Mapping[str, Any]], key: str = "path"
) -> dict[str, Mapping[str, Any]]:
    """The row each path resolves to when it has several: the first by :func:`row_rank`.

    Args:
        rows: Rows with ``key``, ``creation_date`` (optional) and ``id``.
        key: The column holding the path.

    Returns:
        Path -> its chosen row, in the order paths first appear.
    """
    chosen: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        p = row[key]
        best = chosen.get(p)
        if best is None or row_rank(row) < row_rank(best):
            chosen[p] = row
    return chosen
