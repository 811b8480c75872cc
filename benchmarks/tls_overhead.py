"""Per-query cost of https: a new TLS connection per request vs the SDK's pooled connections.

    .venv/bin/python benchmarks/tls_overhead.py [--queries 300]

One local server with ``--tls-cert/--tls-key`` (a throwaway CA and certificate made with the
``openssl`` command). Times ``--queries`` sequential ``SELECT 1`` three ways, in one run:

- ``sdk pooled``: :class:`deeplake_sdk.DeeplakeApi` (keep-alive connections, one handshake);
- ``new TLS connection``: ``requests.post`` without a session (a TCP connect and a TLS
  handshake per query);
- ``plain http pooled``: the SDK against a second server without TLS (the floor).

Prints the median and mean milliseconds per query and the ratio new-connection / pooled.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import requests

from deeplake_sdk import DeeplakeApi
from deeplake_sdk.server import local
from deeplake_sdk.server.tls import make_test_certs


def _time(fn, n: int) -> list[float]:
    fn()  # warm up (workspace setup, first connection)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dltls"))
    ca, cert, key = make_test_certs(root)
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    results: dict[str, list[float]] = {}
    with local(tls=(cert, key), ca_file=ca, durable=False) as srv:
        api = DeeplakeApi(srv.token, srv.org, "bench", srv.url)
        results["sdk pooled (https)"] = _time(lambda: api.query("SELECT 1"), args.queries)
        api.close()
        url = f"{srv.url}/workspaces/bench/tables/query"

        def fresh() -> None:
            resp = requests.post(
                url, json={"query": "SELECT 1"}, headers=srv.headers, verify=ca, timeout=30
            )
            resp.raise_for_status()

        results["new TLS connection per query"] = _time(fresh, args.queries)
    with local(durable=False) as plain:
        api = DeeplakeApi(plain.token, plain.org, "bench", plain.url)
        results["sdk pooled (plain http)"] = _time(lambda: api.query("SELECT 1"), args.queries)
        api.close()
    print(f"{args.queries} sequential SELECT 1 per way")
    for name, ms in results.items():
        median, mean = statistics.median(ms), statistics.mean(ms)
        print(f"  {name:32s} median {median:7.2f} ms  mean {mean:7.2f} ms")
    ratio = statistics.median(results["new TLS connection per query"]) / statistics.median(
        results["sdk pooled (https)"]
    )
    print(f"new TLS connection / pooled (medians): {ratio:.1f}x")


if __name__ == "__main__":
    main()
