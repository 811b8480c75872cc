"""``deeplake-sdk ls|cat|write|append|rm|grep``: the memory filesystem from the shell.

Every command opens a :class:`~deeplake_sdk.DeeplakeFs` on the memory and sessions tables of
the workspace (credentials from the options, the environment or the credentials file), does
its work and closes it, which stores any write before the command exits. Exit codes: 0 ok,
1 not found (``cat``, ``ls``, ``rm``) or no match (``grep``), 2 usage or any other error.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import sys
from collections.abc import Iterator
from typing import Any

from deeplake_sdk.cli._common import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_OK,
    CliError,
    HelpFormatter,
    add_credential_options,
    example_epilog,
    fail,
    print_json,
    sdk_error,
)

__all__ = ["register"]

# ------------------------------------------------------------------------------ registration
def register(subparsers: Any) -> None:
    """Add the memory filesystem commands to the ``deeplake-sdk`` parser."""
    _register_ls(subparsers)
    _register_cat(subparsers)
    _register_write(subparsers, "write")
    _register_write(subparsers, "append")
    _register_rm(subparsers)
    _register_grep(subparsers)


def _add_fs_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filesystem")
    group.add_argument("--table", metavar="NAME",
                       help="memory table (default: DEEPLAKE_TABLE, else 'memory')")
    group.add_argument("--sessions-table", metavar="NAME",
                       help="sessions table (default: DEEPLAKE_SESSIONS_TABLE, else 'sessions')")
    group.add_argument("--no-cache", action="store_true",
                       help="do not use the persistent content cache (DEEPLAKE_CACHE_DIR)")
    add_credential_options(parser)


def _register_ls(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ls",
        help="list a directory of the memory filesystem",
        description=("List the entries of a directory (directories end with '/'), or a "
                          "file itself. -l adds type, size and last update: '-' memory file, "
                          "'d' directory, 's' session log (read-only), 'v' the virtual "
                          "/index.md."),
        epilog=example_epilog(
            "deeplake-sdk ls /",
            "deeplake-sdk ls -l /notes",
            "deeplake-sdk ls -R /notes          # every file below /notes, one path a line",
            "deeplake-sdk ls /notes --json",
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("path", nargs="?", default="/", help="directory or file (default /)")
    p.add_argument("-l", dest="long", action="store_true", help="long listing")
    p.add_argument("-R", "--recursive", action="store_true",
                   help="list the full path of every file below PATH")
    p.add_argument("--json", action="store_true",
                   help="print a JSON array of entries (name, path, type, kind, size, ...)")
    _add_fs_options(p)
    p.set_defaults(func=cmd_ls)


def _register_cat(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cat",
        help="print files",
        description=("Print the content of files, in order. Session logs print as "
                          "JSONL, /index.md as a generated index when no such file exists."),
        epilog=example_epilog(
            "deeplake-sdk cat /index.md",
            "deeplake-sdk cat /notes/a.md /notes/b.md",
            "deeplake-sdk cat /sessions/ada/s-42.jsonl | jq .text",
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to print")
    _add_fs_options(p)
    p.set_defaults(func=cmd_cat)


def _register_write(subparsers: Any, name: str) -> None:
    if name == "write":
        summary = "write a file (replacing it)"
        what = "Write TEXT (or standard input) to a file, replacing its content"
        examples = (
            'deeplake-sdk write /notes/todo.md "- buy milk"',
            "deeplake-sdk write /notes/report.md < report.md",
            "git log -5 | deeplake-sdk write /notes/changes.txt -",
        )
    else:
        summary = "append to a file (creating it)"
        what = ("Append TEXT (or standard input) to a file, creating it when missing. An "
                "append is applied exactly once, even if its answer is lost and it is retried")
        examples = (
            'deeplake-sdk append /notes/log.md "- called Ada"',
            "date | deeplake-sdk append /notes/log.md",
        )
    p = subparsers.add_parser(
        name,
        help=summary,
        description=(f"{what}. TEXT given as an argument gets a trailing newline unless "
                          "it has one (like echo; -n: none); standard input is stored byte "
                          "for byte."),
        epilog=example_epilog(*examples),
        formatter_class=HelpFormatter,
    )
    p.add_argument("path", metavar="PATH", help="the file")
    p.add_argument("text", nargs="?", metavar="TEXT",
                   help="the text; omitted or '-': read standard input")
    p.add_argument("-n", "--no-newline", action="store_true",
                   help="do not add a trailing newline to TEXT")
    if name == "write":
        p.add_argument("--mime-type", metavar="TYPE", help="stored MIME type (default: guessed)")
        p.add_argument("--description", metavar="TEXT",
                       help="description of the file (shown in /index.md)")
        p.add_argument("--project", metavar="NAME", help="value of the project column")
    _add_fs_options(p)
    p.set_defaults(func=cmd_write if name == "write" else cmd_append)


def _register_rm(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rm",
        help="remove files or directories",
        description=("Remove files; with -r, directories and everything below them. "
                          "Session logs are read-only and cannot be removed."),
        epilog=example_epilog(
            "deeplake-sdk rm /notes/old.md",
            "deeplake-sdk rm -r /scratch",
            "deeplake-sdk rm -f /maybe/missing.md",
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="what to remove")
    p.add_argument("-r", "-R", "--recursive", dest="recursive", action="store_true",
                   help="remove directories and their contents")
    p.add_argument("-f", "--force", action="store_true",
                   help="ignore missing paths (exit 0)")
    _add_fs_options(p)
    p.set_defaults(func=cmd_rm)


def _register_grep(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "grep",
        help="search file contents (GNU grep flags and output)",
        description=("Search the memory files below each PATH (default /) for lines "
                          "matching PATTERN, in one round trip per PATH, and print them as GNU "
                          "grep does. PATTERN is an extended regular expression (-E is "
                          "implied; -F for a literal string). Exit status: 0 a line was "
                          "selected, 1 none, 2 error."),
        epilog=example_epilog(
            "deeplake-sdk grep -n TODO /notes",
            "deeplake-sdk grep -il 'deadline|due date'",
            "deeplake-sdk grep -c -w Ada / --json",
            "deeplake-sdk grep --sessions -F '\"type\":\"prompt\"' /sessions/ada",
        ),
        formatter_class=HelpFormatter,
        add_help=False,
    )
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("pattern", metavar="PATTERN", help="extended regular expression")
    p.add_argument("paths", nargs="*", default=[], metavar="PATH",
                   help="directories or files to search (default /)")
    m = p.add_argument_group("matching")
    m.add_argument("-i", "--ignore-case", action="store_true", help="ignore case")
    m.add_argument("-v", "--invert-match", action="store_true", help="select non-matching lines")
    m.add_argument("-w", "--word-regexp", action="store_true", help="match whole words only")
    m.add_argument("-F", "--fixed-strings", action="store_true",
                   help="PATTERN is a literal string")
    m.add_argument("-E", "--extended-regexp", action="store_true",
                   help="accepted for compatibility (always on)")
    m.add_argument("-r", "-R", "--recursive", action="store_true",
                   help="accepted for compatibility (directories are always searched)")
    m.add_argument("-m", "--max-count", type=int, metavar="NUM",
                   help="stop after NUM selected lines per file")
    m.add_argument("--sessions", action="store_true",
                   help="search session logs too (automatic when a PATH holds only session logs)")
    o = p.add_argument_group("output")
    o.add_argument("-n", "--line-number", action="store_true", help="prefix line numbers")
    o.add_argument("-l", "--files-with-matches", action="store_true",
                   help="print only the names of files with a match")
    o.add_argument("-c", "--count", action="store_true",
                   help="print the number of selected lines per file")
    o.add_argument("-H", "--with-filename", dest="with_filename", action="store_const",
                   const=True, default=None, help="prefix each line with its file name")
    o.add_argument("-h", "--no-filename", dest="with_filename", action="store_const",
                   const=False, help="never prefix file names (default for a single file)")
    o.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing; the exit status tells whether a line was selected")
    o.add_argument("--json", action="store_true",
                   help="print a JSON array of {path, count, matches: [{line_number, line}]}")
    _add_fs_options(p)
    p.set_defaults(func=cmd_grep)


# ------------------------------------------------------------------------------ plumbing
@contextlib.contextmanager
def _open_fs(args: argparse.Namespace) -> Iterator[Any]:
    """Open the filesystem of the command's workspace; errors become :class:`CliError`."""
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.cache import ContentCache, NullCache
    from deeplake_sdk.errors import DeeplakeError
    from deeplake_sdk.fs import DeeplakeFs

    try:
        api = DeeplakeApi(args.token, args.org, args.workspace, args.url)
    except DeeplakeError as exc:
        raise _cli_error(exc) from exc
    cache = NullCache() if args.no_cache else ContentCache()
    fs = None
    try:
        fs = DeeplakeFs.open(
            api,
            args.table or api.credentials.table,
            args.sessions_table or api.credentials.sessions_table,
            cache=cache,
        )
        yield fs
        fs.close()
    except DeeplakeError as exc:
        raise _cli_error(exc) from exc
    finally:
        if fs is not None and not fs.closed:  # failed: drop what could not be stored
            fs_log = logging.getLogger("deeplake_sdk.fs")
            level = fs_log.level
            fs_log.setLevel(logging.ERROR)  # the error line already says it all
            try:
                with contextlib.suppress(Exception):
                    fs.close(discard=True)
            finally:
                fs_log.setLevel(level)
        cache.close()
        api.close()


def _cli_error(exc: BaseException) -> CliError:
    """A one-line, actionable :class:`CliError` for an SDK error."""
    from deeplake_sdk.errors import FlushError, FsError

    if isinstance(exc, FsError):
        return CliError(_fs_message(exc), _fs_status(exc))
    if isinstance(exc, FlushError):
        first = next(iter(exc.errors.values()), None)
        paths = ", ".join(exc.failed_paths[:5]) + (" ..." if len(exc.failed_paths) > 5 else "")
        return CliError(f"could not store {paths}" + (f": {first}" if first else "")
                        + "; nothing was written for them, run the command again")
    return sdk_error(exc)


def _fs_message(exc: Any, *, recursive_hint: bool = False) -> str:
    """``PATH: reason`` as coreutils print it."""
    reason = exc.strerror or ""
    if exc.errno == errno.EISDIR:
        reason = "Is a directory" + (" (use -r to remove it and its contents)"
                                     if recursive_hint else "")
    return f"{exc.filename}: {reason}"


def _fs_status(exc: Any) -> int:
    return EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_ERROR


def _report(exc: Any, **hints: bool) -> int:
    """Print one filesystem error; returns its exit status."""
    return fail(_fs_message(exc, **hints), _fs_status(exc))


@contextlib.contextmanager
def _stdout_pipe() -> Iterator[None]:
    """Stop quietly when the reader of stdout goes away (``| head``)."""
    import os

    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# ------------------------------------------------------------------------------ ls
_KIND_FLAG = {"memory": "-", "directory": "d", "session": "s", "virtual": "v"}


def _entry(st: Any, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "path": st.path,
        "type": st.type,
        "kind": st.kind,
        "size": st.size,
        "mime_type": st.mime_type,
        "last_update_date": st.last_update_date,
    }


def _long_line(entry: dict[str, Any]) -> str:
    flag = _KIND_FLAG.get(entry["kind"], "?")
    unknown = entry["type"] == "directory" or (entry["kind"] == "session" and not entry["size"])
    size = "-" if unknown else str(entry["size"])
    date = entry["last_update_date"] or "-"
    return f"{flag} {size:>9} {date:<27} {entry['name']}"


def cmd_ls(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk ls``."""
    from deeplake_sdk.errors import FsError

    with _open_fs(args) as fs:
        try:
            top = fs.stat(args.path)
            if args.recursive:
                if top.type == "file":
                    stats = [top]
                else:
                    stats = [fs.stat(f"{d.rstrip('/')}/{name}")
                             for d, _, files in fs.walk(top.path) for name in sorted(files)]
                entries = [_entry(st, st.path) for st in stats]
            elif top.type == "file":
                entries = [_entry(top, top.path)]
            else:
                entries = [_entry(st, st.path.rsplit("/", 1)[-1])
                           for st in fs.ls(top.path, detail=True)]
        except FsError as exc:
            return _report(exc)
    with _stdout_pipe():
        if args.json:
            print_json(entries)
            return EXIT_OK
        for entry in entries:
            if entry["type"] == "directory":
                entry["name"] += "/"
            print(_long_line(entry) if args.long else entry["name"])
    return EXIT_OK


# ------------------------------------------------------------------------------ cat
def cmd_cat(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk cat``."""
    from deeplake_sdk.errors import FsError

    status = EXIT_OK
    with _open_fs(args) as fs, _stdout_pipe():
        out = sys.stdout.buffer
        for path in args.paths:
            try:
                data = fs.read_bytes(path)
            except FsError as exc:
                out.flush()
                status = max(status, _report(exc))
                continue
            out.write(data)
        out.flush()
    return status


# ------------------------------------------------------------------------------ write / append
def _input_bytes(args: argparse.Namespace) -> bytes:
    if args.text is not None and args.text != "-":
        text = args.text
        if not args.no_newline and not text.endswith("\n"):
            text += "\n"
        return text.encode("utf-8")
    if sys.stdin.isatty():
        print("reading standard input (end with Ctrl-D)", file=sys.stderr)
    return sys.stdin.buffer.read()


def _is_text(data: bytes) -> bool:
    try:
        return "\x00" not in data.decode("utf-8")
    except UnicodeDecodeError:
        return False


def cmd_write(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk write``."""
    from deeplake_sdk.errors import FsError
    from deeplake_sdk.fs.base import guess_mime

    data = _input_bytes(args)
    with _open_fs(args) as fs:
        mime = args.mime_type or guess_mime(args.path, binary=not _is_text(data))
        try:
            fs.write_bytes(args.path, data, mime_type=mime, project=args.project,
                           description=args.description)
        except FsError as exc:
            return _report(exc)
    return EXIT_OK


def cmd_append(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk append``."""
    from deeplake_sdk.errors import FsError

    data = _input_bytes(args)
    with _open_fs(args) as fs:
        try:
            fs.append_bytes(args.path, data)
        except FsError as exc:
            return _report(exc)
    return EXIT_OK


# ------------------------------------------------------------------------------ rm
def cmd_rm(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk rm``."""
    from deeplake_sdk.errors import FsError

    status = EXIT_OK
    with _open_fs(args) as fs:
        for path in args.paths:
            try:
                fs.rm(path, recursive=args.recursive, force=args.force)
            except FsError as exc:
                status = max(status, _report(exc, recursive_hint=True))
    return status


# ------------------------------------------------------------------------------ grep
def _holds_only_sessions(fs: Any, path: str) -> bool:
    """Whether ``path`` is a session log or a directory whose files are all session logs."""
    st = fs.stat(path)
    if st.type == "file":
        return st.kind == "session"
    kinds = {fs.stat(f"{d.rstrip('/')}/{name}").kind
             for d, _, files in fs.walk(path) for name in files}
    return kinds == {"session"}


def cmd_grep(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk grep``."""
    from deeplake_sdk.errors import FsError
    from deeplake_sdk.grep import GrepOptions, format_gnu, gnu_exit_status

    if args.max_count is not None and args.max_count < 0:
        args.max_count = None  # GNU grep: a negative NUM means no limit
    opts = GrepOptions(
        pattern=args.pattern,
        ignore_case=args.ignore_case,
        line_numbers=args.line_number,
        files_with_matches=args.files_with_matches,
        count=args.count,
        invert=args.invert_match,
        fixed=args.fixed_strings,
        word=args.word_regexp,
        max_count=args.max_count,
    )
    targets = args.paths or ["/"]
    results: list[Any] = []
    failed = searched_dir = False
    with _open_fs(args) as fs:
        for path in targets:
            try:
                st = fs.stat(path)
                sessions = args.sessions or _holds_only_sessions(fs, path)
            except FsError as exc:
                if not args.quiet:
                    _report(exc)
                failed = True
                continue
            found = fs.grep(
                args.pattern,
                st.path,
                ignore_case=opts.ignore_case,
                invert=opts.invert,
                fixed=opts.fixed,
                word=opts.word,
                count=opts.count,
                files_with_matches=opts.files_with_matches,
                line_numbers=True,
                include_sessions=sessions,
            )
            if opts.max_count is not None:
                for result in found:
                    result.matches = result.matches[: opts.max_count]
                    result.count = min(result.count, opts.max_count)
            results.extend(found)
            searched_dir = searched_dir or st.type == "directory"
    with_filename = args.with_filename
    if with_filename is None:  # GNU: names when searching a directory or several paths
        with_filename = len(targets) > 1 or searched_dir
    status = gnu_exit_status(results, opts)
    if not args.quiet:
        with _stdout_pipe():
            if args.json:
                print_json([
                    {"path": r.path, "count": r.count,
                     "matches": [{"line_number": m.line_number, "line": m.line}
                                 for m in r.matches]}
                    for r in results if r.matched or opts.count
                ])
            else:
                for line in format_gnu(results, opts, with_filename=with_filename):
                    print(line)
    if failed and not (args.quiet and status == EXIT_OK):
        return EXIT_ERROR
    return status
