"""``deeplake-sdk journal``: what the local write-ahead journals hold.

``status`` summarises every journal under the root (one per endpoint, org and workspace);
``ls`` lists their entries (both only read: nothing is created, sent or removed). ``flush``
sends what the journal of one workspace holds, whichever process journaled it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from typing import Any

from deeplake_sdk.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    CliError,
    HelpFormatter,
    add_credential_options,
    example_epilog,
    positive_float,
    positive_int,
    print_json,
    sdk_error,
)

__all__ = ["format_age", "register"]


def register(subparsers: Any) -> None:
    """Add the ``journal`` command and its subcommands to the ``deeplake-sdk`` parser."""
    p = subparsers.add_parser(
        "journal",
        help="show the local journals of writes not yet confirmed by the service",
        description="Every write and session event is kept in a local journal until the "
        "service confirmed it: one journal per endpoint, org and workspace, under "
        "DEEPLAKE_JOURNAL_DIR (default ~/.deeplake/journal). status and ls only read it; "
        "flush sends it.",
        epilog=example_epilog(
            "deeplake-sdk journal status",
            "deeplake-sdk journal flush --workspace default --timeout 30",
            "deeplake-sdk journal ls --rejected --json",
            "deeplake-sdk journal ls --workspace default --limit 20",
        ),
        formatter_class=HelpFormatter,
    )
    sub = p.add_subparsers(dest="journal_command", metavar="SUBCOMMAND", required=True)

    s = sub.add_parser(
        "status",
        help="pending and rejected entries per journal",
        description="One line per journal: endpoint, org, workspace, pending and rejected "
        "entries, payload bytes, age of the oldest pending entry and the processes that "
        "wrote the pending entries. Exit status 2 if a journal file is unreadable.",
        formatter_class=HelpFormatter,
    )
    _add_common(s)
    s.set_defaults(func=cmd_status)

    ls = sub.add_parser(
        "ls",
        help="list journal entries",
        description="The entries of each journal in journal order: seq, operation, table, "
        "path, payload size, age, sending attempts, state and, for a rejected entry, why.",
        formatter_class=HelpFormatter,
    )
    _add_common(ls)
    ls.add_argument("--rejected", action="store_true", help="only entries set aside")
    ls.add_argument("--limit", type=positive_int, metavar="N", help="at most N entries per journal")
    ls.add_argument("--org", help="only journals of this org id")
    ls.add_argument("--workspace", help="only journals of this workspace id")
    ls.set_defaults(func=cmd_ls)

    f = sub.add_parser(
        "flush",
        help="send what a workspace's journal holds",
        description="Send every pending entry of the workspace's journal (left by this or any "
        "earlier process: crashed, killed, offline) and wait until the service confirmed them, "
        "at most --timeout seconds. Entries the service refuses for good are set aside as "
        "rejected (see: journal ls --rejected). Exit status 0 when nothing is left pending, 1 "
        "when entries are still pending (they stay journaled; run it again later).",
        formatter_class=HelpFormatter,
    )
    f.add_argument(
        "--root",
        metavar="DIR",
        help="the journals' directory (default: DEEPLAKE_JOURNAL_DIR, else ~/.deeplake/journal)",
    )
    f.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="longest wait in seconds (default: 60)",
    )
    f.add_argument("--json", action="store_true", help="print JSON")
    add_credential_options(f)
    f.set_defaults(func=cmd_flush)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="the journals' directory (default: DEEPLAKE_JOURNAL_DIR, else ~/.deeplake/journal)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _root(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from deeplake_sdk.journal import default_journal_root

    return Path(args.root).expanduser() if args.root else default_journal_root()


def format_age(seconds: float | None) -> str:
    """Format an age compactly: ``45s``, ``12m``, ``3h``, ``2d`` (``-`` for none)."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _report_unreadable(error: str) -> None:
    print(f"deeplake-sdk: error: {error}", file=sys.stderr)


def cmd_status(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk journal status``."""
    from deeplake_sdk.cli.api_cmds import format_table
    from deeplake_sdk.journal import list_journals

    root = _root(args)
    infos = list_journals(root)
    now = time.time()
    code = EXIT_ERROR if any(i.error for i in infos) else EXIT_OK
    if args.json:
        out = []
        for info in infos:
            item = asdict(info)
            item["path"] = str(info.path)
            item["oldest_age_s"] = None if info.oldest is None else now - info.oldest
            out.append(item)
        print_json(out)
        return code
    if not infos:
        print(f"no journals under {root}")
        return EXIT_OK
    columns = ["origin", "org", "workspace", "pending", "rejected", "bytes", "oldest", "owners"]
    rows = [
        [
            i.origin,
            i.org,
            i.workspace,
            i.pending,
            i.rejected,
            i.bytes,
            format_age(None if i.oldest is None else now - i.oldest),
            ", ".join(f"{owner} ({n})" for owner, n in i.owners.items()) or "-",
        ]
        for i in infos
        if not i.error
    ]
    if rows:
        sys.stdout.write(f"journals under {root}\n")
        sys.stdout.write(format_table(columns, rows))
    for info in infos:
        if info.error:
            _report_unreadable(info.error)
    return code


def cmd_ls(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk journal ls``."""
    from deeplake_sdk.cli.api_cmds import format_table
    from deeplake_sdk.journal import REJECTED, JournalError, list_entries, list_journals

    root = _root(args)
    now = time.time()
    code = EXIT_OK
    found: list[tuple[Any, list[Any]]] = []
    infos = list_journals(root)
    for info in infos:
        if info.error:
            _report_unreadable(info.error)
            code = EXIT_ERROR
            continue
        if (args.org and info.org != args.org) or (
            args.workspace and info.workspace != args.workspace
        ):
            continue
        try:
            state = REJECTED if args.rejected else None
            found.append((info, list_entries(info.path, state=state, limit=args.limit)))
        except JournalError as exc:
            _report_unreadable(str(exc))
            code = EXIT_ERROR
    if args.json:
        print_json(
            [
                {
                    "journal": str(info.path),
                    "origin": info.origin,
                    "org": info.org,
                    "workspace": info.workspace,
                    **asdict(entry),
                    "age_s": now - entry.created,
                }
                for info, entries in found
                for entry in entries
            ]
        )
        return code
    if not infos:
        print(f"no journals under {root}")
    elif not found and code == EXIT_OK:
        print(f"no journal under {root} matches --org/--workspace")
    columns = ["seq", "op", "table", "path", "size", "age", "attempts", "state", "error"]
    for n, (info, entries) in enumerate(found):
        if n:
            sys.stdout.write("\n")
        sys.stdout.write(f"{info.origin} org={info.org} workspace={info.workspace} ({info.path})\n")
        rows = [
            [
                e.seq,
                e.op,
                e.table,
                e.path,
                e.size,
                format_age(now - e.created),
                e.attempts,
                e.state,
                e.error or "",
            ]
            for e in entries
        ]
        sys.stdout.write(format_table(columns, rows))
    return code


def cmd_flush(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk journal flush``."""
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.errors import DeeplakeError
    from deeplake_sdk.journal import drain, journal_path

    try:
        api = DeeplakeApi(args.token, args.org, args.workspace, args.url)
    except DeeplakeError as exc:
        raise sdk_error(exc) from exc
    root = _root(args)
    creds = api.credentials
    path = journal_path(root, creds.api_url, creds.org_id, api.workspace_id)
    started = time.monotonic()
    try:
        if not path.exists():
            left, stats = 0, None
        else:
            left = drain(api, root, args.timeout)
            stats = _journal_stats(api, root)
    except DeeplakeError as exc:
        raise sdk_error(exc) from exc
    finally:
        api.close()
    took = time.monotonic() - started
    rejected = stats.rejected if stats else 0
    if args.json:
        print_json({"journal": str(path), "pending": left, "rejected": rejected, "seconds": took})
    elif stats is None:
        print(f"nothing journaled for org={creds.org_id} workspace={api.workspace_id}")
    else:
        print(
            f"{path}: {left} pending, {rejected} rejected"
            + (" (see: deeplake-sdk journal ls --rejected)" if rejected else "")
            + f" [{took:.1f}s]"
        )
    if left:
        raise CliError(
            f"{left} entries are still pending after {args.timeout:g}s (the service did not "
            "confirm them); they stay journaled: run the command again later",
            1,
        )
    return EXIT_OK


def _journal_stats(api: Any, root: Any) -> Any:
    """Counts of the workspace's journal (pending, rejected) after a drain."""
    from deeplake_sdk.journal import journal_for

    return journal_for(api, root).store.stats()
