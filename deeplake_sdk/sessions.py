"""Session logs: append-only event rows in the sessions table, read back as JSONL files.

Events and rows have the shape the agent-memory plugin gives them, so that one session id
maps to one file whichever client wrote it:

* path ``/sessions/<user>/<user>_<org>_<workspace>_<session id>.jsonl`` (:func:`session_path`);
* every event is a JSON object with the envelope ``id`` (a UUID), ``session_id``,
  ``timestamp`` (ISO-8601 UTC) and ``type``, plus its own fields (:func:`user_message`,
  :func:`tool_call`, :func:`assistant_message` build the plugin's three types);
* the row (:func:`session_row`): ``message`` the event's JSON, ``size_bytes`` the UTF-8
  length of its compact JSON text, ``author`` the user, ``description`` the hook event name
  or the type, ``agent``, ``plugin_version``, and both dates the event's timestamp.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deeplake_sdk.dates import next_stamp
from deeplake_sdk.errors import DeeplakeError
from deeplake_sdk.http_errors import is_unreachable
from deeplake_sdk.journal.core import Recorded, journal_for
from deeplake_sdk.journal.limits import DEFAULT_LIMITS, Limits
from deeplake_sdk.journal.store import NewEntry
from deeplake_sdk.statements import files as st
from deeplake_sdk.statements.layout import AGENT, PLUGIN_VERSION, SESSIONS, TableLayout

if TYPE_CHECKING:
    from os import PathLike

    from deeplake_sdk.api import DeeplakeApi

__all__ = [
    "SessionLog",
    "assistant_message",
    "session_event",
    "session_path",
    "session_row",
    "tool_call",
    "user_message",
]

log = logging.getLogger(__name__)


def _component(text: str) -> str:
    """``text`` usable as one path component (``/`` and NUL become ``_``)."""
    return text.replace("/", "_").replace("\x00", "_")


def session_path(user: str, org: str, workspace: str, session_id: str) -> str:
    """The plugin's path of a session file.

    ``/sessions/<user>/<user>_<org>_<workspace>_<session_id>.jsonl``; values are used as
    they are, except that ``/`` and NUL become ``_``.

    Args:
        user: The user the session belongs to.
        org: The org's name (the plugin's choice) or, when no name is known, its id.
        workspace: The workspace id.
        session_id: The session id.
    """
    u, o, w, s = (_component(v) for v in (user, org, workspace, session_id))
    return f"/sessions/{u}/{u}_{o}_{w}_{s}.jsonl"


def _json_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def user_message(content: str, **fields: Any) -> dict[str, Any]:
    """A ``user_message`` event (the user's prompt), as the plugin logs it."""
    return {"type": "user_message", "content": content, **fields}


def assistant_message(content: str, **fields: Any) -> dict[str, Any]:
    """An ``assistant_message`` event (the agent's answer), as the plugin logs it."""
    return {"type": "assistant_message", "content": content, **fields}


def tool_call(
    tool_name: str,
    tool_input: Any,
    tool_response: Any,
    *,
    tool_use_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A ``tool_call`` event, as the plugin logs it.

    Args:
        tool_name: The tool, e.g. ``"Grep"``.
        tool_input: Its input; stored as a JSON *string* (a ``str`` is taken as JSON text
            already, anything else is serialised).
        tool_response: Its response, stored like ``tool_input``.
        tool_use_id: The agent's id of the call (default: a new UUID).
        fields: More fields of the event.
    """
    return {
        "type": "tool_call",
        "tool_name": tool_name,
        "tool_use_id": tool_use_id or str(uuid.uuid4()),
        "tool_input": _json_string(tool_input),
        "tool_response": _json_string(tool_response),
        **fields,
    }


def session_event(event: Mapping[str, Any], *, session_id: str, timestamp: str) -> dict[str, Any]:
    """``event`` inside the plugin's envelope: ``id``, ``session_id``, ``timestamp``, ``type``.

    Values the event carries win; a missing ``id`` is a new UUID, a missing ``type``
    ``"event"``.
    """
    return {
        "id": str(uuid.uuid4()),
        "session_id": session_id,
        "timestamp": timestamp,
        "type": "event",
        **event,
    }


def session_row(
    message: Mapping[str, Any],
    *,
    path: str,
    user: str,
    project: str = "",
    description: str | None = None,
    agent: str = AGENT,
    row_id: str | None = None,
) -> dict[str, Any]:
    """The sessions-table row of one event (pure: no I/O, no clock).

    Args:
        message: The event (with its envelope, see :func:`session_event`).
        path: The session file.
        user: ``author``.
        project: ``project``.
        description: ``description`` (default: the event's ``hook_event_name``, else its
            ``type``).
        agent: ``agent``.
        row_id: Row id (default: the event's ``id``, so a row id and its event id agree).

    Returns:
        Column -> value, for :func:`deeplake_sdk.statements.journal.insert_events`:
        ``message`` is the compact JSON text and ``size_bytes`` its UTF-8 length, both dates
        the event's ``timestamp``.

    Raises:
        ValueError: The event has no ``id`` and no ``row_id`` is given, or it is not JSON.
    """
    text = st.message_text(dict(message))
    rid = row_id or message.get("id")
    if not rid:
        raise ValueError("an event row needs an id: give the event an 'id' or pass row_id")
    stamp = str(message.get("timestamp") or "")
    if description is None:
        description = str(message.get("hook_event_name") or message.get("type") or "")
    return {
        "id": str(rid),
        "path": path,
        "filename": path.rsplit("/", 1)[-1],
        "message": text,
        "author": user,
        "mime_type": "application/json",
        "size_bytes": len(text.encode("utf-8")),
        "project": project,
        "description": description,
        "agent": agent,
        "plugin_version": PLUGIN_VERSION,
        "creation_date": stamp,
        "last_update_date": stamp,
    }


class SessionLog:
    """Log the events of one agent session as rows of the sessions table.

    Every event becomes one JSONB row whose id is the event's id, and the statement only
    inserts when no row has that id, so a retried write never adds a second row (a copy sent
    again after a lost answer is marked, so that one the read lag hid is deleted when it
    shows: :mod:`deeplake_sdk.journal.events`). The events of
    a session share one path and read back, through :class:`~deeplake_sdk.DeeplakeFs`, as a
    JSONL file in the order they were logged::

        log = SessionLog(api, "s-42", user="ada")
        log.log(user_message("What did we decide?"))
        log.log(assistant_message("To ship on Friday."))
        fs.read_text(log.path)  # two JSON lines

    Args:
        api: The client to use.
        session_id: Identifier of the session (part of the path, ``session_id`` of events).
        user: Who the session belongs to (``author`` column, part of the path).
        project: Value of the ``project`` column.
        table: Sessions table name (default: the configured one, ``sessions``).
        path: Path of the session file (default: :func:`session_path` with the org's name,
            else its id, and the workspace id).
        ensure: Ensure the sessions table first (once per process and table) and use its
            layout; ``False`` assumes the table has the SDK's columns. When the service cannot
            be reached (and no layout is remembered), events are journaled anyway and the
            layout is learnt when :meth:`read` first needs it.
        agent: Value of the ``agent`` column.
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
        agent: str = AGENT,
        journal: bool | str | PathLike[str] | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if not session_id:
            raise ValueError("session_id must not be empty")
        self.api = api
        self.session_id = session_id
        self.user = user
        self.project = project
        self.agent = agent
        self.table = table or api.credentials.sessions_table
        self.limits = limits
        self.journal = journal_for(api, journal)
        self.journal.adopt_all()  # entries other processes left are sent (and read) too
        self.recorded = Recorded(self.journal)
        self.path = path or session_path(
            user, api.credentials.org_label, api.workspace_id, session_id
        )
        self.events_logged = 0
        self._layout = self._first_layout() if ensure else TableLayout.full(self.table, SESSIONS)

    def _first_layout(self) -> TableLayout | None:
        """The sessions table's layout, or None while the service cannot be reached."""
        try:  # a service that cannot be connected to: journal events at once, ask again later
            return self.api.connect_once().ensure_sessions_table(self.table)
        except DeeplakeError as exc:
            if not is_unreachable(exc):
                raise
            log.warning(
                "sessions table %r not reachable (%s): events are journaled and sent once the "
                "service answers",
                self.table,
                exc,
            )
            return None

    @property
    def layout(self) -> TableLayout:
        """Layout of the sessions table (learnt on first need if the service was unreachable).

        Raises:
            DeeplakeError: It is not known and the service cannot tell it.
        """
        if self._layout is None:
            self._layout = self.api.ensure_sessions_table(self.table)
        return self._layout

    def make_row(
        self, event: Mapping[str, Any], *, description: str | None = None
    ) -> dict[str, Any]:
        """The row :meth:`log` would store for ``event`` (nothing is sent).

        The event gets the envelope (:func:`session_event`) with a timestamp strictly after
        every date this process gave before (:func:`~deeplake_sdk.dates.next_stamp`), so
        after the previous event's of this log, which gives the file its order.

        Raises:
            TypeError: The event is not a mapping.
            ValueError: The event holds a NUL character or is not JSON.
        """
        if not isinstance(event, Mapping):
            raise TypeError(f"event must be a dict, not {type(event).__name__}")
        if _has_nul(event):
            raise ValueError(
                "the event holds a NUL character (\\u0000), which the sessions table's JSONB "
                "column cannot store; remove it or encode the value (e.g. base64)"
            )
        message = session_event(event, session_id=self.session_id, timestamp=next_stamp())
        return session_row(
            message,
            path=self.path,
            user=self.user,
            project=self.project,
            description=description,
            agent=self.agent,
        )

    def send_row(self, row: Mapping[str, Any]) -> str:
        """Journal a row of :meth:`make_row` (durable when this returns); returns its id.

        The journal's flusher inserts it exactly once (a row whose id is stored already is
        not inserted again).

        Raises:
            ValueError: Its ``message`` is over :attr:`Limits.event_bytes
                <deeplake_sdk.journal.Limits>`.
        """
        message = str(row["message"])
        size = len(message.encode("utf-8"))
        if size > self.limits.event_bytes:
            raise ValueError(
                f"the event's JSON text is {size:,} bytes, over the {self.limits.event_bytes:,}"
                "-byte limit of one event (Limits.event_bytes)"
            )
        meta = {k: v for k, v in row.items() if k != "message"}
        self.recorded.record(
            [NewEntry("event", self.table, self.path, message.encode("utf-8"), {"row": meta})]
        )
        self.events_logged += 1
        return str(row["id"])

    def log(self, event: Mapping[str, Any], *, description: str | None = None) -> str:
        """Journal one event (durable when this returns); returns its id (also its row's).

        The journal's flusher inserts it in the background; :meth:`flush` waits for it.

        Args:
            event: A JSON object: the event's fields (``type`` and its own), optionally
                ``id``/``timestamp`` to keep them.
            description: Value of the ``description`` column (default: the event's
                ``hook_event_name``, else its ``type``).

        Raises:
            TypeError: The event is not a JSON object.
            ValueError: The event holds a NUL character (a JSONB column cannot store it), or
                its JSON text is over :attr:`Limits.event_bytes
                <deeplake_sdk.journal.Limits>`.
        """
        return self.send_row(self.make_row(event, description=description))

    def flush(self, timeout: float | None = 60.0, *, while_reachable: bool = False) -> int:
        """Wait until the events this log journaled are stored (see ``DeeplakeFs.flush``)."""
        return self.recorded.flush(timeout, while_reachable=while_reachable)

    def read(self) -> list[Any]:
        """Every event of this session file, in order, each once (whoever logged it).

        Events are returned as stored (dicts): this SDK's and the plugin's alike, and the
        events this process journaled that are not stored yet.
        """
        sql, params = st.session_lines(self.layout, self.path)
        rows = st.distinct_events(self.api.query(sql, params))
        stored = {str(r["id"]) for r in rows} | {str(r["event_key"]) for r in rows}
        lines = [r["message"] for r in rows]
        lines += self.journal.overlay.event_lines(self.table, self.path, stored)
        return [json.loads(line) for line in lines]


def _has_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL character in any string (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False
