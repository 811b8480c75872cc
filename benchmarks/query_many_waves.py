"""query_many in waves: the concurrency bound with and without gevent monkey-patching.

Part 1 - waves. The server adds 200 ms to every query; ``query_many`` runs 20 queries at
``max_concurrency=5``: four waves, about 0.8 s, with the server seeing at most 5 requests in
flight, whether or not the process ran ``gevent.monkey.patch_all()`` (each case runs in a fresh
subprocess). An unbounded client (one wave) and one query at a time (20 waves) frame it.

Part 2 - adaptive limit. A server that admits only 3 requests at once (503 + Retry-After
beyond that) and a client allowed 8: the fixed limit keeps running into 503s and backing off,
the adaptive one (AIMD) settles near the server's capacity. Compares wall time, 503 answers
and retries, to decide whether ``adaptive`` should be on by default.

Usage::

    python benchmarks/query_many_waves.py [--latency-ms 200] [--queries 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CLIENT = r"""
import sys
mode, url, token, org, ws, n, limit, adaptive = sys.argv[1:9]
if mode == "patched":
    from gevent import monkey
    monkey.patch_all()
import json, time
from deeplake_sdk import DeeplakeApi, RetryPolicy
limit = None if limit == "none" else int(limit)
api = DeeplakeApi(token, org, ws, url, max_concurrency=limit, adaptive=adaptive == "1",
                  retries=RetryPolicy(retries=8, backoff_base=0.05, backoff_max=1.0,
                                      retry_after_max=0.2))
started = time.perf_counter()
if limit == 1:
    rows = [api.query("SELECT $1::int AS i", [i]) for i in range(int(n))]
else:
    rows = api.query_many([("SELECT $1::int AS i", [i]) for i in range(int(n))],
                          return_exceptions=True)
wall = time.perf_counter() - started
ok = [r for r in rows if not isinstance(r, Exception)]
print(json.dumps({"wall": wall, "peak": api.endpoint.limiter.peak, "failed": len(rows) - len(ok),
                  "retries": api.stats.retries, "final_limit": api.stats.limit}))
"""


def run(srv, mode: str, n: int, limit: str, adaptive: bool = False) -> dict:
    srv.reset_stats()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT,
            mode,
            srv.url,
            srv.token,
            srv.org,
            "bench_waves",
            str(n),
            limit,
            "1" if adaptive else "0",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    result = json.loads(out.stdout)
    stats = srv.stats()
    result["server_peak"] = stats["inflight_peak"]
    result["conns"] = stats["connections_opened"] - 1  # minus the stats call's own
    result["rejected_503"] = stats["status_counts"].get("503", 0)
    return result


def waves(srv, n: int, latency: float, latency_ms: float) -> None:
    srv.set_faults(latency_fixed_ms=latency_ms)
    print(f"Part 1: {n} queries, server latency {latency_ms:g} ms\n")
    print(f"{'client':42} {'wall s':>7} {'waves':>6} {'server peak':>12} {'conns':>6}")
    for label, mode, limit in [
        ("query_many, limit 5, unpatched", "unpatched", "5"),
        ("query_many, limit 5, patch_all", "patched", "5"),
        ("query_many, unbounded, unpatched", "unpatched", "none"),
        ("query_many, unbounded, patch_all", "patched", "none"),
        ("one at a time (limit 1, a loop)", "unpatched", "1"),
    ]:
        r = run(srv, mode, n, limit)
        print(
            f"{label:42} {r['wall']:7.2f} {r['wall'] / latency:6.1f} "
            f"{r['server_peak']:12d} {r['conns']:6d}"
        )


def adaptive(srv, m: int) -> None:
    srv.set_faults("none", latency_fixed_ms=20, max_inflight=3, retry_after_s=0)
    print(
        f"\nPart 2: {m} queries, server capacity 3 in flight (503 beyond), "
        "latency 20 ms, client limit 8\n"
    )
    print(
        f"{'client':28} {'wall s':>7} {'503s':>6} {'retries':>8} {'failed':>7} {'final limit':>12}"
    )
    for label, is_adaptive in [("fixed limit 8", False), ("adaptive limit <= 8", True)] * 2:
        r = run(srv, "unpatched", m, "8", is_adaptive)
        print(
            f"{label:28} {r['wall']:7.2f} {r['rejected_503']:6d} {r['retries']:8d} "
            f"{r['failed']:7d} {r['final_limit']!s:>12}"
        )
    print(f"\n(capacity-bound ideal: {m} x 20 ms / 3 = {m * 0.02 / 3:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--adaptive-queries", type=int, default=600)
    parser.add_argument("--part", choices=["1", "2", "both"], default="both")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from deeplake_sdk.server import local

    n, latency = args.queries, args.latency_ms / 1000
    with local(faults="none") as srv:
        if args.part != "2":
            waves(srv, n, latency, args.latency_ms)
        if args.part != "1":
            adaptive(srv, args.adaptive_queries)


if __name__ == "__main__":
    main()
