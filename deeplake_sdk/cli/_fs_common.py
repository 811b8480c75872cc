"""Plumbing shared by the memory filesystem commands (``ls``, ``cat``, ``write``, ``grep``...).

Options every such command takes, opening the :class:`~deeplake_sdk.DeeplakeFs` of the
command's workspace, and turning filesystem errors into coreutils-style lines and exit codes.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import sys
from collections.abc import Iterator
from typing import Any

from deeplake_sdk.cli._common import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    CliError,
    add_credential_options,
    fail,
    leave_to_journal,
    no_exit_drain,
    non_negative_float,
    sdk_error,
)

__all__ = ["add_fs_options", "open_fs", "report", "stdout_pipe"]

#: Default longest wait, in seconds, for a command's changes to be stored (``--wait``).
WAIT = 60.0
#: Longest wait for the changes an earlier command left in the journal, when opening.
RECOVER = 30.0


def add_fs_options(parser: argparse.ArgumentParser) -> None:
    """Add the table, cache and credential options of the filesystem commands."""
    group = parser.add_argument_group("filesystem")
    group.add_argument(
        "--table", metavar="NAME", help="memory table (default: DEEPLAKE_TABLE, else 'memory')"
    )
    group.add_argument(
        "--sessions-table",
        metavar="NAME",
        help="sessions table (default: DEEPLAKE_SESSIONS_TABLE, else 'sessions')",
    )
    group.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the persistent content cache (DEEPLAKE_CACHE_DIR)",
    )
    group.add_argument(
        "--wait",
        type=non_negative_float,
        default=WAIT,
        metavar="SECONDS",
        help=(
            f"longest wait for the changes to be stored (default {WAIT:g}; changes an "
            f"earlier command left in the journal: at most {RECOVER:g}; a service that cannot "
            "be connected to ends it at once); what is not stored "
            "by then stays in the local journal, is sent by the next command (or "
            "'deeplake-sdk journal flush'), and the exit code is 2. 0: journal the change "
            "and return at once (exit code 0)"
        ),
    )
    add_credential_options(parser)


@contextlib.contextmanager
def open_fs(args: argparse.Namespace) -> Iterator[Any]:
    """Open the filesystem of the command's workspace; errors become :class:`CliError`."""
    from deeplake_sdk.api import DeeplakeApi
    from deeplake_sdk.cache import ContentCache, NullCache
    from deeplake_sdk.errors import DeeplakeError
    from deeplake_sdk.fs import DeeplakeFs

    try:
        api = DeeplakeApi(
            args.token,
            args.org,
            args.workspace,
            args.url,
            table=args.table,
            sessions_table=args.sessions_table,
        ).connect_once()  # a command fails at once where the service cannot be connected to
    except DeeplakeError as exc:
        raise _cli_error(exc) from exc
    if args.wait > 0:
        no_exit_drain()  # the command's own wait is the longest
    else:
        leave_to_journal()
    cache = NullCache() if args.no_cache else ContentCache()
    fs = None
    try:
        fs = DeeplakeFs(
            api, cache=cache, flush_timeout=args.wait, recover_timeout=min(args.wait, RECOVER)
        )
        yield fs
        if args.wait > 0:  # not past an outage: what is not stored then, the next command sends
            fs.flush(args.wait, while_reachable=True)
        fs.close(wait=False)
    except DeeplakeError as exc:
        raise _cli_error(exc) from exc
    finally:
        if fs is not None and not fs.closed:  # failed: what was journaled stays journaled
            with contextlib.suppress(Exception):
                fs.close(wait=False)
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
        if exc.journaled:
            advice = (
                "; the change is kept in the local journal and is sent by the next command "
                "that uses this workspace (or: deeplake-sdk journal flush)"
            )
        else:
            advice = (
                "; the service refused it, so running the command again would fail the same "
                "way (see: deeplake-sdk journal ls --rejected)"
            )
        return CliError(f"could not store {paths}" + (f": {first}" if first else "") + advice)
    return sdk_error(exc)


def _fs_message(exc: Any, *, recursive_hint: bool = False) -> str:
    """``PATH: reason`` as coreutils print it."""
    reason = exc.strerror or ""
    if exc.errno == errno.EISDIR:
        reason = "Is a directory" + (
            " (use -r to remove it and its contents)" if recursive_hint else ""
        )
    return f"{exc.filename}: {reason}"


def _fs_status(exc: Any) -> int:
    return EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_ERROR


def report(exc: Any, **hints: bool) -> int:
    """Print one filesystem error; returns its exit status."""
    return fail(_fs_message(exc, **hints), _fs_status(exc))


@contextlib.contextmanager
def stdout_pipe() -> Iterator[None]:
    """Stop quietly when the reader of stdout goes away (``| head``)."""
    import os

    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
