"""``api.stats``: requests sent, retries and the concurrency limit, exact across threads."""

from __future__ import annotations

import gc
import threading
import weakref

import gevent

from deeplake_sdk import DeeplakeApi, RetryPolicy
from deeplake_sdk.stats import StatsSnapshot

FAST = RetryPolicy(retries=3, backoff_base=0.01, backoff_max=0.05, jitter=0.0)


def test_requests_and_retries_match_the_server(srv, workspace):
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url, retries=FAST, max_concurrency=4)
    api.query("SELECT 1")
    before = api.stats.snapshot()
    srv.set_faults(profile="none", p_503=1.0, max_faults=2, retry_after_s=0)
    srv.reset_stats()
    api.query("SELECT 2")
    delta = api.stats.snapshot() - before
    assert delta.requests_sent == 3 == srv.stats()["requests"]
    assert delta.retries == 2 == api.stats.retries
    assert [e.status for e in api.stats.retry_events] == [503, 503]
    assert api.retry_events == api.stats.retry_events
    assert delta.max_limit == 4 and delta.limit is not None and 1 <= delta.limit <= 4
    assert delta.in_flight == 0


def test_counts_are_exact_from_many_threads_and_greenlets(srv, workspace):
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url, max_concurrency=3, adaptive=False)
    api.query("SELECT 1")
    before = api.stats.snapshot()
    srv.reset_stats()

    def work() -> None:
        gevent.joinall(
            [gevent.spawn(lambda: [api.query("SELECT 1") for _ in range(20)]) for _ in range(2)],
            raise_error=True,
        )

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    delta = api.stats.snapshot() - before
    assert delta == StatsSnapshot(240, 0, 3, 3, 0)
    assert srv.stats()["requests"] == 240


def test_an_unbounded_client_reports_no_limit(srv, workspace):
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url, max_concurrency=None, adaptive=False)
    assert (api.stats.limit, api.stats.max_limit) == (None, None)
    assert "requests_sent=" in repr(api.stats)


def test_a_dropped_client_is_freed_at_once_its_statistics_hold_no_reference_to_it(srv, workspace):
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    api.query("SELECT 1")
    assert api.stats.snapshot().requests_sent >= 1
    gone = weakref.ref(api)
    gc.disable()  # freed by reference counting, not by a collection of cycles
    try:
        del api
        assert gone() is None
    finally:
        gc.enable()
