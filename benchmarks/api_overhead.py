"""Per-query overhead and throughput: DeeplakeApi vs a plain urllib client.

The urllib client opens one connection per request, as the official Python client does. Both
talk to the same local server (fault profile ``none``) and run ``SELECT 1``. Three numbers are
compared:

* sequential latency (one caller, one query at a time);
* throughput with 5 concurrent callers (urllib: 5 threads; DeeplakeApi: ``query_many`` at
  ``max_concurrency=5``), once without and once with ``gevent.monkey.patch_all()``;
* connections opened per query, from the server's counters.

A raw keep-alive ``http.client`` loop is the floor (server + loopback cost only).

Usage::

    python benchmarks/api_overhead.py [--queries 2000] [--concurrency 5] [--rounds 3]

It starts its own embedded server (PostgreSQL included) and stops it at the end. Each client
runs in a fresh subprocess so that patching gevent in one cannot affect the other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CLIENT = r"""
import sys
mode = sys.argv[1]
if mode.endswith("patched") and not mode.endswith("unpatched"):
    from gevent import monkey
    monkey.patch_all()
import http.client, json, threading, time, urllib.request
from urllib.parse import urlsplit
url, token, org, ws, n, conc = sys.argv[2:8]
n, conc = int(n), int(conc)
path = f"/workspaces/{ws}/tables/query"
headers = {"Authorization": f"Bearer {token}", "X-Activeloop-Org-Id": org,
           "Content-Type": "application/json"}
body = json.dumps({"query": "SELECT 1"}).encode()


def urllib_query():
    req = urllib.request.Request(url + path, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


lat = []
cpu0 = time.process_time()
if mode == "floor":
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    for _ in range(n):
        t = time.perf_counter()
        conn.request("POST", path, body, headers)
        json.loads(conn.getresponse().read())
        lat.append(time.perf_counter() - t)
    wall = sum(lat)
elif mode == "urllib-seq":
    for _ in range(n):
        t = time.perf_counter()
        urllib_query()
        lat.append(time.perf_counter() - t)
    wall = sum(lat)
elif mode == "urllib-par":
    def worker(k):
        for _ in range(k):
            urllib_query()
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n // conc,)) for _ in range(conc)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - started
else:
    from deeplake_sdk import DeeplakeApi
    api = DeeplakeApi(token, org, ws, url, max_concurrency=conc)
    api.query("SELECT 1")  # warm-up: one connection, imports
    if mode == "sdk-seq":
        for _ in range(n):
            t = time.perf_counter()
            api.query("SELECT 1")
            lat.append(time.perf_counter() - t)
        wall = sum(lat)
    else:
        started = time.perf_counter()
        api.query_many(["SELECT 1"] * n)
        wall = time.perf_counter() - started
print(json.dumps({"wall": wall, "lat": lat, "cpu": time.process_time() - cpu0}))
"""


def run_client(srv, workspace: str, mode: str, n: int, conc: int) -> dict:
    srv.reset_stats()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT,
            mode,
            srv.url,
            srv.token,
            srv.org,
            workspace,
            str(n),
            str(conc),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    result = json.loads(out.stdout)
    stats = srv.stats()
    result["connections"] = stats["connections_opened"] - 1  # minus the stats call's own
    result["requests"] = stats["requests"]
    return result


def summarise(result: dict, n: int) -> dict:
    lat = sorted(result["lat"]) or [result["wall"] / n]
    return {
        "mean_ms": statistics.fmean(lat) * 1000,
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "qps": n / result["wall"],
        "cpu_ms": result["cpu"] / n * 1000,
        "conns": result["connections"],
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput (the machine may be shared and noisy)."""
    return sorted(runs, key=lambda r: r["qps"])[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=2000, help="queries per client run")
    parser.add_argument("--concurrency", type=int, default=5, help="concurrent callers")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds (clients interleaved); the median round is reported",
    )
    args = parser.parse_args()
    n, conc = args.queries, args.concurrency
    sys.path.insert(0, str(ROOT))
    from deeplake_sdk.server import local

    with local(faults="none") as srv:
        workspace = "bench_overhead"
        plan = [
            ("floor: http.client keep-alive, sequential", "floor", 1),
            ("urllib, new connection per query, sequential", "urllib-seq", 1),
            ("DeeplakeApi.query, sequential", "sdk-seq", conc),
            (f"urllib, {conc} threads", "urllib-par", conc),
            (f"DeeplakeApi.query_many, limit {conc}, unpatched", "sdk-par-unpatched", conc),
            (f"DeeplakeApi.query_many, limit {conc}, patch_all", "sdk-par-patched", conc),
        ]
        runs: dict[str, list[dict]] = {mode: [] for _, mode, _ in plan}
        for round_no in range(args.rounds):
            for _, mode, c in plan:
                runs[mode].append(summarise(run_client(srv, workspace, mode, n, c), n))
            print(f"  round {round_no + 1}/{args.rounds} done", file=sys.stderr)
        results = {mode: median_run(runs[mode]) for mode in runs}
        rows = [(label, results[mode]) for label, mode, _ in plan]

    print(
        f"\n{n} x 'SELECT 1' against the local server (profile none), "
        f"{os.cpu_count()} CPUs, median of {args.rounds} rounds\n"
    )
    print(
        f"{'client':52} {'mean ms':>8} {'p50 ms':>7} {'p99 ms':>7} {'qps':>7} "
        f"{'cpu ms/q':>9} {'conns':>6}"
    )
    for label, r in rows:
        print(
            f"{label:52} {r['mean_ms']:8.2f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
            f"{r['qps']:7.0f} {r['cpu_ms']:9.3f} {r['conns']:6d}"
        )
    floor = results["floor"]["mean_ms"]
    seq_sdk, seq_url = results["sdk-seq"]["mean_ms"], results["urllib-seq"]["mean_ms"]
    cpu_sdk, cpu_url = results["sdk-seq"]["cpu_ms"], results["urllib-seq"]["cpu_ms"]
    print(
        f"\nclient CPU per sequential query: DeeplakeApi {cpu_sdk:.3f} ms vs urllib "
        f"{cpu_url:.3f} ms (ratio {cpu_sdk / cpu_url:.2f})"
    )
    print(
        f"sequential: DeeplakeApi {seq_sdk:.2f} ms vs urllib {seq_url:.2f} ms per query "
        f"(ratio {seq_sdk / seq_url:.2f}); overhead above the keep-alive floor: "
        f"DeeplakeApi {seq_sdk - floor:+.2f} ms, urllib {seq_url - floor:+.2f} ms"
    )
    for mode in ("sdk-par-unpatched", "sdk-par-patched"):
        ratio = results[mode]["qps"] / results["urllib-par"]["qps"]
        print(
            f"throughput at {conc} concurrent: {mode} {results[mode]['qps']:.0f} qps vs "
            f"urllib {results['urllib-par']['qps']:.0f} qps (ratio {ratio:.2f})"
        )


if __name__ == "__main__":
    main()
