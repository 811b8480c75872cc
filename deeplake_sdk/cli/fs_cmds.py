"""``deeplake-sdk ls|cat|write|append|rm``: the memory filesystem from the shell.

Every command opens a :class:`~deeplake_sdk.DeeplakeFs` on the memory and sessions tables of
the workspace (credentials from the options, the environment or the credentials file), does
its work and closes it, which stores any write before the command exits. Exit codes: 0 ok,
1 not found, 2 usage or any other error (``grep`` is in :mod:`deeplake_sdk.cli.grep_cmd`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from deeplake_sdk.cli._common import (
    EXIT_OK,
    HelpFormatter,
    example_epilog,
    print_json,
)
from deeplake_sdk.cli._fs_common import add_fs_options, open_fs, report, stdout_pipe

__all__ = ["register"]


# ------------------------------------------------------------------------------ registration
def register(subparsers: Any) -> None:
    """Add the memory filesystem commands to the ``deeplake-sdk`` parser."""
    _register_ls(subparsers)
    _register_cat(subparsers)
    _register_write(subparsers, "write")
    _register_write(subparsers, "append")
    _register_rm(subparsers)


def _register_ls(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ls",
        help="list a directory of the memory filesystem",
        description=(
            "List the entries of a directory (directories end with '/'), or a "
            "file itself. -l adds type, size and last update: '-' memory file, "
            "'d' directory, 's' session log (read-only), 'v' the virtual "
            "/index.md."
        ),
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
    p.add_argument(
        "-R", "--recursive", action="store_true", help="list the full path of every file below PATH"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array of entries (name, path, type, kind, size, ...)",
    )
    add_fs_options(p)
    p.set_defaults(func=cmd_ls)


def _register_cat(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cat",
        help="print files",
        description=(
            "Print the content of files, in order. Session logs print as "
            "JSONL, /index.md as a generated index when no such file exists."
        ),
        epilog=example_epilog(
            "deeplake-sdk cat /index.md",
            "deeplake-sdk cat /notes/a.md /notes/b.md",
            "deeplake-sdk cat /sessions/ada/s-42.jsonl | jq .text",
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to print")
    add_fs_options(p)
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
        what = (
            "Append TEXT (or standard input) to a file, creating it when missing. An "
            "append is applied exactly once, even if its answer is lost and it is retried"
        )
        examples = (
            'deeplake-sdk append /notes/log.md "- called Ada"',
            "date | deeplake-sdk append /notes/log.md",
        )
    p = subparsers.add_parser(
        name,
        help=summary,
        description=(
            f"{what}. TEXT given as an argument gets a trailing newline unless "
            "it has one (like echo; -n: none); standard input is stored byte "
            "for byte."
        ),
        epilog=example_epilog(*examples),
        formatter_class=HelpFormatter,
    )
    p.add_argument("path", metavar="PATH", help="the file")
    p.add_argument(
        "text", nargs="?", metavar="TEXT", help="the text; omitted or '-': read standard input"
    )
    p.add_argument(
        "-n", "--no-newline", action="store_true", help="do not add a trailing newline to TEXT"
    )
    if name == "write":
        p.add_argument("--mime-type", metavar="TYPE", help="stored MIME type (default: guessed)")
        p.add_argument(
            "--description", metavar="TEXT", help="description of the file (shown in /index.md)"
        )
        p.add_argument("--project", metavar="NAME", help="value of the project column")
    add_fs_options(p)
    p.set_defaults(func=cmd_write if name == "write" else cmd_append)


def _register_rm(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rm",
        help="remove files or directories",
        description=(
            "Remove files; with -r, directories and everything below them. "
            "Session logs are read-only and cannot be removed."
        ),
        epilog=example_epilog(
            "deeplake-sdk rm /notes/old.md",
            "deeplake-sdk rm -r /scratch",
            "deeplake-sdk rm -f /maybe/missing.md",
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="what to remove")
    p.add_argument(
        "-r",
        "-R",
        "--recursive",
        dest="recursive",
        action="store_true",
        help="remove directories and their contents",
    )
    p.add_argument("-f", "--force", action="store_true", help="ignore missing paths (exit 0)")
    add_fs_options(p)
    p.set_defaults(func=cmd_rm)


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

    with open_fs(args) as fs:
        try:
            top = fs.stat(args.path)
            if args.recursive:
                if top.type == "file":
                    stats = [top]
                else:
                    stats = [
                        fs.stat(f"{d.rstrip('/')}/{name}")
                        for d, _, files in fs.walk(top.path)
                        for name in sorted(files)
                    ]
                entries = [_entry(st, st.path) for st in stats]
            elif top.type == "file":
                entries = [_entry(top, top.path)]
            else:
                entries = [
                    _entry(st, st.path.rsplit("/", 1)[-1]) for st in fs.ls(top.path, detail=True)
                ]
        except FsError as exc:
            return report(exc)
    with stdout_pipe():
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
    with open_fs(args) as fs, stdout_pipe():
        out = sys.stdout.buffer
        for path in args.paths:
            try:
                data = fs.read_bytes(path)
            except FsError as exc:
                out.flush()
                status = max(status, report(exc))
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
    from deeplake_sdk.fs.paths import guess_mime

    data = _input_bytes(args)
    with open_fs(args) as fs:
        mime = args.mime_type or guess_mime(args.path, binary=not _is_text(data))
        try:
            fs.write_bytes(
                args.path, data, mime_type=mime, project=args.project, description=args.description
            )
        except FsError as exc:
            return report(exc)
    return EXIT_OK


def cmd_append(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk append``."""
    from deeplake_sdk.errors import FsError

    data = _input_bytes(args)
    with open_fs(args) as fs:
        try:
            fs.append_bytes(args.path, data)
        except FsError as exc:
            return report(exc)
    return EXIT_OK


# ------------------------------------------------------------------------------ rm
def cmd_rm(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk rm``."""
    from deeplake_sdk.errors import FsError

    status = EXIT_OK
    with open_fs(args) as fs:
        for path in args.paths:
            try:
                fs.rm(path, recursive=args.recursive, force=args.force)
            except FsError as exc:
                status = max(status, report(exc, recursive_hint=True))
    return status
