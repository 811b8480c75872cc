"""The adaptive limit alone: a stream of cheap statements against a server with a capacity.

One process (gevent-patched) runs ``--greenlets`` loops of ``SELECT 1`` for ``--seconds``
against an embedded server set to a fault profile (default ``beta``: 400 requests/s, 32 in
flight, ~35 ms mean latency), with the SDK's defaults. The statements cost the client and the
server almost nothing, so the figures show what the limit and its pace make of the server's
capacity, without the benchmark workload's own CPU (``deeplake-sdk bench`` measures that).

Reports the goodput (answers counted as successful by the server, per second) as a fraction
of the profile's capacity, the share of requests answered 429 or 503, and the limiter's
counters (limit, pace, decreases, pauses).

Usage::

    python benchmarks/limit_stream.py [--greenlets 200] [--seconds 10] [--profile beta]
        [--fault FIELD=VALUE ...] [--repeat 3] [--json]

It starts its own embedded server (PostgreSQL included) and stops it at the end.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from deeplake_sdk import DeeplakeApi  # noqa: E402
from deeplake_sdk.bench.metrics import server_capacity_qps  # noqa: E402
from deeplake_sdk.server import local  # noqa: E402


def _fault(text: str) -> tuple[str, Any]:
    field, _, value = text.partition("=")
    try:
        return field, json.loads(value)
    except ValueError:
        return field, value


def stream(srv: Any, greenlets: int, seconds: float, faults: dict[str, Any]) -> dict[str, Any]:
    """One run in a fresh workspace; returns its figures."""
    api = DeeplakeApi(srv.token, srv.org, f"stream_{time.monotonic_ns()}", srv.url)
    api.query("SELECT 1")  # the workspace exists before the clock starts
    srv.set_faults(**faults)
    capacity = server_capacity_qps(srv.faults())
    srv.reset_stats()
    end = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < end:
            api.query("SELECT 1")

    started = time.monotonic()
    gevent.joinall([gevent.spawn(loop) for _ in range(greenlets)], raise_error=True)
    elapsed = time.monotonic() - started
    stats = srv.stats()
    srv.set_faults(profile="none")
    codes = stats["status_counts"]
    limiter = api.endpoint.limiter.stats()
    origin = limiter.get("origin", limiter)
    api.close()
    ok = codes.get("200", 0)
    refused = codes.get("429", 0) + codes.get("503", 0)
    return {
        "goodput_qps": round(ok / elapsed, 1),
        "capacity_qps": capacity,
        "of_capacity": round(ok / elapsed / capacity, 3) if capacity else None,
        "requests": stats["requests"],
        "refused_429_503": refused,
        "refused_share": round(refused / max(1, stats["requests"]), 4),
        "limit": origin["limit"],
        "pace": round(origin["rate"], 1),
        "decreases": origin["decreases"],
        "pauses": origin["pauses"],
    }


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--greenlets", type=int, default=200, help="concurrent loops (200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a run (10)")
    parser.add_argument("--profile", default="beta", help="server fault profile (beta)")
    parser.add_argument(
        "--fault", action="append", default=[], type=_fault, help="FIELD=VALUE on top"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians reported (3)")
    parser.add_argument("--json", action="store_true", help="print every run as JSON")
    args = parser.parse_args()
    faults = {"profile": args.profile, **dict(args.fault)}
    with local(durable=False) as srv:
        runs = [stream(srv, args.greenlets, args.seconds, faults) for _ in range(args.repeat)]
    if args.json:
        print(json.dumps(runs, indent=2))
        return
    for run in runs:
        print(run)
    share = statistics.median(r["of_capacity"] or 0 for r in runs)
    refused = statistics.median(r["refused_share"] for r in runs)
    print(
        f"median of {len(runs)}: {share:.0%} of capacity, 429+503 {refused:.2%} of requests "
        f"({args.greenlets} greenlets, {args.seconds:g} s, {faults})"
    )


if __name__ == "__main__":
    main()
