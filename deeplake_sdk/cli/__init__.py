"""The ``deeplake-sdk`` command.

Each command group lives in its own module exposing ``register(subparsers)``; this module only
assembles them and maps errors to exit codes: 0 ok, 1 not found / no match, 2 usage or error.
Every error is one line on stderr, never a traceback (``-vv`` logs it); the line suggests
running the command again only when the failure may be transient (the network, the service).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from deeplake_sdk._version import __version__
from deeplake_sdk.cli._common import EXIT_ERROR, CliError, fail, sdk_error
from deeplake_sdk.errors import DeeplakeError, NetworkError, ServerError

logger = logging.getLogger(__name__)

# Modules of deeplake_sdk.cli that contribute commands, in --help order.
COMMAND_MODULES = [
    "serve",
    "api_cmds",
    "fs_cmds",
    "grep_cmd",
    "journal_cmd",
    "hook",
    "mcp_cmd",
    "bench",
]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="deeplake-sdk",
        description="Deeplake SDK command line: query the service, use the memory filesystem, "
        "run the local server and the benchmark.",
        epilog="Run 'deeplake-sdk COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"deeplake-sdk {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"deeplake_sdk.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        return fail(str(exc), exc.exit_code)
    except DeeplakeError as exc:
        error = sdk_error(exc)
        message = str(error)
        if isinstance(exc, (NetworkError, ServerError)) and "again" not in message:
            message += " (it may be transient: run the command again)"
        return fail(message, error.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_ERROR)
    except (ValueError, UnicodeError, OSError) as exc:  # bad input: a name, an argument, a path
        logger.debug("command failed", exc_info=True)
        return fail(str(exc) or type(exc).__name__, EXIT_ERROR)
    except Exception as exc:  # a bug: still one line; -vv shows the traceback
        logger.debug("command failed", exc_info=True)
        return fail(f"unexpected {type(exc).__name__}: {exc} (-vv shows where)", EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
