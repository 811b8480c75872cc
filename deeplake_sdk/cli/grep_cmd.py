"""``deeplake-sdk grep``: GNU grep over the memory filesystem, one round trip per path."""

from __future__ import annotations

import argparse
import errno
from typing import Any

from deeplake_sdk.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    HelpFormatter,
    example_epilog,
    print_json,
)
from deeplake_sdk.cli._fs_common import add_fs_options, open_fs, report, stdout_pipe

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``grep`` to the ``deeplake-sdk`` parser."""
    _register_grep(subparsers)


def _register_grep(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "grep",
        help="search file contents (GNU grep flags and output)",
        description=(
            "Search the memory files below each PATH (default /) for lines "
            "matching PATTERN, in one round trip per PATH, and print them as GNU "
            "grep does. PATTERN is an extended regular expression (-E is "
            "implied; -F for a literal string). Exit status: 0 a line was "
            "selected, 1 none, 2 error."
        ),
        epilog=example_epilog(
            "deeplake-sdk grep -n TODO /notes",
            "deeplake-sdk grep -il 'deadline|due date'",
            "deeplake-sdk grep -c -w Ada / --json",
            'deeplake-sdk grep --sessions -F \'"type":"prompt"\' /sessions/ada',
        ),
        formatter_class=HelpFormatter,
        add_help=False,
    )
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("pattern", metavar="PATTERN", help="extended regular expression")
    p.add_argument(
        "paths",
        nargs="*",
        default=[],
        metavar="PATH",
        help="directories or files to search (default /)",
    )
    m = p.add_argument_group("matching")
    m.add_argument("-i", "--ignore-case", action="store_true", help="ignore case")
    m.add_argument("-v", "--invert-match", action="store_true", help="select non-matching lines")
    m.add_argument("-w", "--word-regexp", action="store_true", help="match whole words only")
    m.add_argument("-F", "--fixed-strings", action="store_true", help="PATTERN is a literal string")
    m.add_argument(
        "-E",
        "--extended-regexp",
        action="store_true",
        help="accepted for compatibility (always on)",
    )
    m.add_argument(
        "-r",
        "-R",
        "--recursive",
        action="store_true",
        help="accepted for compatibility (directories are always searched)",
    )
    m.add_argument(
        "-m", "--max-count", type=int, metavar="NUM", help="stop after NUM selected lines per file"
    )
    m.add_argument(
        "--sessions",
        action="store_true",
        help="search session logs too (automatic when a PATH holds only session logs)",
    )
    o = p.add_argument_group("output")
    o.add_argument("-n", "--line-number", action="store_true", help="prefix line numbers")
    o.add_argument(
        "-l",
        "--files-with-matches",
        action="store_true",
        help="print only the names of files with a match",
    )
    o.add_argument(
        "-c", "--count", action="store_true", help="print the number of selected lines per file"
    )
    o.add_argument(
        "-H",
        "--with-filename",
        dest="with_filename",
        action="store_const",
        const=True,
        default=None,
        help="prefix each line with its file name",
    )
    o.add_argument(
        "-h",
        "--no-filename",
        dest="with_filename",
        action="store_const",
        const=False,
        help="never prefix file names (default for a single file)",
    )
    o.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing; the exit status tells whether a line was selected",
    )
    o.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array of {path, count, matches: [{line_number, line}]}",
    )
    add_fs_options(p)
    p.set_defaults(func=cmd_grep)


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
    with open_fs(args) as fs:
        for path in targets:
            # one statement: the matches, and whether (and what) the path is
            outcome = fs.grep_report(
                args.pattern,
                path,
                ignore_case=opts.ignore_case,
                invert=opts.invert,
                fixed=opts.fixed,
                word=opts.word,
                count=opts.count,
                files_with_matches=opts.files_with_matches,
                line_numbers=True,
                include_sessions=True if args.sessions else None,
            )
            if outcome.type is None:
                if not args.quiet:
                    report(FsError(errno.ENOENT, outcome.path))
                failed = True
                continue
            found = outcome.results
            if opts.max_count is not None:
                for result in found:
                    result.matches = result.matches[: opts.max_count]
                    result.count = min(result.count, opts.max_count)
            results.extend(found)
            searched_dir = searched_dir or outcome.type == "directory"
    with_filename = args.with_filename
    if with_filename is None:  # GNU: names when searching a directory or several paths
        with_filename = len(targets) > 1 or searched_dir
    status = gnu_exit_status(results, opts)
    if not args.quiet:
        with stdout_pipe():
            if args.json:
                print_json(
                    [
                        {
                            "path": r.path,
                            "count": r.count,
                            "matches": [
                                {"line_number": m.line_number, "line": m.line} for m in r.matches
                            ],
                        }
                        for r in results
                        if r.matched or opts.count
                    ]
                )
            else:
                for line in format_gnu(results, opts, with_filename=with_filename):
                    print(line)
    if failed and not (args.quiet and status == EXIT_OK):
        return EXIT_ERROR
    return status
