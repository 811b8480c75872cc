"""Flush of 100 new files at 50 ms server latency: parallel multi-row flush vs sequential.

Run: .venv/bin/python benchmarks/flush_parallel.py [--files 100] [--latency-ms 50] [--repeat 3]

Prints wall time and round trips (requests seen by the server) of each strategy and their
ratios, all measured in this one run against the embedded local server.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from deeplake_sdk import DeeplakeApi, DeeplakeFs
from deeplake_sdk.server import local

STRATEGIES = {
    "sequential (one statement per file, one at a time)": {"parallel": False, "batch_rows": 1},
    "parallel, one statement per file": {"parallel": True, "batch_rows": 1},
    "parallel, multi-row statements (default)": {"parallel": True},
}


def flush_once(srv, files: int, options: dict) -> tuple[float, int]:
    api = DeeplakeApi(srv.token, srv.org, f"flush_{uuid.uuid4().hex[:8]}", srv.url)
    with DeeplakeFs.open(api, cache=False, max_pending=files + 1, **options) as fs:
        for i in range(files):
            fs.write_text(f"/bench/{i:03d}.md", f"file {i}\n" * 20)
        before = srv.stats()["requests"]
        start = time.perf_counter()
        fs.flush()
        wall = time.perf_counter() - start
        trips = srv.stats()["requests"] - before
    return wall, trips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with local(latency_fixed_ms=args.latency_ms) as srv:
        results = {}
        for name, options in STRATEGIES.items():
            runs = [flush_once(srv, args.files, options) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            trips = runs[-1][1]
            results[name] = (wall, trips)
            print(f"{name:52s} wall {wall * 1000:8.1f} ms   round trips {trips:4d}")
        base_wall, base_trips = results[next(iter(STRATEGIES))]
        print()
        for name, (wall, trips) in list(results.items())[1:]:
            print(
                f"{name:52s} {base_wall / wall:5.1f}x faster, "
                f"{base_trips / max(trips, 1):5.1f}x fewer round trips than sequential"
            )


if __name__ == "__main__":
    main()
