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

#: Command -> the module of deeplake_sdk.cli that registers it (modules in --help order).
COMMANDS = {
    "serve": "serve",
    "query": "api_cmds",
    "tables": "api_cmds",
    "append": "fs_cmds",
    "cat": "fs_cmds",
    "ls": "fs_cmds",
    "rm": "fs_cmds",
    "write": "fs_cmds",
    "grep": "grep_cmd",
    "journal": "journal_cmd",
    "hook": "hook",
    "mcp": "mcp_cmd",
    "bench": "bench",
}
#: Modules of deeplake_sdk.cli that contribute commands, in --help order.
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser.

    Args:
        command: Register only the module of this command (a hook process then imports
            what its command needs, not the server's or the benchmark's options); ``None``
            or an unknown name: every command.
    """
    return _parser([COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES)


def _parser(modules: Sequence[str]) -> argparse.ArgumentParser:
    """The top-level parser with the commands of ``modules`` (of deeplake_sdk.cli)."""
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
    for name in modules:
        importlib.import_module(f"deeplake_sdk.cli.{name}").register(sub)
    return parser


def _parser_for(words: Sequence[str]) -> argparse.ArgumentParser:
    """The parser ``words`` need: its command's, none for a bare ``--version``, else all."""
    command = _command(words)
    if command is None and "--version" in words and not {"-h", "--help"} & set(words):
        return _parser([])
    return build_parser(command)


def _command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first word not an option (top-level ones take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    words = sys.argv[1:] if argv is None else list(argv)
    parser = _parser_for(words)
    args = parser.parse_args(words)
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
