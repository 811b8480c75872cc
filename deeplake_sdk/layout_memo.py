"""Table layouts remembered on disk, so that a new process does not probe them again.

:meth:`DeeplakeApi.ensure_tables <deeplake_sdk.DeeplakeApi.ensure_tables>` probes a table's
columns once (one ``information_schema`` query) and remembers the
:class:`~deeplake_sdk.statements.layout.TableLayout` for the process; this module keeps it
for the next processes too, one small JSON file per endpoint, org and workspace, for
:data:`LAYOUT_TTL` seconds. An entry is dropped when a statement reports a missing table or
column (the table was dropped or altered behind the SDK's back), and the next ensure probes
again. Everything here is best effort: a directory that cannot be read or written only costs
the probe.

The directory is ``$DEEPLAKE_STATE_DIR/layouts``, else ``$XDG_CACHE_HOME/deeplake-sdk/layouts``
or ``~/.cache/deeplake-sdk/layouts``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from deeplake_sdk.statements.layout import MEMORY, SESSIONS, TableLayout

__all__ = ["LAYOUT_TTL", "LayoutMemo", "default_state_dir"]

logger = logging.getLogger(__name__)

#: Seconds a remembered layout is trusted without probing the table again (one day).
LAYOUT_TTL = 24 * 3600.0

#: (endpoint, org, workspace): the tables of one workspace.
Base = tuple[str, str, str]


def default_state_dir() -> str:
    """The SDK's state directory (``$DEEPLAKE_STATE_DIR``, else a ``deeplake-sdk`` cache dir)."""
    explicit = os.environ.get("DEEPLAKE_STATE_DIR")
    if explicit:
        return os.path.expanduser(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "deeplake-sdk")


class LayoutMemo:
    """Layouts of tables by (endpoint, org, workspace, table), in files under ``directory``.

    Args:
        directory: Where the files live (default: ``layouts`` under :func:`default_state_dir`,
            read when the memo is first used, so the environment can change before).
        ttl: Seconds an entry stays valid.
    """

    def __init__(self, directory: str | None = None, ttl: float = LAYOUT_TTL) -> None:
        self._directory = directory
        self.ttl = ttl

    @property
    def directory(self) -> str:
        """The directory of the files."""
        return self._directory or os.path.join(default_state_dir(), "layouts")

    def _file(self, base: Base) -> str:
        digest = hashlib.sha256(json.dumps(list(base)).encode()).hexdigest()[:32]
        return os.path.join(self.directory, f"{digest}.json")

    def _read(self, base: Base) -> dict[str, Any]:
        try:
            with open(self._file(base), encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.debug("layout memo unreadable (%s): probing instead", exc)
            return {}
        if not isinstance(data, dict) or data.get("base") != list(base):
            return {}
        tables = data.get("tables")
        return tables if isinstance(tables, dict) else {}

    def _write(self, base: Base, tables: Mapping[str, Any]) -> None:
        path = self._file(base)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"base": list(base), "tables": dict(tables)}, f)
            os.replace(tmp, path)
        except OSError as exc:
            logger.debug("layout memo not written (%s)", exc)
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)

    def get(self, base: Base, table: str) -> TableLayout | None:
        """The remembered layout of ``table``, or None (unknown, expired or unreadable)."""
        entry = self._read(base).get(table)
        try:
            if time.time() - float(entry["at"]) > self.ttl:
                return None
            kind = entry["kind"]
            if kind not in (MEMORY, SESSIONS):
                return None
            return TableLayout(table, kind, frozenset(str(c) for c in entry["columns"]))
        except (TypeError, KeyError, ValueError):
            return None

    def put(self, base: Base, layouts: Mapping[str, TableLayout]) -> None:
        """Remember ``layouts`` (table name -> layout) as probed now."""
        tables = self._read(base)
        now = time.time()
        for name, layout in layouts.items():
            tables[name] = {"kind": layout.kind, "columns": sorted(layout.columns), "at": now}
        self._write(base, tables)

    def forget(self, base: Base, table: str | None = None) -> None:
        """Forget ``table`` (None: every table of the workspace)."""
        tables = self._read(base)
        if not tables:
            return
        if table is None:
            tables = {}
        elif tables.pop(table, None) is None:
            return
        self._write(base, tables)
