"""What durability costs: INSERTs/s on a durable embedded PostgreSQL vs the unsafe settings.

    .venv/bin/python benchmarks/durable_storage.py [--inserts 2000] [--clients 16] [--rounds 3]

One run, both modes side by side on fresh temporary data dirs: durable (the default:
``fsync``, ``full_page_writes``, ``synchronous_commit`` on) and ``durable=False`` (all three
off). Measurements alternate between the modes, ``--rounds`` times, and the medians are kept:

- ``sql``: single-row autocommit INSERTs straight to PostgreSQL (psycopg, one connection):
  the storage cost alone;
- ``http 1`` / ``http N``: single-row INSERTs through the local server from one keep-alive
  client and from ``--clients`` concurrent ones (what an SDK user sees);
- ``crash``: 200 INSERTs acknowledged, then the server, postmaster and backends SIGKILLed
  right after the last 200; the rows missing after restart.

Prints each figure and the unsafe/durable ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import requests

from deeplake_sdk.server import LocalServer, local
from deeplake_sdk.server.postgres import EmbeddedPostgres


def _session(srv):
    s = requests.Session()
    s.headers.update(srv.headers)
    return s


def _insert_rate(srv, workspace, inserts, clients):
    url = f"{srv.url}/workspaces/{workspace}/tables/query"
    per_client = inserts // clients

    def run(c):
        with _session(srv) as s:
            for i in range(per_client):
                body = {"query": "INSERT INTO t VALUES ($1, $2)", "params": [c, i]}
                resp = s.post(url, json=body, timeout=60)
                resp.raise_for_status()

    with _session(srv) as s:
        s.post(url, json={"query": "CREATE TABLE t (c int, i int)"}, timeout=60).raise_for_status()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(run, range(clients)))
    return per_client * clients / (time.perf_counter() - t0)


def _crash_loss(durable, n=200):
    with tempfile.TemporaryDirectory(prefix="dlbench") as tmp:
        srv = LocalServer.start(data=os.path.join(tmp, "d"), durable=durable)
        url = f"{srv.url}/workspaces/w/tables/query"
        try:
            with _session(srv) as s:
                s.post(url, json={"query": "CREATE TABLE t (n int)"}, timeout=60)
                for i in range(n):
                    body = {"query": "INSERT INTO t VALUES ($1)", "params": [i]}
                    s.post(url, json=body, timeout=60).raise_for_status()
            tree = [srv.pid, *(p.pid for p in psutil.Process(srv.pid).children(recursive=True))]
            for pid in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            psutil.wait_procs([p for p in map(_proc, tree) if p], timeout=30)
        finally:
            srv.stop()
        with local(data=os.path.join(tmp, "d"), durable=False) as again, _session(again) as s:
            body = {"query": "SELECT count(*) FROM t"}
            kept = s.post(f"{again.url}/workspaces/w/tables/query", json=body, timeout=60)
            return n - kept.json()["rows"][0][0]


def _proc(pid):
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _sql_rate(dsn, inserts):
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench (n int)")
        t0 = time.perf_counter()
        for i in range(inserts):
            conn.execute("INSERT INTO bench VALUES (%s)", [i])
        return inserts / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inserts", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = {mode: {"sql": [], "http 1": [], f"http {args.clients}": []} for mode in MODES}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="dlbench"))
        pgs = {
            m: stack.enter_context(EmbeddedPostgres(os.path.join(tmp, m), durable=d))
            for m, d in MODES.items()
        }
        servers = {m: stack.enter_context(local(durable=d)) for m, d in MODES.items()}
        for r in range(args.rounds):
            for mode in MODES:
                figures[mode]["sql"].append(_sql_rate(pgs[mode].dsn, args.inserts))
                one = _insert_rate(servers[mode], f"one{r}", args.inserts // 4, 1)
                many = _insert_rate(servers[mode], f"many{r}", args.inserts, args.clients)
                figures[mode]["http 1"].append(one)
                figures[mode][f"http {args.clients}"].append(many)
    lost = {mode: _crash_loss(durable) for mode, durable in MODES.items()}
    for mode in MODES:
        rates = "   ".join(
            f"{name} {statistics.median(v):7.0f}/s" for name, v in figures[mode].items()
        )
        print(f"{mode:8s} {rates}   crash: {lost[mode]}/200 acknowledged rows lost")
    ratios = ", ".join(
        f"{name} x{statistics.median(figures['unsafe'][name]) / statistics.median(v):.2f}"
        for name, v in figures["durable"].items()
    )
    print(f"unsafe/durable INSERTs/s (median of {args.rounds} alternating rounds): {ratios}")


MODES = {"durable": True, "unsafe": False}

if __name__ == "__main__":
    main()
