"""Load figure of the local server: N concurrent keep-alive clients x M queries, profile none.

    .venv/bin/python benchmarks/server_load.py [--clients 200] [--queries 20] [--runs 3]
        [--sql SQL] [--dialect deeplake|postgres]

The server runs in its own process (``deeplake_sdk.server.local`` on a temporary embedded
PostgreSQL); the clients are gevent greenlets in this process, each with its own keep-alive
``http.client`` connection. Reports requests/s (wall clock of the batch, connects excluded) and
server CPU seconds per request (``cpu_seconds`` delta of ``/_admin/stats`` over the requests
delta, connection accepts included; the PostgreSQL backends' CPU is shown separately).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from deeplake_sdk.server import local  # noqa: E402


def run_batch(srv, workspace, clients, queries, sql):
    u = urlsplit(srv.url)
    body_path = f"/workspaces/{workspace}/tables/query"
    go = gevent.event.Event()
    errors = []
    latencies = []

    def client(c):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        try:
            conn.connect()
            go.wait()
            for q in range(queries):
                payload = json.dumps({"query": sql, "params": [c, q]})
                t0 = time.perf_counter()
                conn.request("POST", body_path, payload, srv.headers)
                resp = conn.getresponse()
                data = resp.read()
                latencies.append(time.perf_counter() - t0)
                if resp.status != 200:
                    errors.append((resp.status, data[:200]))
        finally:
            conn.close()

    before = srv.stats()
    greenlets = [gevent.spawn(client, c) for c in range(clients)]
    gevent.sleep(0.2)  # let every client connect before the clock starts
    t0 = time.perf_counter()
    go.set()
    gevent.joinall(greenlets, raise_error=True)
    wall = time.perf_counter() - t0
    after = srv.stats()
    n = after["requests"] - before["requests"]
    cpu = after["cpu_seconds"] - before["cpu_seconds"]
    pg_cpu = None
    if (
        after.get("postgres_cpu_seconds") is not None
        and before.get("postgres_cpu_seconds") is not None
    ):
        pg_cpu = after["postgres_cpu_seconds"] - before["postgres_cpu_seconds"]
    lat = sorted(latencies)
    return {
        "requests": n,
        "errors": len(errors),
        "wall_s": wall,
        "rps": n / wall,
        "server_cpu_ms_per_req": 1000 * cpu / n,
        "postgres_cpu_ms_per_req": None if pg_cpu is None else 1000 * pg_cpu / n,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[int(len(lat) * 0.99)],
        "connections_opened": after["connections_opened"] - before["connections_opened"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sql", default="SELECT $1::int + $2::int AS s")
    parser.add_argument("--dialect", default="deeplake", choices=["deeplake", "postgres"])
    args = parser.parse_args()
    with local(faults="none", dialect=args.dialect) as srv:
        ws = "bench"
        # warm up: provision the workspace and fill the connection pool
        run_batch(srv, ws, min(args.clients, 100), 2, args.sql)
        results = []
        for i in range(args.runs):
            r = run_batch(srv, ws, args.clients, args.queries, args.sql)
            results.append(r)
            pg = r["postgres_cpu_ms_per_req"]
            print(
                f"run {i + 1}: {r['requests']} requests, {r['errors']} errors, "
                f"{r['rps']:.0f} req/s, server CPU {r['server_cpu_ms_per_req']:.3f} ms/req"
                + (f", postgres CPU {pg:.3f} ms/req" if pg is not None else "")
                + f", latency p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms, "
                f"{r['connections_opened']} connections",
                flush=True,
            )
        print(
            f"\n{args.clients} concurrent keep-alive clients x {args.queries} queries "
            f"(median of {args.runs} runs): "
            f"{statistics.median(r['rps'] for r in results):.0f} requests/s, "
            f"server CPU {statistics.median(r['server_cpu_ms_per_req'] for r in results):.3f} "
            f"ms per request, errors {sum(r['errors'] for r in results)}"
        )
        return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
