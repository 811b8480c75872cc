"""``deeplake-sdk hook``: Claude Code hooks (session capture, one-query memory reads).

Claude Code runs each hook as a new process with the event's JSON on stdin. The hooks never
block the agent: a failure is reported on stderr with exit status 1 (a non-blocking error for
Claude Code), never 2; ``pre-tool-use`` prints nothing and exits 0 when it cannot answer, so
the tool runs unchanged. Rows and files the hooks write are journaled (durable when the hook
returns) and sent by ``hook drain``, which the hooks start in the background: the hook
itself does not wait for the service.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import shlex
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from deeplake_sdk.cli._common import (
    EXIT_OK,
    CliError,
    HelpFormatter,
    example_epilog,
    leave_to_journal,
)

__all__ = ["register"]

log = logging.getLogger(__name__)

#: Exit status of a failed hook: a non-blocking error for Claude Code (2 would block).
EXIT_HOOK_ERROR = 1
#: Seconds a background drain keeps trying.
DRAIN_TIMEOUT = 120.0


def register(subparsers: Any) -> None:
    """Add the ``hook`` command and its subcommands to the ``deeplake-sdk`` parser."""
    p = subparsers.add_parser(
        "hook",
        help="Claude Code hooks: capture sessions, answer memory reads in one query",
        description="Hooks for Claude Code (settings.json 'hooks'): each reads the hook's JSON "
        "payload on stdin. Install them with 'deeplake-sdk hook install --write'. Settings: "
        "DEEPLAKE_MEMORY_MOUNT (default ~/.deeplake/memory), DEEPLAKE_HOOK_DIR (default "
        "~/.deeplake/hook), DEEPLAKE_USER (default: the login name), DEEPLAKE_HOOK_DRAIN=0 "
        "(do not start the background drain).",
        epilog=example_epilog(
            "deeplake-sdk hook install",
            "deeplake-sdk hook install --write ~/.claude/settings.json",
            'echo \'{"hook_event_name": "UserPromptSubmit", ...}\' | deeplake-sdk hook capture',
        ),
        formatter_class=HelpFormatter,
    )
    sub = p.add_subparsers(dest="hook_command", metavar="SUBCOMMAND", required=True)
    for name, func, text in (
        ("session-start", cmd_session_start, "ensure the tables, write the placeholder summary"),
        ("capture", cmd_capture, "log a prompt, tool call or answer as a session row"),
        ("pre-tool-use", cmd_pre_tool_use, "answer Read/Grep/Bash on the memory mount"),
        ("session-end", cmd_session_end, "write the session's summary"),
        ("drain", cmd_drain, "send what the hooks journaled (run in the background)"),
    ):
        s = sub.add_parser(name, help=text, description=text, formatter_class=HelpFormatter)
        s.set_defaults(func=func)
    inst = sub.add_parser(
        "install",
        help="print or write the hooks section of Claude Code's settings.json",
        description="Print the 'hooks' section for Claude Code, or merge it into a settings "
        "file with --write (other hooks are kept; earlier deeplake-sdk hooks are replaced).",
        formatter_class=HelpFormatter,
    )
    inst.add_argument(
        "--write",
        nargs="?",
        const="~/.claude/settings.json",
        metavar="SETTINGS",
        help="merge into this settings file (default ~/.claude/settings.json)",
    )
    inst.add_argument(
        "--command",
        help="how Claude Code runs deeplake-sdk (default: this Python with -m deeplake_sdk.cli)",
    )
    inst.add_argument("--timeout", type=int, default=10, help="seconds per hook (default 10)")
    inst.set_defaults(func=cmd_install)


# -- plumbing ------------------------------------------------------------------------------------
def _payload() -> dict[str, Any]:
    try:
        data = json.loads(sys.stdin.read() or "{}")
    except ValueError as exc:
        raise CliError(f"the hook payload on stdin is not JSON: {exc}", EXIT_HOOK_ERROR) from exc
    if not isinstance(data, dict):
        raise CliError("the hook payload on stdin is not a JSON object", EXIT_HOOK_ERROR)
    return data


def _api(**kwargs: Any) -> Any:
    from deeplake_sdk.api import DeeplakeApi

    return DeeplakeApi(**kwargs)


def _settings() -> Any:
    from deeplake_sdk.integrations.claude_code_paths import HookSettings

    return HookSettings.from_env()


def _fail(exc: BaseException) -> int:
    print(f"deeplake-sdk hook: {exc}", file=sys.stderr)
    return EXIT_HOOK_ERROR


def spawn_drain() -> int | None:
    """Start ``deeplake-sdk hook drain`` detached from this process; returns its pid."""
    if os.environ.get("DEEPLAKE_HOOK_DRAIN", "1") == "0":
        return None
    proc = subprocess.Popen(
        [sys.executable, "-m", "deeplake_sdk.cli", "hook", "drain"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    return proc.pid


def _journaling(action: Any) -> int:
    """Run a hook that journals writes, start the background drain, and exit at once.

    The process ends with :func:`os._exit`: what it journaled is durable already, and the
    interpreter's teardown (the journal's exit drain, its flusher thread) is the drain's job.
    """
    leave_to_journal()
    payload = _payload()
    code = EXIT_OK
    try:
        from deeplake_sdk.errors import DeeplakeError

        try:
            # a service that cannot be connected to fails the hook at once: it must not hold
            # the agent (what it journaled is sent by the background drain)
            action(_api().connect_once(), payload, _settings())
        except (DeeplakeError, OSError, ValueError, TypeError) as exc:
            code = _fail(exc)
    except BaseException:
        traceback.print_exc()
        code = EXIT_HOOK_ERROR
    finally:
        spawn_drain()
        transport = sys.modules.get("deeplake_sdk.transport")
        if transport is not None:  # os._exit skips the exit handler that does it
            transport.leave_host_shares()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# -- commands --------------------------------------------------------------------------------------
def cmd_capture(args: argparse.Namespace) -> int:
    """``hook capture``: journal the event's row (UserPromptSubmit, PostToolUse, Stop...)."""
    from deeplake_sdk.integrations.claude_code import capture

    return _journaling(capture)


def cmd_session_start(args: argparse.Namespace) -> int:
    """``hook session-start``: ensure the tables, write the placeholder summary."""
    from deeplake_sdk.integrations.claude_code import session_start

    return _journaling(session_start)


def cmd_session_end(args: argparse.Namespace) -> int:
    """``hook session-end``: write the session's summary."""
    from deeplake_sdk.integrations.claude_code import session_end

    return _journaling(session_end)


def cmd_pre_tool_use(args: argparse.Namespace) -> int:
    """``hook pre-tool-use``: print the answer, or nothing to let the tool run.

    A call that does not concern the mount (nearly every ``Read``, ``Grep`` and ``Bash`` of
    a session) falls through before the client and the answerer are imported.
    """
    from deeplake_sdk.integrations.claude_code_paths import may_concern_mount

    payload = _payload()
    settings = _settings()
    if not may_concern_mount(payload, settings):
        return EXIT_OK
    from deeplake_sdk.integrations.claude_code_answer import pre_tool_use

    try:
        api = _api(timeout=settings.timeout, retries=0).connect_once()  # within its budget
    except Exception as exc:
        log.debug("pre-tool-use falls through: %s", exc)
        return EXIT_OK
    answer = pre_tool_use(api, payload, settings)
    if answer is not None:
        json.dump(answer, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    return EXIT_OK


def cmd_drain(args: argparse.Namespace) -> int:
    """``hook drain``: send the workspace's journal, one drainer at a time per hook dir."""
    from deeplake_sdk.journal.core import drain

    settings = _settings()
    root = settings.hook_dir.expanduser()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(root / "drain.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return EXIT_OK  # another drainer is at work
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        left = drain(_api(), timeout=DRAIN_TIMEOUT)
    return EXIT_OK if not left else EXIT_HOOK_ERROR


def cmd_install(args: argparse.Namespace) -> int:
    """``hook install``: print the hooks section, or merge it into a settings file."""
    from deeplake_sdk.integrations.claude_code import hooks_config

    command = args.command or f"{shlex.quote(sys.executable)} -m deeplake_sdk.cli"
    hooks = hooks_config(command, timeout=args.timeout)
    if not args.write:
        json.dump({"hooks": hooks}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    path = Path(args.write).expanduser()
    settings: dict[str, Any] = {}
    if path.exists():
        try:
            settings = json.loads(path.read_text() or "{}")
        except ValueError as exc:
            raise CliError(f"{path} is not JSON: {exc}") from exc
    merged = settings.setdefault("hooks", {})
    for event, entries in hooks.items():
        kept = [e for e in merged.get(event, []) if not _ours(e, command)]
        merged[event] = kept + entries
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote the deeplake-sdk hooks into {path}")
    return EXIT_OK


def _ours(entry: Any, command: str) -> bool:
    """Whether a settings.json hook entry runs ``<command> hook ...``."""
    hooks = entry.get("hooks", []) if isinstance(entry, dict) else []
    return any(
        isinstance(h, dict) and str(h.get("command", "")).startswith(f"{command} hook ")
        for h in hooks
    )
