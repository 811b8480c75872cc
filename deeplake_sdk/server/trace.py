"""A statement trace: what each query ran, when it was answered and, under read lag, committed.

``deeplake-sdk server --trace FILE`` (``local(trace=FILE)``) appends one JSON object per line:

* ``{"kind": "statement", "id", "at", "answered", "org", "workspace", "statement", "params",
  "outcome", "fault"}`` once a statement of the query API is answered: ``at`` and
  ``answered`` are wall times (seconds), ``outcome`` the row count, or ``"HTTP <status>"``
  when it failed, ``fault`` the fault injected into its answer (``commit_502``...);
* ``{"kind": "commit", "id", "at"}`` when a write whose commit ``read_lag_ms`` deferred is
  committed (``id`` is its statement's).

Long texts and parameters are cut (:data:`TEXT_CHARS`); binary parameters are shown by size.
Requests refused before their statement ran (injected errors, rate limits) are not traced.
Meant for debugging a client against the faults (who wrote what, and when other requests
could see it), not for production: every statement costs a line of I/O.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from gevent.lock import RLock

__all__ = ["TEXT_CHARS", "StatementTrace"]

#: Characters kept of a statement's text and of each text parameter.
TEXT_CHARS = 200


class StatementTrace:
    """Appends trace lines to a file (one per statement answered, one per deferred commit).

    Args:
        path: The file (appended to; created if missing).
    """

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self._lock = RLock()
        self._ids = itertools.count(1)

    def new_id(self) -> int:
        """An id for a statement about to run (its commit line, if any, gives it too)."""
        return next(self._ids)

    def statement(
        self,
        trace_id: int,
        at: float,
        where: tuple[str, str],
        body: dict[str, Any],
        *,
        outcome: Any,
        fault: str | None,
    ) -> None:
        """Trace one answered statement (``where`` is ``(org, workspace)``)."""
        self._write(
            kind="statement",
            id=trace_id,
            at=round(at, 6),
            answered=round(time.time(), 6),
            org=where[0],
            workspace=where[1],
            statement=_cut(" ".join(str(body.get("query", "")).split())),
            params=[_param(p) for p in body.get("params") or []],
            outcome=outcome,
            fault=fault,
        )

    def commit(self, trace_id: int) -> None:
        """Trace the deferred commit of statement ``trace_id``."""
        self._write(kind="commit", id=trace_id, at=round(time.time(), 6))

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()

    def _write(self, **fields: Any) -> None:
        line = json.dumps(fields, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)
                self._file.flush()


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "..."


def _param(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith("\\x"):
            return f"<{(len(value) - 2) // 2} bytes>"
        return _cut(value)
    return value
