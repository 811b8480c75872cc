"""Session logs: append-only event rows in the sessions table, read back as JSONL files."""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from deeplake_sdk.journal.core import journal_for
from deeplake_sdk.journal.limits import DEFAULT_LIMITS, Limits
from deeplake_sdk.journal.store import NewEntry
from deeplake_sdk.statements import files as st

if TYPE_CHECKING:
    from os import PathLike

    from deeplake_sdk.api import DeeplakeApi

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class SessionLog:
    """Log the events of one agent session as rows of the sessions table.

    Every event becomes one JSONB row carrying a client-generated id, and the statement only
    inserts when no row has that id, so a retried write never adds a second row. The events of a
    session share one path and read back, through :class:`~deeplake_sdk.DeeplakeFs`, as a
    JSONL file in the order they were logged::

        log = SessionLog(api, "s-42", user="ada")
        log.log({"type": "prompt", "text": "What did we decide?"})
        log.log({"type": "response", "text": "To ship on Friday."})
        fs.read_text(log.path)  # two JSON lines

    Args:
        api: The client to use.
        session_id: Identifier of the session (part of the path).
        user: Who the session belongs to (``author`` column, part of the path).
        project: Value of the ``project`` column.
        table: Sessions table name.
        path: Path of the session file (default ``/sessions/<user>/<session_id>.jsonl``).
        ensure: Create or migrate the sessions table first (once per process and table).
        journal: The local journal (see :class:`~deeplake_sdk.DeeplakeFs`):
            each event is durable there when :meth:`log` returns, and stored by the flusher.
        limits: Size limits checked before an event is journaled.
    """

    def __init__(
        self,
        api: DeeplakeApi,
        session_id: str,
        *,
        user: str = "anonymous",
        project: str = "",
        table: str | None = None,
        path: str | None = None,
        ensure: bool = True,
        journal: bool | str | PathLike[str] | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if not session_id:
            raise ValueError("session_id must not be empty")
        self.api = api
        self.session_id = session_id
        self.user = user
        self.project = project
        self.table = table or api.credentials.sessions_table
        self.limits = limits
        self.journal = journal_for(api, journal)
        self.path = path or f"/sessions/{_SAFE.sub('_', user)}/{_SAFE.sub('_', session_id)}.jsonl"
        self.events_logged = 0
        self._last_stamp: datetime | None = None
        if ensure:
            api.ensure_sessions_table(self.table)

    def log(self, event: dict[str, Any], *, description: str | None = None) -> str:
        """Journal one event (durable when this returns); returns the id of its row.

        The journal's flusher inserts it in the background; :meth:`flush` waits for it.

        Args:
            event: A JSON-serialisable mapping (stored as JSONB).
            description: Value of the ``description`` column (default: the event's ``type``).

        Raises:
            TypeError: The event is not a JSON object.
            ValueError: The event holds a NUL character (a JSONB column cannot store it), or
                its JSON text is over :attr:`Limits.event_bytes
                <deeplake_sdk.journal.Limits>`.
        """
        if not isinstance(event, dict):
            raise TypeError(f"event must be a dict, not {type(event).__name__}")
        message = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        self._check(event, message)
        stamp = self._next_stamp()
        row_id = uuid.uuid4().hex
        row = {
            "id": row_id,
            "path": self.path,
            "filename": self.path.rsplit("/", 1)[-1],
            "message": message,
            "author": self.user,
            "mime_type": "application/json",
            "size_bytes": len(message.encode()) + 1,
            "project": self.project,
            "description": description if description is not None else str(event.get("type", "")),
            "creation_date": stamp,
            "last_update_date": stamp,
        }
        del row["message"]
        self.journal.record(
            [NewEntry("event", self.table, self.path, message.encode("utf-8"), {"row": row})]
        )
        self.events_logged += 1
        return row_id

    def flush(self, timeout: float | None = 60.0) -> int:
        """Wait until the events this process journaled are stored (see ``DeeplakeFs.flush``)."""
        return self.journal.flush(timeout)

    def _check(self, event: dict[str, Any], message: str) -> None:
        if _has_nul(event):
            raise ValueError(
                "the event holds a NUL character (\\u0000), which the sessions table's JSONB "
                "column cannot store; remove it or encode the value (e.g. base64)"
            )
        size = len(message.encode("utf-8"))
        if size > self.limits.event_bytes:
            raise ValueError(
                f"the event's JSON text is {size:,} bytes, over the {self.limits.event_bytes:,}"
                "-byte limit of one event (Limits.event_bytes)"
            )

    def read(self) -> list[dict[str, Any]]:
        """Every event of this session, in the order they were logged (journaled ones too)."""
        sql, params = st.session_lines(self.table, self.path)
        rows = self.api.query(sql, params)
        lines = [r["line"] for r in rows]
        stored = {str(r["id"]) for r in rows}
        lines += self.journal.overlay.event_lines(self.table, self.path, stored)
        return [json.loads(line) for line in lines]

    def _next_stamp(self) -> str:
        """Creation date strictly after the previous event's (the file's order)."""
        now = datetime.now(timezone.utc)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _has_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL character in any string (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False
