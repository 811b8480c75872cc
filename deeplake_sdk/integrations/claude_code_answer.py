r"""Claude Code's ``pre-tool-use`` hook: answer memory reads with one query.

:func:`pre_tool_use` answers ``Read``, ``Grep`` and simple ``Bash`` commands (``cat``,
``head``, ``wc``, ``grep``, ``ls``) on paths under the memory mount (``~/.deeplake/memory``)
with **one query**, from a cold process, and returns ``None`` (fall through: Claude Code runs
the tool unchanged) when it cannot. It imports the client but not the journal: a read of the
memory needs no session log.

No memory content ever becomes shell text. File contents are written to private files under
a *view* directory and the tool's input is rewritten to point at them (``Read.file_path``,
``Grep.path``, the file operands of a ``Bash`` command, every word re-quoted with
:func:`shlex.quote`); a listing is returned through a quoted here-document whose delimiter is
checked to be absent from the listing. The plugin's answers wrapped content in
``echo "<JSON>"``, which let ``$(...)`` and backticks inside a memory file run.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shlex
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeplake_sdk.fs import paths
from deeplake_sdk.grep import GrepOptions, GrepPatternError, literal_prefilter
from deeplake_sdk.integrations.claude_code_paths import (
    BASH_COMMANDS,
    CannotAnswer,
    HookSettings,
    simple_words,
    to_memory_path,
)
from deeplake_sdk.sql import CHUNK
from deeplake_sdk.statements import files as st
from deeplake_sdk.statements.layout import MEMORY, SESSIONS, TableLayout, oldest_per_path

if TYPE_CHECKING:
    from deeplake_sdk.api import DeeplakeApi

__all__ = ["MEMORY_READ_COLUMNS", "SESSIONS_READ_COLUMNS", "pre_tool_use"]

log = logging.getLogger(__name__)

#: Columns every memory / sessions table has, the SDK's and the plugin's alike: what
#: ``pre_tool_use`` may name without probing the table first.
MEMORY_READ_COLUMNS = frozenset(
    {"id", "path", "filename", "summary", "size_bytes", "mime_type", "creation_date"}
    | {"last_update_date", "description", "author", "project"}
)
SESSIONS_READ_COLUMNS = frozenset({"id", "path", "filename", "message", "creation_date"})


def _layouts(api: DeeplakeApi, settings: HookSettings) -> tuple[TableLayout, TableLayout]:
    memory, sessions = settings.tables(api)
    return (
        TableLayout(memory, MEMORY, MEMORY_READ_COLUMNS),
        TableLayout(sessions, SESSIONS, SESSIONS_READ_COLUMNS),
    )


def pre_tool_use(
    api: DeeplakeApi, payload: Mapping[str, Any], settings: HookSettings
) -> dict[str, Any] | None:
    """The hook's answer to a ``PreToolUse`` payload, or None to fall through.

    ``Read`` and ``Grep`` on the mount, and ``Bash`` commands made of one simple ``cat``,
    ``head``, ``wc``, ``grep`` or ``ls`` on it, are answered with one query. Anything else,
    and any failure (service unreachable, file missing, binary file, answer over
    ``max_bytes``), falls through.

    Returns:
        ``{"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision":
        "allow", "permissionDecisionReason": ..., "updatedInput": {...}}}`` or None.
    """
    tool = str(payload.get("tool_name") or "")
    tool_input = payload.get("tool_input")
    if not isinstance(tool_input, Mapping):
        return None
    answer = _Answer(api, settings, str(payload.get("cwd") or ""))
    try:
        if tool == "Read":
            updated = answer.read(tool_input)
        elif tool == "Grep":
            updated = answer.grep_tool(tool_input)
        elif tool == "Bash":
            updated = answer.bash(tool_input)
        else:
            return None
    except CannotAnswer as exc:
        log.debug("falling through on %s: %s", tool, exc)
        return None
    except Exception as exc:
        log.debug("falling through on %s after an error: %s", tool, exc, exc_info=True)
        return None
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "allow",
            "permissionDecisionReason": "answered from Deeplake memory",
            "updatedInput": updated,
        }
    }


#: ``grep`` options that take a value as the next word.
_GREP_VALUE_OPTS = frozenset(["-e", "-f", "-m", "-A", "-B", "-C", "-d", "-D"])


class _Answer:
    """One pre-tool-use answer: at most one query, then files in a fresh view."""

    def __init__(self, api: DeeplakeApi, settings: HookSettings, cwd: str) -> None:
        self.api = api
        self.settings = settings
        self.cwd = cwd
        self.memory, self.sessions = _layouts(api, settings)
        self.queries = 0
        self._view: Path | None = None

    # -- plumbing ---------------------------------------------------------------------------
    def query(self, stmt: tuple[str, list[Any]]) -> list[dict[str, Any]]:
        if self.queries:
            raise CannotAnswer("an answer takes one query")
        self.queries += 1
        return self.api.query(stmt[0], stmt[1], timeout=self.settings.timeout)

    def memory_path(self, local: str) -> str:
        p = to_memory_path(local, self.settings, self.cwd)
        if p is None:
            raise CannotAnswer(f"{local!r} is not under the memory mount")
        return p

    @property
    def view(self) -> Path:
        """A fresh private directory for this answer (old views are pruned first)."""
        if self._view is None:
            root = self.settings.view_root
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            _prune(root, self.settings.view_ttl)
            self._view = root / f"{int(time.time())}-{secrets.token_hex(8)}"
            self._view.mkdir(mode=0o700)
        return self._view

    def local(self, memory_path: str) -> Path:
        """Where ``memory_path`` lives in the view."""
        return self.view / memory_path.lstrip("/") if memory_path != "/" else self.view

    def materialise(self, files: Mapping[str, bytes], directory: str | None = None) -> None:
        total = sum(len(v) for v in files.values())
        if total > self.settings.max_bytes:
            raise CannotAnswer(f"answer of {total} bytes over max_bytes")
        if directory is not None:
            self.local(directory).mkdir(parents=True, exist_ok=True, mode=0o700)
        for p, data in files.items():
            target = self.local(p)
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)

    def read_files(self, wanted: Sequence[str]) -> dict[str, bytes]:
        """Exact contents of files (all memory files, or one session file), in one query."""
        if len(wanted) == 1 and paths.is_under(wanted[0], "/sessions"):
            rows = self.query(st.session_lines(self.sessions, wanted[0]))
            if not rows:
                raise CannotAnswer(f"no session file {wanted[0]}")
            text = "".join(line + "\n" for line in st.session_file_lines(rows))
            return {wanted[0]: text.encode()}
        if len(wanted) > CHUNK or any(paths.is_under(p, "/sessions") for p in wanted):
            raise CannotAnswer("too many files, or session files mixed with memory files")
        found: dict[str, bytes] = {}
        for path, row in oldest_per_path(self.query(st.memory_read(self.memory, wanted))).items():
            data = st.memory_row_bytes(row)
            if len(data) != int(row.get("size_bytes") or 0):
                raise CannotAnswer(f"{path} is not a text file (its summary is not its bytes)")
            found[paths.normalize(path)] = data
        missing = [p for p in wanted if p not in found]
        if missing:
            raise CannotAnswer(f"no such file {missing[0]}")
        return found

    # -- Read -------------------------------------------------------------------------------
    def read(self, tool_input: Mapping[str, Any]) -> dict[str, Any]:
        p = self.memory_path(str(tool_input.get("file_path") or ""))
        self.materialise(self.read_files([p]))
        return {**tool_input, "file_path": str(self.local(p))}

    # -- Grep -------------------------------------------------------------------------------
    def grep_tool(self, tool_input: Mapping[str, Any]) -> dict[str, Any]:
        scope = self.memory_path(str(tool_input.get("path") or self.cwd))
        pattern = str(tool_input.get("pattern") or "")
        opts = _grep_options(pattern, ignore_case=bool(tool_input.get("-i")), fixed=False)
        self.grep_scope(scope, opts)
        return {**tool_input, "path": str(self.local(scope))}

    def grep_scope(self, scope: str, opts: GrepOptions | None) -> None:
        """Materialise every file of ``scope`` that may match (one query)."""
        pre = literal_prefilter(opts) if opts is not None else None
        sessions = self.sessions if scope == "/" or paths.is_under(scope, "/sessions") else None
        rows = self.query(
            st.grep_candidates(
                self.memory,
                sessions,
                scope,
                pre.like_pattern() if pre else None,
                pre.case_insensitive if pre else False,
            )
        )
        files: dict[str, bytes] = {}
        for p, row in oldest_per_path([r for r in rows if r["kind"] == "memory"]).items():
            if row["text"]:
                files[paths.normalize(p)] = str(row["text"]).encode()
        numbered: dict[str, dict[int, str]] = {}
        for row in rows:
            if row["kind"] != "memory":
                lines = numbered.setdefault(paths.normalize(row["path"]), {})
                lines[int(row["n"])] = st.compact_json(row["message"])
        for p, lines in numbered.items():
            # Lines that cannot match stay empty, so that line numbers are the file's.
            text = "".join(lines.get(i, "") + "\n" for i in range(1, max(lines) + 1))
            files[p] = text.encode()
        if scope in files:  # a single file
            self.materialise(files)
        else:
            self.materialise(files, directory=scope)

    # -- Bash -------------------------------------------------------------------------------
    def bash(self, tool_input: Mapping[str, Any]) -> dict[str, Any]:
        command = str(tool_input.get("command") or "")
        words = simple_words(command)
        name, args = words[0], words[1:]
        if name == "ls":
            return {**tool_input, "command": self.ls(args)}
        if name not in BASH_COMMANDS:
            raise CannotAnswer(f"{name} is not answered")
        operands = self.operand_indices(name, args)
        if not operands:
            raise CannotAnswer("no file operand")
        mem = {i: self.memory_path(args[i]) for i in operands}
        if name == "grep" and _grep_command(args)[0]:
            if len(mem) != 1:
                raise CannotAnswer("recursive grep of one directory or file only")
            self.grep_scope(next(iter(mem.values())), _grep_command(args)[1])
        else:
            self.materialise(self.read_files(list(dict.fromkeys(mem.values()))))
        local = [name] + [
            ("." if mem[i] == "/" else "./" + mem[i].lstrip("/")) if i in mem else word
            for i, word in enumerate(args)
        ]
        view = shlex.quote(str(self.view))
        return {**tool_input, "command": f"cd {view} && {shlex.join(local)}"}

    @staticmethod
    def operand_indices(name: str, args: Sequence[str]) -> list[int]:
        """Indices of the file operands among a command's arguments (options kept aside)."""
        value_opts = {"head": {"-n", "-c"}, "grep": _GREP_VALUE_OPTS}.get(name, set())
        need_pattern = name == "grep" and not any(
            a == "-e" or a.startswith(("--regexp", "-e")) for a in args
        )
        out: list[int] = []
        expect_value = options_done = False
        for i, word in enumerate(args):
            if expect_value:
                expect_value = False
            elif not options_done and word == "--":
                options_done = True
            elif not options_done and word.startswith("-") and word != "-":
                expect_value = word in value_opts
            elif need_pattern:
                need_pattern = False
            else:
                out.append(i)
        return out

    def ls(self, args: list[str]) -> str:
        if any(a.startswith("-") and a not in ("-1",) for a in args):
            raise CannotAnswer("ls options other than -1 are not answered")
        targets = [a for a in args if a != "-1"]
        if len(targets) != 1:
            raise CannotAnswer("ls of one directory only")
        scope = self.memory_path(targets[0])
        rows = self.query(st.paths_under(self.memory, self.sessions, scope))
        found = {paths.normalize(r["path"]) for r in rows}
        if scope in found:
            return _heredoc(targets[0] + "\n")
        if not found:
            raise CannotAnswer(f"no such directory {scope}")
        prefix = paths.dir_prefix(scope)
        names = sorted({p[len(prefix) :].split("/", 1)[0] for p in found if p.startswith(prefix)})
        return _heredoc("".join(n + "\n" for n in names))


def _grep_options(pattern: str, *, ignore_case: bool, fixed: bool) -> GrepOptions | None:
    """Options for the prefilter, or None when the pattern cannot be read (no prefilter)."""
    try:
        opts = GrepOptions(pattern=pattern, ignore_case=ignore_case, fixed=fixed)
        literal_prefilter(opts)
    except (GrepPatternError, ValueError):
        return None
    return opts


def _grep_command(args: Sequence[str]) -> tuple[bool, GrepOptions | None]:
    """Recursive flag and prefilter options of a ``grep`` command's arguments.

    The prefilter needs the pattern's meaning: it is used with ``-F``, with ``-E`` (close to
    Python's syntax), or when the pattern has no regex metacharacter (the same under BRE and
    ERE). Options that select non-matching lines or files (``-v``, ``-c``, ``-L``) or show
    context (``-A``, ``-B``, ``-C``) turn it off: every file in scope is then materialised.
    """
    flags: set[str] = set()
    pattern: str | None = None
    expect: str | None = None
    for word in args:
        if expect is not None:
            if expect == "-e" and pattern is None:
                pattern = word
            flags.add(expect)
            expect = None
        elif word.startswith("--"):
            flags.add(word.split("=", 1)[0])
        elif word.startswith("-") and len(word) > 1:
            for i, ch in enumerate(word[1:], 1):
                opt = "-" + ch
                if opt in _GREP_VALUE_OPTS:
                    if i == len(word) - 1:
                        expect = opt
                    else:
                        flags.add(opt)
                        if opt == "-e" and pattern is None:
                            pattern = word[i + 1 :]
                    break
                flags.add(opt)
        elif pattern is None:
            pattern = word
    recursive = bool(flags & {"-r", "-R", "--recursive", "--dereference-recursive"})
    if pattern is None:
        raise CannotAnswer("grep without a pattern")
    no_prefilter = {"-v", "-c", "-L", "-A", "-B", "-C", "-f", "--invert-match", "--count"}
    if flags & no_prefilter or sum(1 for a in args if a == "-e") > 1:
        return recursive, None
    ignore_case = bool(flags & {"-i", "--ignore-case", "-y"})
    fixed = "-F" in flags or "--fixed-strings" in flags
    extended = "-E" in flags or "--extended-regexp" in flags
    if not (fixed or extended) and re.search(r"[\\.\[\]*^$+?{}()|]", pattern):
        return recursive, None
    return recursive, _grep_options(pattern, ignore_case=ignore_case, fixed=fixed or not extended)


def _heredoc(text: str) -> str:
    """A command printing ``text`` exactly: ``cat`` of a quoted here-document.

    The delimiter is random and checked to be absent from every line, and it is quoted, so
    nothing in ``text`` is expanded or executed.
    """
    lines = set(text.split("\n"))
    while True:
        delim = "DEEPLAKE_EOF_" + secrets.token_hex(8)
        if delim not in lines:
            break
    body = text if text.endswith("\n") else text + "\n"
    return f"cat <<'{delim}'\n{body}{delim}"


def _prune(root: Path, ttl: float) -> None:
    """Remove views older than ``ttl`` seconds (their names start with their creation time)."""
    now = time.time()
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for entry in entries:
        stamp = entry.name.split("-", 1)[0]
        if stamp.isdigit() and now - int(stamp) > ttl:
            shutil.rmtree(entry, ignore_errors=True)
