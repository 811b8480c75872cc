"""PostgreSQL connections held under the ``service`` profile (writes wait for their read lag).

    .venv/bin/python benchmarks/service_pool.py [--clients 50] [--requests 40] [--seed 7]
        [--pool-size N]

One local server with ``faults="service"`` (read lag 200 ms: every write keeps its connection
until it commits) and the default pool (or ``--pool-size``). ``--clients`` concurrent keep-alive
clients (threads) each send ``--requests`` requests to their own table: 2 INSERTs, 1 UPDATE
and 1 SELECT in turn, no retries. Prints the answers by status, what was injected, and the
pool figures of ``/_admin/stats``: connections busy at the peak, writes pending at the peak,
commits done early because the pool ran out, and the same run with the read lag off.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from deeplake_sdk.server import local


def _post(session, url, body):
    """The answer's status, or "reset" for a dropped connection (an injected fault)."""
    try:
        return session.post(url, json=body, timeout=120).status_code
    except requests.ConnectionError:
        return "reset"


def _run(srv, clients, requests_per_client):
    statuses: Counter[int | str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(c):
        url = f"{srv.url}/workspaces/bench/tables/query"
        with requests.Session() as s:
            s.headers.update(srv.headers)
            create = {"query": f"CREATE TABLE IF NOT EXISTS t{c} (id text, n int)"}
            for _ in range(600):  # faults and limits may refuse it: until it is there
                if _post(s, url, create) == 200:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"table t{c} could not be created")
            start.wait(120)
            for i in range(requests_per_client):
                kind = i % 4
                if kind in (0, 1):
                    body = {"query": f"INSERT INTO t{c} VALUES ($1, $2)", "params": [str(i), i]}
                elif kind == 2:
                    body = {"query": f"UPDATE t{c} SET n = n + 1 WHERE id = $1", "params": ["0"]}
                else:
                    body = {"query": f"SELECT count(*) FROM t{c}"}
                status = _post(s, url, body)
                with lock:
                    statuses[status] += 1

    srv.reset_stats()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, range(clients)))
    return statuses, srv.stats()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pool-size", type=int, default=None, help="server --pool-size")
    args = parser.parse_args()
    extra = [] if args.pool_size is None else ["--pool-size", str(args.pool_size)]
    with local(faults="service", seed=args.seed, durable=False, extra_args=extra) as srv:
        for label, lag in (("service", None), ("service, read lag off", 0)):
            if lag is not None:
                srv.set_faults(read_lag_ms=lag)
            statuses, stats = _run(srv, args.clients, args.requests)
            pool = stats["db_pool"]
            pending = pool["pending_commits"]
            injected = {k: v for k, v in stats["injected"].items() if v}
            print(f"{label}: {args.clients} clients x {args.requests} requests")
            answers = dict(sorted(statuses.items(), key=str))
            print(f"  answers {answers}; injected {injected}")
            print(
                f"  pool of {pool['size']}: busy peak {pool['busy_peak']}, open {pool['open']}, "
                f"exhausted {pool['exhausted']} times; pending commits peak "
                f"{pending['pending_peak']}, deferred {pending['deferred']}, committed early "
                f"{pending['committed_early']}, failed {pending['commit_failed']}; "
                f"in flight peak {stats['inflight_peak']}"
            )


if __name__ == "__main__":
    main()
