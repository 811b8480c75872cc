"""``deeplake-sdk serve``: run the local Deeplake-compatible API server."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from deeplake_sdk.cli._common import HelpFormatter, example_epilog


def register(subparsers: Any) -> None:
    """Add the ``serve`` command."""
    from deeplake_sdk.server import options

    parser = subparsers.add_parser(
        "serve",
        help="run the local Deeplake-compatible API server (embedded PostgreSQL)",
        description=(
            "Run a local server speaking the Deeplake SQL API on real PostgreSQL: an embedded "
            "PostgreSQL in --data (default ~/.deeplake/local, durable unless "
            "--unsafe-fast-storage) or any PostgreSQL given by --dsn. A workspace's tables live "
            "in a schema named after the workspace, in a database per org. By default it "
            "behaves like the service (--dialect deeplake: 500 for 'already exists' of ADD "
            "COLUMN and CREATE INDEX, QUERY_ERROR codes, no default LIKE escape); --dialect "
            "postgres keeps plain PostgreSQL. Prints 'listening on http://HOST:PORT' when "
            "ready; Ctrl-C or SIGTERM stops it and its PostgreSQL. Faults (latency, 429/5xx, "
            "resets, lost commits, read lag, the ALTER window, coalesced updates...) can be "
            "injected with a profile and per-field overrides; GET /_admin/stats shows the "
            "counters."
        ),
        formatter_class=HelpFormatter,
        epilog=example_epilog(
            "deeplake-sdk serve",
            "deeplake-sdk serve --port 9000 --data /tmp/dl-local --token-file ~/.dl-token "
            "--org acme",
            "DEEPLAKE_SERVER_TOKEN=s3cret DEEPLAKE_SERVER_ADMIN_TOKEN=adm1n deeplake-sdk serve "
            "--host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem",
            "deeplake-sdk serve --faults beta --seed 7 --p-500 0.01",
            "deeplake-sdk serve --faults service --seed 7 --fault read_lag_ms=300",
            "deeplake-sdk serve --dialect postgres --unsafe-fast-storage --data /tmp/dl-fast",
            "DEEPLAKE_API_URL=http://127.0.0.1:8765 DEEPLAKE_TOKEN=local-dev-token "
            "DEEPLAKE_ORG_ID=local python my_agent.py",
        ),
    )
    options.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Replace this process with the server (gevent must patch before psycopg is imported)."""
    from deeplake_sdk.server import options

    if getattr(args, "verbose", 0) and args.log_level == "WARNING":
        args.log_level = "INFO" if args.verbose == 1 else "DEBUG"
    argv = [sys.executable, "-c", options.BOOT_CODE, *options.to_argv(args)]
    env = {**os.environ, **options.token_environ(args)}  # tokens stay off the command line
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
    return 0  # pragma: no cover - execv does not return
