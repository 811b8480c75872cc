"""``deeplake-sdk mcp``: serve the memory to MCP clients over stdio."""

from __future__ import annotations

import argparse
from typing import Any

from deeplake_sdk.cli._common import EXIT_OK, CliError, HelpFormatter, example_epilog

__all__ = ["DEFAULT_MAX_AGE", "register"]

#: Seconds the server trusts the metadata it read (see ``DeeplakeFs(max_age=...)``): a tool
#: call after that sees what other processes (hooks, other agents) changed meanwhile.
DEFAULT_MAX_AGE = 1.0


def register(subparsers: Any) -> None:
    """Add the ``mcp`` command to the ``deeplake-sdk`` parser."""
    p = subparsers.add_parser(
        "mcp",
        help="serve the memory to MCP clients over stdio (extra [mcp])",
        description="An MCP server on stdin/stdout with the tools search(query, limit), "
        "read(path), index(prefix, limit), write(path, text), append(path, text) and "
        "delete(path) over the memory filesystem. Logs go to stderr.",
        epilog=example_epilog(
            "deeplake-sdk mcp",
            "claude mcp add deeplake -- deeplake-sdk mcp   # register it with Claude Code",
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("--table", help="memory table (default: DEEPLAKE_TABLE or memory)")
    p.add_argument(
        "--sessions-table",
        help="sessions table (default: DEEPLAKE_SESSIONS_TABLE or sessions)",
    )
    p.add_argument(
        "--max-age",
        type=_seconds,
        default=DEFAULT_MAX_AGE,
        metavar="SECONDS",
        help="a tool call refreshes metadata older than this, so that changes other processes "
        f"made show (default {DEFAULT_MAX_AGE:g}; 0: before every call)",
    )
    p.set_defaults(func=cmd_mcp)


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text!r}")
    return value


def cmd_mcp(args: argparse.Namespace) -> int:
    """Run the server until the client closes stdin."""
    from deeplake_sdk.integrations.mcp_server import build_server

    def open_fs() -> Any:
        from deeplake_sdk.api import DeeplakeApi
        from deeplake_sdk.fs import DeeplakeFs

        return DeeplakeFs(
            DeeplakeApi(), args.table, args.sessions_table or "", max_age=args.max_age
        )

    try:
        import mcp.server.mcpserver  # noqa: F401 - fail early with a clear message
    except ImportError as exc:
        raise CliError(
            f"the mcp package is missing: pip install 'deeplake-sdk[mcp]' ({exc})"
        ) from exc
    server, close = build_server(open_fs)
    try:
        server.run("stdio")
    finally:
        close()
    return EXIT_OK
