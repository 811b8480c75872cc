"""Helpers shared by the command modules: exit codes, error output, credential options."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
from typing import Any

EXIT_OK = 0
EXIT_NOT_FOUND = 1  # not found / no match
EXIT_ERROR = 2  # usage or error


class CliError(Exception):
    """An error to report on stderr in one line, with an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, exit_code: int = EXIT_ERROR) -> int:
    """Print ``deeplake-sdk: error: MESSAGE`` on stderr (one line) and return ``exit_code``."""
    first_line = " ".join(str(message).split("\n")).strip()
    print(f"deeplake-sdk: error: {first_line}", file=sys.stderr)
    return exit_code


def print_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout."""
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def add_credential_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--token --org --workspace --url`` (each falls back to env and credentials file)."""
    group = parser.add_argument_group(
        "credentials",
        "default: DEEPLAKE_TOKEN, DEEPLAKE_ORG_ID, DEEPLAKE_WORKSPACE_ID, DEEPLAKE_API_URL, "
        "then ~/.deeplake/credentials.json",
    )
    group.add_argument("--token", help="API token")
    group.add_argument("--org", help="organisation id")
    group.add_argument("--workspace", help="workspace id (default: 'default')")
    group.add_argument("--url", help="API base URL (default: https://api.deeplake.ai)")


def no_exit_drain() -> None:
    """Do not drain the journal at exit: the command waited (or chose not to) itself."""
    os.environ["DEEPLAKE_EXIT_FLUSH_TIMEOUT"] = "0"


def leave_to_journal() -> None:
    """Leave journaled writes to a later drain: neither send them nor wait for them."""
    from deeplake_sdk.journal.flusher import ENV_SEND

    no_exit_drain()
    os.environ[ENV_SEND] = "0"  # a send cut short by the exit only leaves more to resolve
    # "not stored yet" warnings are the expected state then: a later drain stores them.
    for name in ("deeplake_sdk.journal", "deeplake_sdk.fs"):
        logging.getLogger(name).setLevel(logging.ERROR)


def example_epilog(*examples: str) -> str:
    """Format an ``--help`` epilog listing examples."""
    return "examples:\n" + "\n".join(f"  {e}" for e in examples)


class HelpFormatter(argparse.HelpFormatter):
    """Wraps prose paragraphs to the terminal; keeps example blocks (indented lines) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for para in text.split("\n\n"):
            lines = para.splitlines()
            if para.startswith("examples:") or any(line.startswith("  ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(para.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(paragraphs)


CREDENTIAL_HINT = (
    "set DEEPLAKE_TOKEN and DEEPLAKE_ORG_ID (or pass --token/--org), "
    "or write ~/.deeplake/credentials.json"
)


def sdk_error(exc: BaseException) -> CliError:
    """A one-line :class:`CliError` for an SDK error, with a hint on what to do."""
    from deeplake_sdk.errors import AuthError

    if isinstance(exc, AuthError):
        return CliError(f"{exc}; {CREDENTIAL_HINT}")
    return CliError(str(exc))


def positive_int(text: str) -> int:
    """``argparse`` type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def non_negative_float(text: str) -> float:
    """``argparse`` type: a finite number >= 0 (NaN and infinity are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number >= 0")
    return value


def positive_float(text: str) -> float:
    """``argparse`` type: a finite number > 0 (NaN and infinity are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number > 0")
    return value
