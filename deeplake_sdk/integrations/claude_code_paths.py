"""Where the Claude Code hooks look: settings, the mount's paths, payloads that concern it.

Every ``Read``, ``Grep`` and ``Bash`` call of Claude Code starts a ``pre-tool-use`` hook
process, and nearly all of them are about the user's project, not the memory mount. This module
imports nothing beyond the standard library and :mod:`deeplake_sdk.fs.paths`, so that such a
hook decides to fall through (:func:`may_concern_mount`) without importing the HTTP stack, the
journal or gevent; :mod:`deeplake_sdk.integrations.claude_code` answers the rest.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeplake_sdk.fs import paths

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi

__all__ = [
    "BASH_COMMANDS",
    "CannotAnswer",
    "HookSettings",
    "may_concern_mount",
    "simple_words",
    "to_memory_path",
]

#: The ``Bash`` commands ``pre-tool-use`` answers (one simple command on the mount).
BASH_COMMANDS = frozenset({"cat", "head", "wc", "grep", "ls"})
_SIMPLE_WORD = re.compile(r"^[\w@%+=:,./~-]+$")


class CannotAnswer(Exception):
    """The hook falls through: Claude Code runs the tool as it was."""


@dataclass(frozen=True)
class HookSettings:
    """Where the hooks look and write.

    Attributes:
        mount: Local path under which Claude Code sees the memory (``DEEPLAKE_MEMORY_MOUNT``,
            default ``~/.deeplake/memory``): ``<mount>/notes/a.md`` is the file
            ``/notes/a.md`` of the memory table.
        hook_dir: Directory of the views (files materialised for answers) and the drain lock
            (``DEEPLAKE_HOOK_DIR``, default ``~/.deeplake/hook``).
        user: The user of session paths and rows (``DEEPLAKE_USER``, else the login name).
        max_bytes: Largest answer materialised; a larger one falls through.
        view_ttl: Seconds a view is kept (Claude Code reads it after the hook returned).
        timeout: Seconds ``pre_tool_use`` gives its query before falling through.
        table: Memory table (default: the client's, ``DEEPLAKE_TABLE`` or ``memory``).
        sessions_table: Sessions table (default: the client's, ``DEEPLAKE_SESSIONS_TABLE``
            or ``sessions``).
    """

    mount: str = "~/.deeplake/memory"
    hook_dir: Path = field(default_factory=lambda: Path("~/.deeplake/hook"))
    user: str = "anonymous"
    max_bytes: int = 32 << 20
    view_ttl: float = 3600.0
    timeout: float = 5.0
    table: str | None = None
    sessions_table: str | None = None

    def tables(self, api: DeeplakeApi) -> tuple[str, str]:
        """The memory and sessions tables to use with ``api``."""
        creds = api.credentials
        return self.table or creds.table, self.sessions_table or creds.sessions_table

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HookSettings:
        """Settings from ``DEEPLAKE_MEMORY_MOUNT``, ``DEEPLAKE_HOOK_DIR``, ``DEEPLAKE_USER``."""
        env = os.environ if env is None else env
        user = env.get("DEEPLAKE_USER") or _login_name()
        return cls(
            mount=env.get("DEEPLAKE_MEMORY_MOUNT") or cls.mount,
            hook_dir=Path(env.get("DEEPLAKE_HOOK_DIR") or "~/.deeplake/hook"),
            user=user,
        )

    @property
    def mount_dir(self) -> str:
        """The mount as an absolute, normalised local path."""
        return os.path.normpath(os.path.expanduser(self.mount))

    @property
    def view_root(self) -> Path:
        """Directory holding the views."""
        return self.hook_dir.expanduser() / "view"


def _login_name() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):  # no login name (containers)
        return "anonymous"


def to_memory_path(local: str, settings: HookSettings, cwd: str | None = None) -> str | None:
    """The memory path of a local path under the mount, or None when it is not under it.

    ``~`` is expanded and a relative path is taken relative to ``cwd``.
    """
    if not local:
        return None
    expanded = os.path.expanduser(local)
    if not os.path.isabs(expanded):
        if not cwd:
            return None
        expanded = os.path.join(cwd, expanded)
    norm = os.path.normpath(expanded)
    mount = settings.mount_dir
    if norm == mount:
        return "/"
    if norm.startswith(mount + os.sep):
        return paths.normalize(norm[len(mount) :])
    return None


def simple_words(command: str) -> list[str]:
    """The words of a command made of one simple command, or raise :class:`CannotAnswer`.

    Refused: anything bash would expand, redirect or chain (``$``, backticks, ``;|&<>()``,
    newlines, anywhere in the command), and glob or escape characters outside a quoted word.
    The words are re-quoted when the command is rebuilt, so what runs is what was parsed.
    """
    if not command.strip() or any(ch in command for ch in "$`;|&<>()\n"):
        raise CannotAnswer("command uses expansion, redirection or several commands")
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise CannotAnswer(f"unparsable command: {exc}") from exc
    if not words:
        raise CannotAnswer("empty command")
    for word in words:
        quoted = f"'{word}'" in command or f'"{word}"' in command
        if not (_SIMPLE_WORD.match(word) or quoted):
            raise CannotAnswer(f"word {word!r} is neither plain nor quoted")
    return words


def may_concern_mount(payload: Mapping[str, Any], settings: HookSettings) -> bool:
    """Whether ``pre_tool_use`` could answer ``payload``: False when it surely falls through.

    True for a ``Read`` of a file under the mount, a ``Grep`` whose path (or, without one, the
    working directory) is under it, and a ``Bash`` command made of one answered command
    (:data:`BASH_COMMANDS`) with a word under the mount. The answer itself checks more (every
    operand, the file's kind and size), so True may still fall through; False never misses
    an answer, because the answer resolves the same paths with the same functions.
    """
    tool = payload.get("tool_name")
    tool_input = payload.get("tool_input")
    if not isinstance(tool_input, Mapping):
        return False
    cwd = str(payload.get("cwd") or "")

    def under(local: Any) -> bool:
        return to_memory_path(str(local or ""), settings, cwd) is not None

    if tool == "Read":
        return under(tool_input.get("file_path"))
    if tool == "Grep":
        return under(tool_input.get("path") or cwd)
    if tool == "Bash":
        try:
            words = simple_words(str(tool_input.get("command") or ""))
        except CannotAnswer:
            return False
        return words[0] in BASH_COMMANDS and any(under(w) for w in words[1:])
    return False
