r"""Claude Code hooks: capture sessions, and answer memory reads in one query.

Claude Code runs a hook as a fresh process with the event's JSON on stdin
(``deeplake-sdk hook ...``, see :mod:`deeplake_sdk.cli.hook`). This module holds what the
hooks do, without the process plumbing:

* :func:`hook_event` turns a ``UserPromptSubmit``, ``PostToolUse``, ``Stop`` or
  ``SubagentStop`` payload into the event the agent-memory plugin logs (same envelope, type and
  fields), and :func:`capture` journals its row through :class:`~deeplake_sdk.SessionLog`:
  durable when it returns, sent by a background process, so Claude Code never waits on the
  service;
* :func:`session_start` prepares both tables and writes the placeholder summary
  ``/summaries/<user>/<session>.md``; :func:`session_end` replaces it with a summary of the
  session's events;
* :func:`pre_tool_use` answers ``Read``, ``Grep`` and simple ``Bash`` commands on paths under
  the memory mount with **one query**, or falls through (it lives in
  :mod:`deeplake_sdk.integrations.claude_code_answer`, imported when first used here, so that
  capturing an event does not import it).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deeplake_sdk._lazy import lazy_attributes
from deeplake_sdk.integrations.claude_code_paths import HookSettings, to_memory_path
from deeplake_sdk.sessions import SessionLog, assistant_message, tool_call, user_message
from deeplake_sdk.statements.layout import MEMORY, SESSIONS

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.fs import DeeplakeFs
    from deeplake_sdk.integrations.claude_code_answer import pre_tool_use

__all__ = [
    "AGENT",
    "HookSettings",
    "capture",
    "hook_event",
    "hooks_config",
    "placeholder_summary",
    "pre_tool_use",
    "session_end",
    "session_start",
    "summary_path",
    "to_memory_path",
]

log = logging.getLogger(__name__)

#: ``agent`` column of the rows the hooks write (the plugin's value).
AGENT = "claude_code"
#: Hook event -> the plugin's event type.
EVENT_TYPES = {
    "UserPromptSubmit": "user_message",
    "PostToolUse": "tool_call",
    "Stop": "assistant_message",
    "SubagentStop": "assistant_message",
}
#: Payload fields copied into every event's envelope (when present), in the plugin's order.
ENVELOPE = (
    "session_id",
    "transcript_path",
    "cwd",
    "permission_mode",
    "hook_event_name",
    "agent_id",
    "agent_type",
)


# -- capture ---------------------------------------------------------------------------------
def hook_event(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The plugin's event for a hook payload, or None for an event that logs no row.

    ``UserPromptSubmit`` -> ``user_message`` (``content``: the prompt); ``PostToolUse`` ->
    ``tool_call`` (``tool_input``/``tool_response`` as JSON strings); ``Stop`` and
    ``SubagentStop`` -> ``assistant_message`` (``content``: ``last_assistant_message`` of the
    payload, else the last assistant text of the transcript). The envelope fields of the
    payload (:data:`ENVELOPE`) come first.
    """
    name = str(payload.get("hook_event_name") or "")
    kind = EVENT_TYPES.get(name)
    if kind is None:
        return None
    event: dict[str, Any] = {k: payload[k] for k in ENVELOPE if payload.get(k) is not None}
    if kind == "user_message":
        event.update(user_message(str(payload.get("prompt") or "")))
    elif kind == "tool_call":
        event.update(
            tool_call(
                str(payload.get("tool_name") or ""),
                payload.get("tool_input"),
                payload.get("tool_response"),
                tool_use_id=payload.get("tool_use_id") or None,
            )
        )
    else:
        transcript = payload.get("agent_transcript_path") or payload.get("transcript_path")
        content = payload.get("last_assistant_message")
        if content is None:
            content = last_assistant_text(str(transcript or ""))
        event.update(assistant_message(str(content)))
        if payload.get("agent_transcript_path"):
            event["agent_transcript_path"] = payload["agent_transcript_path"]
    return event


def last_assistant_text(transcript_path: str) -> str:
    """Text of the last assistant message of a Claude Code transcript (JSONL), or ``""``."""
    try:
        with open(os.path.expanduser(transcript_path), encoding="utf-8") as f:
            lines = f.readlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("message") if isinstance(entry, dict) else None
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [c.get("text", "") for c in content if isinstance(c, dict)]
            text = "\n".join(t for t in texts if t)
            if text:
                return text
    return ""


def session_log(api: DeeplakeApi, payload: Mapping[str, Any], settings: HookSettings) -> SessionLog:
    """The :class:`~deeplake_sdk.SessionLog` of the payload's session (no round trip).

    ``project`` is the last component of ``cwd``, ``agent`` :data:`AGENT`; the table is not
    probed (the plugin's and the SDK's sessions tables both have every column a row fills).
    """
    cwd = str(payload.get("cwd") or "")
    return SessionLog(
        api,
        str(payload.get("session_id") or "unknown"),
        user=settings.user,
        project=os.path.basename(cwd.rstrip("/")),
        table=settings.tables(api)[1],
        ensure=False,
        agent=AGENT,
    )


def capture(api: DeeplakeApi, payload: Mapping[str, Any], settings: HookSettings) -> str | None:
    """Journal the payload's event row; returns its id, or None when the event logs no row.

    Durable when it returns; nothing is sent here (see ``deeplake-sdk hook drain``).
    """
    event = hook_event(payload)
    if event is None:
        return None
    return session_log(api, payload, settings).log(event)


# -- session start / end ----------------------------------------------------------------------
def summary_path(user: str, session_id: str) -> str:
    """The summary file of a session: ``/summaries/<user>/<session id>.md``."""
    clean = [v.replace("/", "_").replace("\x00", "_") for v in (user, session_id)]
    return f"/summaries/{clean[0]}/{clean[1]}.md"


def placeholder_summary(payload: Mapping[str, Any], settings: HookSettings) -> str:
    """The summary written when a session starts (replaced when it ends)."""
    sid = str(payload.get("session_id") or "unknown")
    cwd = str(payload.get("cwd") or "")
    return (
        f"# Session {sid}\n\n"
        f"- user: {settings.user}\n"
        f"- project: {os.path.basename(cwd.rstrip('/'))}\n"
        f"- started: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n\n"
        "Session in progress.\n"
    )


def session_start(api: DeeplakeApi, payload: Mapping[str, Any], settings: HookSettings) -> str:
    """Ensure both tables and write the placeholder summary unless the file exists.

    Returns:
        The summary's path.
    """
    memory, sessions = settings.tables(api)
    api.ensure_tables({memory: MEMORY, sessions: SESSIONS})
    path = summary_path(settings.user, str(payload.get("session_id") or "unknown"))
    fs = _memory_fs(api, settings)
    try:
        if not fs.exists(path):
            fs.write_text(path, placeholder_summary(payload, settings))
    finally:
        fs.close(wait=False)
    return path


def session_end(api: DeeplakeApi, payload: Mapping[str, Any], settings: HookSettings) -> str:
    """Replace the session's summary with one built from its events (counts, prompts, tools).

    Returns:
        The summary's path.
    """
    events = session_log(api, payload, settings).read()
    prompts = [str(e.get("content", "")) for e in events if e.get("type") == "user_message"]
    tools = [str(e.get("tool_name", "")) for e in events if e.get("type") == "tool_call"]
    sid = str(payload.get("session_id") or "unknown")
    lines = [
        f"# Session {sid}",
        "",
        f"- user: {settings.user}",
        f"- project: {os.path.basename(str(payload.get('cwd') or '').rstrip('/'))}",
        f"- ended: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
        + (f" ({payload['reason']})" if payload.get("reason") else ""),
        f"- events: {len(events)}, prompts: {len(prompts)}, tool calls: {len(tools)}",
    ]
    if tools:
        counts = {t: tools.count(t) for t in dict.fromkeys(tools)}
        lines.append("- tools: " + ", ".join(f"{t} x{n}" for t, n in counts.items()))
    if prompts:
        lines += ["", "## Prompts", ""] + [f"- {_one_line(p)}" for p in prompts]
    path = summary_path(settings.user, sid)
    fs = _memory_fs(api, settings)
    try:
        fs.write_text(path, "\n".join(lines) + "\n")
    finally:
        fs.close(wait=False)
    return path


def _memory_fs(api: DeeplakeApi, settings: HookSettings) -> DeeplakeFs:
    """The memory table as a filesystem, without waiting for other processes' writes."""
    from deeplake_sdk.fs import DeeplakeFs

    return DeeplakeFs(
        api,
        settings.tables(api)[0],
        sessions_table=None,
        cache=False,
        author=settings.user,
        recover_timeout=0,
    )


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# -- settings.json ------------------------------------------------------------------------------
def hooks_config(command: str, *, timeout: int = 10) -> dict[str, Any]:
    """The ``hooks`` section of Claude Code's ``settings.json`` running ``command hook ...``.

    Args:
        command: How to run ``deeplake-sdk`` (e.g. ``deeplake-sdk`` or
            ``/path/python -m deeplake_sdk.cli``).
        timeout: Seconds Claude Code gives each hook.
    """

    def entry(sub: str, matcher: str | None = None) -> dict[str, Any]:
        hook = {"type": "command", "command": f"{command} hook {sub}", "timeout": timeout}
        out: dict[str, Any] = {"hooks": [hook]}
        if matcher is not None:
            out = {"matcher": matcher, **out}
        return out

    return {
        "SessionStart": [entry("session-start")],
        "UserPromptSubmit": [entry("capture")],
        "PreToolUse": [entry("pre-tool-use", "Read|Grep|Bash")],
        "PostToolUse": [entry("capture", "*")],
        "Stop": [entry("capture")],
        "SubagentStop": [entry("capture")],
        "SessionEnd": [entry("session-end")],
    }


#: ``pre_tool_use`` lives in claude_code_answer: imported when first used, not by a capture.
__getattr__ = lazy_attributes(
    __name__, {"pre_tool_use": "deeplake_sdk.integrations.claude_code_answer"}, globals()
)
