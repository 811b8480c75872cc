"""Command-line options of the server.

Shared by ``deeplake-sdk serve`` and ``python -m deeplake_sdk.server``; no heavy imports here
(the CLI imports this module before gevent patches anything).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deeplake_sdk.server.limits import MIB, Limits

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_TOKEN = "local-dev-token"
DEFAULT_ORG = "local"
#: SQL dialects (:mod:`deeplake_sdk.server.dialect`): the service's behaviours or plain PostgreSQL.
DIALECT_NAMES = ("deeplake", "postgres")
DEFAULT_DIALECT = "deeplake"
#: Connections to PostgreSQL, all workspaces together. Under the ``service`` profile with
#: 32 requests in flight, writes waiting out their read lag held 94 to 115 of them at the
#: peak (benchmarks/service_pool.py); the embedded PostgreSQL allows 200.
DEFAULT_POOL_SIZE = 150
#: Environment variables holding the tokens (so they need not be on the command line, where
#: ``ps`` shows them): the primary token, the admin token, more ``TOKEN=ORG`` pairs (one a line).
TOKEN_ENV = "DEEPLAKE_SERVER_TOKEN"
ADMIN_TOKEN_ENV = "DEEPLAKE_SERVER_ADMIN_TOKEN"
EXTRA_TOKENS_ENV = "DEEPLAKE_SERVER_EXTRA_TOKENS"
_LIMITS = Limits()

# (flag, FaultConfig field, type, help)
FAULT_FLAGS: list[tuple[str, str, type, str]] = [
    ("--latency-ms", "latency_fixed_ms", float, "fixed latency added to each request (ms)"),
    ("--latency-median-ms", "latency_median_ms", float, "median of a log-normal added latency"),
    ("--latency-sigma", "latency_sigma", float, "log-normal sigma (long tail; 0 = constant)"),
    ("--max-inflight", "max_inflight", int, "requests in flight before 503 (0 = unlimited)"),
    ("--rate", "rate_per_s", float, "per-org requests/s before 429 (0 = unlimited)"),
    ("--burst", "burst", int, "per-org token bucket size"),
    ("--retry-after", "retry_after_s", int, "Retry-After seconds of injected 503/429"),
    ("--p-429", "p_429", float, "probability of a random 429"),
    ("--p-503", "p_503", float, "probability of a random 503"),
    ("--p-500", "p_500", float, "probability of a random 500"),
    ("--p-502", "p_502", float, "probability of a random 502"),
    ("--p-504", "p_504", float, "probability of a random 504"),
    ("--p-reset", "p_reset", float, "probability of a connection reset before execution"),
    (
        "--p-commit-fail",
        "p_commit_fail",
        float,
        "probability that a committed statement's answer is lost (502 or dropped connection)",
    ),
    ("--fail-pattern", "fail_pattern", str, "regex: matching queries fail without running"),
    ("--fail-status", "fail_status", int, "status for --fail-pattern matches (default 500)"),
    (
        "--fail-message",
        "fail_message",
        str,
        "error message of --fail-pattern answers (e.g. 'index \"i\" already exists')",
    ),
    (
        "--max-faults",
        "max_faults",
        int,
        "requests that get a random or pattern fault, at most (0 = no limit), then none",
    ),
    ("--p-402", "p_402", float, "probability of the service's 402 'insufficient balance'"),
    (
        "--p-auth-html",
        "p_auth_html",
        float,
        "probability of a transient 401/403 with a gateway's HTML body",
    ),
    ("--slow-query-ms", "slow_query_ms", float, "delay of a slow query (ms)"),
    ("--p-slow", "p_slow", float, "probability that a query is slow (--slow-query-ms)"),
    (
        "--read-lag-ms",
        "read_lag_ms",
        float,
        "writes are answered, then committed this long after (visible to others only then)",
    ),
    (
        "--alter-window-s",
        "alter_window_s",
        float,
        "INSERTs into a table fail with the service's 500 this long after an ADD COLUMN",
    ),
    (
        "--p-coalesce",
        "p_coalesce",
        float,
        "probability that an UPDATE of a row updated in the last 50 ms is answered but dropped",
    ),
    (
        "--coalesce-window-ms",
        "coalesce_window_ms",
        float,
        "how recent the earlier update must be for --p-coalesce (default 50)",
    ),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the server options to ``parser``."""
    net = parser.add_argument_group("server")
    net.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)"
    )
    net.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s; 0 = any free)"
    )
    where = net.add_mutually_exclusive_group()
    where.add_argument(
        "--data", metavar="DIR", help="embedded PostgreSQL data dir (default ~/.deeplake/local)"
    )
    where.add_argument(
        "--dsn", metavar="URL", help="use this PostgreSQL (superuser) instead of the embedded one"
    )
    net.add_argument(
        "--token",
        default=None,
        help=f"accepted bearer token (default: env {TOKEN_ENV}, else {DEFAULT_TOKEN}, which "
        "only a loopback --host accepts)",
    )
    net.add_argument("--token-file", metavar="PATH", help="read --token from this file")
    net.add_argument("--org", default=DEFAULT_ORG, help="org id of --token (default %(default)s)")
    net.add_argument(
        "--extra-token",
        action="append",
        default=[],
        metavar="TOKEN=ORG",
        help=f"another accepted token and its org (repeatable; also env {EXTRA_TOKENS_ENV}, "
        "one pair a line)",
    )
    net.add_argument(
        "--tokens-file", metavar="PATH", help="more TOKEN=ORG pairs, one a line, from this file"
    )
    net.add_argument(
        "--admin-token",
        default=None,
        help=f"token of the /_admin endpoints (default: env {ADMIN_TOKEN_ENV}; else --token "
        "on a loopback --host, and no admin endpoints on any other)",
    )
    net.add_argument("--admin-token-file", metavar="PATH", help="read --admin-token from a file")
    net.add_argument(
        "--trace",
        metavar="FILE",
        help="append a JSON line per statement answered (and per commit deferred by read lag) "
        "to FILE: what ran, when, with what outcome and fault (debugging; costs I/O)",
    )
    net.add_argument("--tls-cert", metavar="PEM", help="serve https with this certificate chain")
    net.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    net.add_argument(
        "--pool-size",
        type=int,
        default=DEFAULT_POOL_SIZE,
        help="max PostgreSQL connections (default %(default)s)",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--statement-timeout-ms",
        type=int,
        default=_LIMITS.statement_timeout_ms,
        help="timeout of queries sent without timeout_ms (default %(default)s)",
    )
    limits.add_argument(
        "--max-statement-timeout-ms",
        type=int,
        default=_LIMITS.max_statement_timeout_ms,
        help="longest a statement may run, whatever it asks (default %(default)s)",
    )
    limits.add_argument(
        "--org-connections",
        type=int,
        default=_LIMITS.org_connections,
        help="PostgreSQL connections one org may hold at once (default 0 = 3/4 of --pool-size)",
    )
    limits.add_argument(
        "--connection-wait-s",
        type=float,
        default=_LIMITS.connection_wait_s,
        help="how long a request waits for a PostgreSQL connection before a 503 "
        "(default %(default)s)",
    )
    limits.add_argument(
        "--max-body-mb",
        type=float,
        default=_LIMITS.max_body_bytes / MIB,
        help="largest request body (default %(default)g)",
    )
    limits.add_argument(
        "--max-result-mb",
        type=float,
        default=_LIMITS.max_result_bytes / MIB,
        help="largest result, as JSON (default %(default)g)",
    )
    limits.add_argument(
        "--max-params",
        type=int,
        default=_LIMITS.max_params,
        help="most $n parameters of a query (default %(default)s)",
    )
    net.add_argument(
        "--dialect",
        choices=DIALECT_NAMES,
        default=DEFAULT_DIALECT,
        help="the service's SQL behaviours (deeplake) or plain PostgreSQL (default %(default)s)",
    )
    net.add_argument(
        "--unsafe-fast-storage",
        action="store_true",
        help="embedded PostgreSQL without fsync, full_page_writes and synchronous_commit: "
        "faster, but a crash can lose acknowledged writes (tests and benchmarks only)",
    )
    net.add_argument(
        "--migrate-workspace",
        action="append",
        default=[],
        metavar="SCHEMA=ORG/WORKSPACE",
        help="org and workspace id of a workspace schema of the old layout (repeatable)",
    )
    net.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="server log level (default %(default)s)",
    )
    faults = parser.add_argument_group(
        "fault injection",
        "a named profile, then any field override (env DEEPLAKE_SERVER_FAULTS "
        "sets the default profile)",
    )
    faults.add_argument(
        "--faults",
        metavar="PROFILE",
        default=os.environ.get("DEEPLAKE_SERVER_FAULTS", "none"),
        help="none, flaky, beta or service (default %(default)s)",
    )
    faults.add_argument("--seed", type=int, help="seed of the fault sequence (default random)")
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set any fault field by name, e.g. --fault read_lag_ms=200 (repeatable)",
    )
    for flag, field, typ, text in FAULT_FLAGS:
        faults.add_argument(flag, dest=field, type=typ, default=None, help=text)


def fault_overrides(ns: argparse.Namespace) -> dict[str, Any]:
    """FaultConfig field overrides given on the command line (``--fault`` pairs last).

    Raises:
        ValueError: a ``--fault`` value without ``=``.
    """
    overrides = {
        field: getattr(ns, field)
        for _, field, _, _ in FAULT_FLAGS
        if getattr(ns, field, None) is not None
    }
    for pair in getattr(ns, "fault", None) or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--fault expects NAME=VALUE, got {pair!r}")
        overrides[name.strip()] = value.strip()
    return overrides


def parse_migrations(ns: argparse.Namespace) -> dict[str, tuple[str, str]]:
    """Old-layout schema -> (org, workspace) from ``--migrate-workspace``.

    Raises:
        ValueError: a value not shaped ``SCHEMA=ORG/WORKSPACE``.
    """
    out = {}
    for pair in getattr(ns, "migrate_workspace", None) or []:
        schema, sep, target = pair.partition("=")
        org, slash, workspace = target.partition("/")
        if not (sep and slash and schema and org and workspace):
            raise ValueError(f"--migrate-workspace expects SCHEMA=ORG/WORKSPACE, got {pair!r}")
        out[schema] = (org, workspace)
    return out


def _read_secret(path: str, what: str) -> str:
    try:
        text = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {what} from {path}: {exc}") from None
    if not text or "\n" in text:
        raise ValueError(f"{path} must hold {what} alone on one line")
    return text


def primary_token(ns: argparse.Namespace) -> str:
    """The primary token: ``--token``, ``--token-file``, env, else the default."""
    if getattr(ns, "token_file", None):
        return _read_secret(ns.token_file, "a token")
    return ns.token or os.environ.get(TOKEN_ENV) or DEFAULT_TOKEN


def admin_token(ns: argparse.Namespace) -> str | None:
    """The explicit admin token (``--admin-token``, ``--admin-token-file``, env), or None."""
    if getattr(ns, "admin_token_file", None):
        return _read_secret(ns.admin_token_file, "the admin token")
    return getattr(ns, "admin_token", None) or os.environ.get(ADMIN_TOKEN_ENV) or None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_tokens(ns: argparse.Namespace) -> dict[str, str]:
    """Token -> org map from ``--token/--org``, ``--extra-token``, the tokens file and env."""
    tokens = {primary_token(ns): ns.org}
    pairs = list(ns.extra_token or [])
    pairs += os.environ.get(EXTRA_TOKENS_ENV, "").split()
    if getattr(ns, "tokens_file", None):
        try:
            pairs += Path(ns.tokens_file).read_text().split()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read tokens from {ns.tokens_file}: {exc}") from None
    for pair in pairs:
        token, sep, org = pair.partition("=")
        if not sep or not token or not org:
            raise ValueError(f"--extra-token expects TOKEN=ORG, got {pair!r}")
        tokens[token] = org
    return tokens


def access(ns: argparse.Namespace) -> tuple[dict[str, str], str | None, str | None]:
    """Tokens, admin token and a warning for where the server listens.

    On a loopback ``--host`` the primary token is the admin token unless one is given. On any
    other host the default token is refused, the admin endpoints need ``--admin-token``, and
    the warning says the server is exposed (and whether without TLS).

    Raises:
        ValueError: exposed with the default token, or a bad token option.
    """
    tokens = parse_tokens(ns)
    admin = admin_token(ns)
    if is_loopback(ns.host):
        return tokens, admin or primary_token(ns), None
    if DEFAULT_TOKEN in tokens:
        raise ValueError(
            f"--host {ns.host} is not loopback: give a token of your own (--token-file, env "
            f"{TOKEN_ENV} or --token), not the default {DEFAULT_TOKEN!r}"
        )
    scheme = "https" if getattr(ns, "tls_cert", None) else "plain http (no --tls-cert)"
    warning = (
        f"warning: serving on {ns.host}, not loopback, over {scheme}: anyone who can reach "
        "the port and holds a token can read and write that org's workspaces"
        + ("" if admin else "; /_admin is off (no --admin-token)")
    )
    return tokens, admin, warning


def limits_of(ns: argparse.Namespace) -> Limits:
    """The :class:`Limits` of the command line.

    Raises:
        ValueError: a limit out of range.
    """
    return Limits(
        max_body_bytes=int(ns.max_body_mb * MIB),
        max_params=ns.max_params,
        max_result_bytes=int(ns.max_result_mb * MIB),
        statement_timeout_ms=ns.statement_timeout_ms,
        max_statement_timeout_ms=ns.max_statement_timeout_ms,
        org_connections=ns.org_connections,
        connection_wait_s=ns.connection_wait_s,
    )


def token_environ(ns: argparse.Namespace) -> dict[str, str]:
    """The tokens of ``ns`` as environment variables (see :func:`to_argv`)."""
    env = {TOKEN_ENV: primary_token(ns)}
    admin = admin_token(ns)
    if admin:
        env[ADMIN_TOKEN_ENV] = admin
    extra = "\n".join(ns.extra_token or [])
    if extra or os.environ.get(EXTRA_TOKENS_ENV):
        env[EXTRA_TOKENS_ENV] = "\n".join(
            p for p in (os.environ.get(EXTRA_TOKENS_ENV, ""), extra) if p
        )
    return env


def to_argv(ns: argparse.Namespace) -> list[str]:
    """Rebuild command-line arguments equivalent to ``ns`` (for re-executing the server).

    Tokens are left out: pass :func:`token_environ` as the environment instead.
    """
    argv = ["--host", ns.host, "--port", str(ns.port), "--org", ns.org]
    argv += ["--pool-size", str(ns.pool_size), "--log-level", ns.log_level]
    argv += ["--statement-timeout-ms", str(ns.statement_timeout_ms), "--faults", ns.faults]
    argv += ["--max-statement-timeout-ms", str(ns.max_statement_timeout_ms)]
    argv += ["--org-connections", str(ns.org_connections)]
    argv += ["--connection-wait-s", repr(ns.connection_wait_s)]
    argv += ["--max-body-mb", repr(ns.max_body_mb), "--max-result-mb", repr(ns.max_result_mb)]
    argv += ["--max-params", str(ns.max_params), "--dialect", ns.dialect]
    for flag, path in (
        ("--tokens-file", ns.tokens_file),
        ("--tls-cert", ns.tls_cert),
        ("--tls-key", ns.tls_key),
    ):
        if path:
            argv += [flag, os.path.abspath(path)]
    if ns.unsafe_fast_storage:
        argv.append("--unsafe-fast-storage")
    for pair in ns.migrate_workspace or []:
        argv += ["--migrate-workspace", pair]
    for pair in ns.fault or []:
        argv += ["--fault", pair]
    if ns.data:
        argv += ["--data", ns.data]
    if ns.dsn:
        argv += ["--dsn", ns.dsn]
    if ns.seed is not None:
        argv += ["--seed", str(ns.seed)]
    for flag, field, _, _ in FAULT_FLAGS:
        value = getattr(ns, field, None)
        if value is not None:
            argv += [flag, str(value)]
    return argv


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``python -m deeplake_sdk.server`` arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m deeplake_sdk.server",
        description="Local Deeplake-compatible API server on PostgreSQL.",
    )
    add_arguments(parser)
    return parser.parse_args(argv)


#: ``python -c`` program running the server with gevent patched before anything else is
#: imported (``-m deeplake_sdk.server`` would import the package's ``__init__`` first).
BOOT_CODE = (
    "from gevent import monkey; monkey.patch_all()\n"
    "import sys\n"
    "from deeplake_sdk.server.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
