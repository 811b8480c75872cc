"""A shared server under a hostile tenant: org B's latency, memory bounds, recovery time.

    .venv/bin/python benchmarks/shared_server.py [--part fairness,memory,recovery]

``fairness``: a server with ``--pool-size 10`` (org cap: the default 3/4, i.e. 7). Org A runs
12 concurrent ``SELECT pg_sleep(6)`` (more than its share); meanwhile org B sends 50
sequential ``SELECT 1``. Prints B's median / p99 / max latency, and the same 50 with the server
idle, in one run.

``memory``: default limits (64 MiB body, 64 MiB result). Server RSS before and its peak
(``VmHWM``) after: a 100 MiB chunked request body (413), a 200 MB result (400
``result_too_large``) and a 3 M-row result (about 30 MB of JSON: answered).

``recovery``: a durable embedded PostgreSQL; 50 threads insert rows (retrying 503s);
the postmaster is SIGKILLed once a quarter of the rows are acknowledged. Prints the server's
``postgres_last_recovery_s`` (postmaster death seen -> PostgreSQL accepting connections
again), the time the clients saw 503s (first to last), and checks that every acknowledged
row is there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import requests

from deeplake_sdk.server import local
from deeplake_sdk.server.postgres import EmbeddedPostgres

ACME = {"Authorization": "Bearer tok-acme", "X-Activeloop-Org-Id": "acme"}
BETA = {"Authorization": "Bearer tok-beta", "X-Activeloop-Org-Id": "beta"}


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _q(srv, sql, headers=None, ws="bench"):
    return requests.post(
        f"{srv.url}/workspaces/{ws}/tables/query",
        json={"query": sql},
        headers=headers or srv.headers,
        timeout=120,
    )


def _latencies(srv, n=50):
    session = requests.Session()
    session.headers.update(BETA)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = session.post(f"{srv.url}/workspaces/bench/tables/query", json={"query": "SELECT 1"})
        out.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, resp.text
    session.close()
    return out


def _summary(ms):
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"median {statistics.median(ms):6.2f} ms  p99 {p99:7.2f} ms  max {ms[-1]:7.2f} ms"


def fairness() -> None:
    extra = {"tok-acme": "acme", "tok-beta": "beta"}
    with local(durable=False, extra_tokens=extra, extra_args=["--pool-size", "10"]) as srv:
        _q(srv, "SELECT 1", BETA)
        _q(srv, "SELECT 1", ACME)
        idle = _latencies(srv)
        with ThreadPoolExecutor(12) as pool:
            load = [pool.submit(_q, srv, "SELECT pg_sleep(6)", ACME) for _ in range(12)]
            while srv.stats()["db_pool"]["busy"] < 7:
                time.sleep(0.01)  # polling interval: wait until A holds its share
            loaded = _latencies(srv)
            statuses = sorted(f.result().status_code for f in load)
        cap = srv.stats()["db_pool"]["org_cap"]
    print(f"fairness: pool 10, org cap {cap}; org A: 12 x pg_sleep(6) -> statuses {statuses}")
    print(f"  org B SELECT 1, server idle:      {_summary(idle)}")
    print(f"  org B SELECT 1, A saturating:     {_summary(loaded)}")


def _chunked_body(srv, mib):
    parts = urlsplit(srv.url)
    head = (
        "POST /workspaces/bench/tables/query HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {srv.token}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    answer = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(head)

        def send():
            try:
                for _ in range(mib):
                    sock.sendall(chunk)
                sock.sendall(b"0\r\n\r\n")
            except OSError:
                pass

        sender = threading.Thread(target=send)
        sender.start()
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
        sender.join()
    return int(answer.split()[1])


def memory() -> None:
    runs = (
        ("100 MiB chunked body", lambda srv: _chunked_body(srv, 100)),
        (
            "200 MB result",
            lambda srv: _q(srv, "SELECT repeat('x', 1000) FROM generate_series(1, 200000)"),
        ),
        ("3 M-row result", lambda srv: _q(srv, "SELECT g FROM generate_series(1, 3000000) g")),
    )
    root = tempfile.mkdtemp(prefix="dlbench")
    with EmbeddedPostgres(root, durable=False) as pg:
        for name, run in runs:
            _measure(pg.dsn, name, run)
    shutil.rmtree(root, ignore_errors=True)


def _measure(dsn, name, run) -> None:
    with local(dsn=dsn) as srv:  # a fresh server each: its peak RSS is this run's
        _q(srv, "SELECT 1")
        before = _vm(srv.pid, "VmRSS")
        t0 = time.perf_counter()
        out = run(srv)
        took = time.perf_counter() - t0
        peak = _vm(srv.pid, "VmHWM")
    status = out if isinstance(out, int) else out.status_code
    size = "" if isinstance(out, int) else f", {len(out.content) / 1e6:.1f} MB answer"
    print(
        f"memory: {name:22s} -> {status}{size} in {took:.2f} s; RSS before "
        f"{before / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB "
        f"(+{(peak - before) / 2**20:.0f} MiB)"
    )


def recovery() -> None:
    with local() as srv:
        url = f"{srv.url}/workspaces/bench/tables/query"
        assert _q(srv, "CREATE TABLE t (w int, i int)").ok
        acked, unavailable = set(), []
        lock = threading.Lock()
        quarter = threading.Event()

        def worker(w):
            with requests.Session() as s:
                s.headers.update(srv.headers)
                for i in range(40):
                    body = {"query": "INSERT INTO t VALUES ($1, $2)", "params": [w, i]}
                    while True:
                        resp = s.post(url, json=body, timeout=60)
                        if resp.status_code == 200:
                            with lock:
                                acked.add((w, i))
                                if len(acked) >= 500:
                                    quarter.set()
                            break
                        assert resp.status_code == 503, resp.text
                        with lock:
                            unavailable.append(time.monotonic())
                        time.sleep(0.05)  # the client's back-off

        with ThreadPoolExecutor(50) as pool:
            futures = [pool.submit(worker, w) for w in range(50)]
            quarter.wait(120)
            killed = time.monotonic()
            os.kill(srv.stats()["postgres_pid"], signal.SIGKILL)
            for f in futures:
                f.result()
        stats = srv.stats()
        rows = {tuple(r) for r in _q(srv, "SELECT w, i FROM t").json()["rows"]}
    lost = len(acked - rows)
    window = (max(unavailable) - killed) if unavailable else 0.0
    print(
        f"recovery: postmaster SIGKILLed under 50 clients; server restarted PostgreSQL in "
        f"{stats['postgres_last_recovery_s']:.2f} s; clients saw {len(unavailable)} x 503 "
        f"until {window:.2f} s after the kill; {len(acked)} rows acknowledged, {lost} lost"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="fairness,memory,recovery")
    args = parser.parse_args()
    parts = {"fairness": fairness, "memory": memory, "recovery": recovery}
    for name in args.part.split(","):
        parts[name]()


if __name__ == "__main__":
    main()
