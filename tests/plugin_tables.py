"""The tables and rows of the agent-memory plugin (v0.7.33), as DESIGN section 10 describes them.

Test helpers: the plugin's exact DDL for its memory and sessions tables, and session event rows
built and inserted the way the plugin does (message = the event's ``JSON.stringify`` text, in
the plugin's key order; ``size_bytes`` = its UTF-8 length; ``agent`` = ``claude_code``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

PLUGIN_VERSION = "0.7.33"

PLUGIN_MEMORY_DDL = (
    "CREATE TABLE IF NOT EXISTS \"{table}\" (id TEXT NOT NULL DEFAULT '', "
    "path TEXT NOT NULL DEFAULT '', filename TEXT NOT NULL DEFAULT '', "
    "summary TEXT NOT NULL DEFAULT '', summary_embedding FLOAT4[], "
    "author TEXT NOT NULL DEFAULT '', mime_type TEXT NOT NULL DEFAULT 'text/plain', "
    "size_bytes BIGINT NOT NULL DEFAULT 0, project TEXT NOT NULL DEFAULT '', "
    "description TEXT NOT NULL DEFAULT '', agent TEXT NOT NULL DEFAULT '', "
    "plugin_version TEXT NOT NULL DEFAULT '', creation_date TEXT NOT NULL DEFAULT '', "
    "last_update_date TEXT NOT NULL DEFAULT '') USING deeplake"
)

PLUGIN_SESSIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS \"{table}\" (id TEXT NOT NULL DEFAULT '', "
    "path TEXT NOT NULL DEFAULT '', filename TEXT NOT NULL DEFAULT '', message JSONB, "
    "message_embedding FLOAT4[], author TEXT NOT NULL DEFAULT '', "
    "mime_type TEXT NOT NULL DEFAULT 'application/json', "
    "size_bytes BIGINT NOT NULL DEFAULT 0, project TEXT NOT NULL DEFAULT '', "
    "description TEXT NOT NULL DEFAULT '', agent TEXT NOT NULL DEFAULT '', "
    "plugin_version TEXT NOT NULL DEFAULT '', creation_date TEXT NOT NULL DEFAULT '', "
    "last_update_date TEXT NOT NULL DEFAULT '') USING deeplake"
)

#: Matches every DDL statement: a fault on it fails the test if the SDK sends one.
DDL_PATTERN = r"(?is)^\s*(CREATE|ALTER|DROP)\b"


def create_plugin_tables(raw: Any, memory: str = "memory", sessions: str = "sessions") -> None:
    """Create the plugin's memory and sessions tables through ``raw`` (a RawClient)."""
    raw.rows(PLUGIN_MEMORY_DDL.format(table=memory))
    raw.rows(PLUGIN_SESSIONS_DDL.format(table=sessions))


def session_path(user: str, org_name: str, workspace: str, session_id: str) -> str:
    """The plugin's session file path."""
    return f"/sessions/{user}/{user}_{org_name}_{workspace}_{session_id}.jsonl"


def plugin_event(
    session_id: str, kind: str, timestamp: str, *, cwd: str = "/home/ada/proj", **fields: Any
) -> dict[str, Any]:
    """One event in the plugin's key order (a hook's input fields, then its own)."""
    return {
        "id": str(uuid.uuid4()),
        "session_id": session_id,
        "transcript_path": f"/home/ada/.claude/projects/{session_id}.jsonl",
        "cwd": cwd,
        "permission_mode": "default",
        "hook_event_name": {
            "user_message": "UserPromptSubmit",
            "tool_call": "PostToolUse",
            "assistant_message": "Stop",
        }[kind],
        "timestamp": timestamp,
        "type": kind,
        **fields,
    }


def stringify(event: dict[str, Any]) -> str:
    """``JSON.stringify(event)`` for events of strings (same escapes, no spaces, key order)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def insert_plugin_session_row(
    raw: Any,
    event: dict[str, Any],
    *,
    user: str,
    path: str,
    table: str = "sessions",
    row_id: str | None = None,
) -> str:
    """Insert one event row as the plugin does; returns the message text it stored."""
    text = stringify(event)
    raw.rows(
        f'INSERT INTO "{table}" (id, path, filename, message, author, mime_type, size_bytes, '
        "project, description, agent, plugin_version, creation_date, last_update_date) "
        "VALUES ($1, $2, $3, $4::jsonb, $5, 'application/json', $6, $7, $8, 'claude_code', "
        "$9, $10, $10)",
        row_id or str(uuid.uuid4()),
        path,
        path.rsplit("/", 1)[-1],
        text,
        user,
        len(text.encode("utf-8")),
        event["cwd"].rsplit("/", 1)[-1],
        event["hook_event_name"],
        PLUGIN_VERSION,
        event["timestamp"],
    )
    return text
