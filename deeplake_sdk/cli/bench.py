"""``deeplake-sdk bench``: the users x sessions benchmark, baseline vs optimized."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from deeplake_sdk.cli._common import EXIT_OK, CliError, HelpFormatter, example_epilog
from deeplake_sdk.limiter import DEFAULT_MAX_CONCURRENCY


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("baseline", "optimized")]
    if not modes or bad:
        raise argparse.ArgumentTypeError("modes are 'baseline' and/or 'optimized'")
    return modes


def _override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    try:
        return key.strip(), float(value) if "." in value or "e" in value else int(value)
    except ValueError:
        return key.strip(), value


def register(sub: Any) -> None:
    """Add the ``bench`` command."""
    p = sub.add_parser(
        "bench",
        help="run the users x sessions benchmark (baseline vs optimized)",
        description="Run concurrent agent sessions against a local (or given) server with a "
        "fault profile, in baseline and optimized SDK configurations; report queries, errors, "
        "crashed sessions, QPS, latency percentiles and verified lost/duplicated writes.",
        formatter_class=HelpFormatter,
        epilog=example_epilog(
            "deeplake-sdk bench --users 5,20 --sessions 1,5 --rounds 5 --out bench-out",
            "deeplake-sdk bench --users 100 --sessions 10 --mode optimized --profile beta",
        ),
    )
    p.add_argument(
        "--users", type=_ints, default=[5, 10, 20, 50, 100], help="user counts (5,10,...)"
    )
    p.add_argument("--sessions", type=_ints, default=[1, 3, 5, 10], help="sessions per user")
    p.add_argument("--rounds", type=int, default=5, help="QA rounds per session (default 5)")
    p.add_argument(
        "--mode", type=_modes, default=["baseline", "optimized"], help="baseline,optimized"
    )
    p.add_argument(
        "--profile", default="beta", help="server fault profile (none, flaky, beta, seed, service)"
    )
    p.add_argument(
        "--fault",
        type=_override,
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one fault field, e.g. --fault p_commit_fail=0.01 (repeatable)",
    )
    p.add_argument("--seed", type=int, default=7, help="fault seed (default 7)")
    p.add_argument("--processes", type=int, default=1, help="worker processes per run")
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=DEFAULT_MAX_CONCURRENCY,
        help="optimized mode: each client's own cap on requests in flight (default "
        f"{DEFAULT_MAX_CONCURRENCY}: the adaptive limit's ceiling, no cap of their own)",
    )
    p.add_argument(
        "--adaptive",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="optimized mode: adapt a --max-concurrency cap to 429/503 answers (default: on)",
    )
    p.add_argument("--url", help="benchmark this server instead of starting a local one")
    p.add_argument("--token", help="token for --url (default DEEPLAKE_TOKEN / credentials file)")
    p.add_argument("--org", help="org for --url (default DEEPLAKE_ORG_ID / credentials file)")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="output directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and write the reports."""
    from deeplake_sdk.bench.report import markdown, write_reports
    from deeplake_sdk.bench.runner import BenchConfig, run_matrix

    token, org = args.token, args.org
    if args.url and not (token and org):
        from deeplake_sdk.config import load_credentials

        creds = load_credentials(token, org, None, args.url)
        token, org = creds.token, creds.org_id
    try:
        cfg = BenchConfig(
            users=args.users,
            sessions=args.sessions,
            rounds=args.rounds,
            modes=args.mode,
            profile=args.profile,
            seed=args.seed,
            processes=args.processes,
            url=args.url,
            token=token,
            org=org,
            fault_overrides=dict(args.fault),
            max_concurrency=args.max_concurrency,
            adaptive=args.adaptive,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    started = time.monotonic()
    doc = run_matrix(cfg, progress=ProgressBar())
    files = write_reports(doc, args.out)
    print(markdown(doc))
    print(f"wrote {', '.join(str(f) for f in files)} in {time.monotonic() - started:.0f} s")
    return EXIT_OK


class ProgressBar:
    """Sessions finished per run, on stderr (redrawn in place on a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, label: str, done: int, total: int, crashed: int) -> None:
        """Show that ``done`` of ``total`` sessions of run ``label`` finished."""
        width = 30
        filled = int(width * done / total)
        line = f"{label:26s} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        if crashed:
            line += f" crashed {crashed}"
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if done == total else ""))
        elif done == total or done * 10 // total != (done - 1) * 10 // total:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
