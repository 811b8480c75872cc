"""Acceptance: 200 concurrent keep-alive clients x 20 queries on profile none all succeed.

The throughput figure is measured by ``benchmarks/server_load.py``; this test checks success,
keep-alive reuse and real concurrency.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

CLIENTS = 200
QUERIES = 20


@pytest.mark.slow
def test_200_concurrent_keepalive_clients(srv, raw):
    raw.rows("CREATE TABLE hits (c int, q int); SELECT 1")
    srv.reset_stats()
    start = threading.Barrier(CLIENTS)
    url = raw.url(f"/workspaces/{raw.workspace}/tables/query")

    def client(c):
        statuses = []
        with requests.Session() as s:
            s.headers.update(srv.headers)
            start.wait(60)
            for q in range(QUERIES):
                sql = "INSERT INTO hits VALUES ($1, $2)" if q % 2 else "SELECT $1::int + $2::int"
                r = s.post(url, json={"query": sql, "params": [c, q]}, timeout=120)
                statuses.append(r.status_code)
                if r.status_code == 200 and q % 2 == 0:
                    assert r.json()["rows"] == [[c + q]]
        return statuses

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    flat = [s for r in results for s in r]
    assert flat == [200] * (CLIENTS * QUERIES)
    stats = srv.stats()
    assert stats["requests"] == CLIENTS * QUERIES
    assert stats["status_counts"] == {"200": CLIENTS * QUERIES}
    # one keep-alive connection per client (+ the admin stats call itself)
    assert CLIENTS <= stats["connections_opened"] <= CLIENTS + 2
    assert stats["inflight_peak"] > 1
    assert raw.rows("SELECT count(*) FROM hits") == [[CLIENTS * QUERIES // 2]]
