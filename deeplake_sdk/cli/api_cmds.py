"""``deeplake-sdk query`` and ``deeplake-sdk tables``: the SQL API from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from deeplake_sdk.cli._common import (
    EXIT_OK,
    CliError,
    HelpFormatter,
    add_credential_options,
    example_epilog,
    positive_float,
    print_json,
    sdk_error,
)

__all__ = ["format_table", "register"]

_MAX_CELL = 200


def register(subparsers: Any) -> None:
    """Add the ``query`` and ``tables`` commands to the ``deeplake-sdk`` parser."""
    p = subparsers.add_parser(
        "query",
        help="run one SQL statement and print its rows",
        description="Run one SQL statement against the workspace and print the rows as an "
        "aligned table (or JSON). Use $1, $2, ... placeholders with --param for values.",
        epilog=example_epilog(
            'deeplake-sdk query "SELECT path, size_bytes FROM memory LIMIT 5"',
            'deeplake-sdk query "SELECT * FROM memory WHERE path = $1" --param /notes/a.md --json',
            'deeplake-sdk query "SELECT $1::bigint + 1" --param-json 41',
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("sql", help="the SQL statement (quote it for the shell)")
    p.add_argument(
        "--param",
        "-p",
        dest="params",
        action="append",
        default=[],
        metavar="TEXT",
        help="text value of the next $n placeholder (repeatable)",
    )
    p.add_argument(
        "--param-json",
        dest="params",
        action="append",
        type=_json_scalar,
        metavar="JSON",
        help='JSON scalar (number, true, false, null, "text") for the next $n placeholder',
    )
    p.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    p.add_argument(
        "--timeout", type=positive_float, metavar="SECONDS", help="statement timeout (default 60)"
    )
    p.add_argument(
        "--idempotent",
        action="store_true",
        help="the statement is safe to run twice: re-send it after an ambiguous "
        "failure (writes are otherwise not re-sent)",
    )
    add_credential_options(p)
    p.set_defaults(func=cmd_query)

    t = subparsers.add_parser(
        "tables",
        help="list the workspace's tables",
        description="List the tables of the workspace, one per line (or as JSON).",
        epilog=example_epilog("deeplake-sdk tables", "deeplake-sdk tables --workspace demo --json"),
        formatter_class=HelpFormatter,
    )
    t.add_argument("--json", action="store_true", help="print a JSON array of names")
    add_credential_options(t)
    t.set_defaults(func=cmd_tables)


def _json_scalar(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r} (quote text as '\"...\"')") from None
    if isinstance(value, (dict, list)):
        raise argparse.ArgumentTypeError("parameters must be JSON scalars, not objects/arrays")
    return value


def _client(args: argparse.Namespace) -> Any:
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.errors import ConfigError

    try:
        # a command fails at once where the service cannot be connected to
        return DeeplakeApi(args.token, args.org, args.workspace, args.url).connect_once()
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def _cell(value: Any) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def format_table(columns: list[str], rows: list[list[Any]]) -> str:
    """Format rows as an aligned text table with a header and a ``(n rows)`` footer.

    Args:
        columns: Column names.
        rows: Rows in column order.

    Returns:
        The table text, ending with a newline.
    """
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)).rstrip(),
        "-+-".join("-" * w for w in widths),
    ]
    lines.extend(
        " | ".join(t.ljust(w) for t, w in zip(row, widths, strict=False)).rstrip() for row in cells
    )
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines) + "\n"


def cmd_query(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk query``."""
    from deeplake_sdk.errors import DeeplakeError

    with _client(args) as api:
        try:
            result = api.execute(
                args.sql,
                args.params,
                timeout=args.timeout,
                idempotent=True if args.idempotent else None,
            )
        except DeeplakeError as exc:
            raise sdk_error(exc) from exc
        except (TypeError, ValueError) as exc:
            raise CliError(f"invalid input: {exc}") from exc
    if args.json:
        print_json(result.dicts())
    elif result.columns:
        sys.stdout.write(format_table(result.columns, result.rows))
    elif result.row_count is None:
        print("OK")
    else:
        print(f"OK ({result.row_count} row{'' if result.row_count == 1 else 's'} affected)")
    return EXIT_OK


def cmd_tables(args: argparse.Namespace) -> int:
    """Run ``deeplake-sdk tables``."""
    from deeplake_sdk.errors import DeeplakeError

    with _client(args) as api:
        try:
            names = sorted(api.list_tables())
        except DeeplakeError as exc:
            raise sdk_error(exc) from exc
    if args.json:
        print_json(names)
    else:
        for name in names:
            print(name)
    return EXIT_OK
