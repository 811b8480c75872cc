"""Every process model against the real local server: fork, native threads, cancellation.

Each model runs in a separate process (``proc_worker.py``), patched with
``gevent.monkey.patch_all()`` or not, with bounded waits: a hang is reported by the worker
(``--join``) or ends the subprocess (``timeout``), a crash shows as its exit status. The
thread runs repeat within a time budget here; ``benchmarks/soak_process_models.py`` runs
the full 20-run soak. Cancellation of ``query_many`` is also checked in this process.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import gevent
import pytest
from waiting import poll

from deeplake_sdk import DeeplakeApi

WORKER = str(Path(__file__).with_name("proc_worker.py"))
ROOT = str(Path(__file__).resolve().parents[1])
MODES = ["unpatched", "patched", "patched-native"]
#: Seconds of repeated runs per thread test (the soak script runs 20 runs each).
BUDGET = 8.0


def worker_command(srv, workspace, mode, scenario, *args):
    return [
        sys.executable,
        WORKER,
        mode,
        scenario,
        srv.url,
        srv.token,
        srv.org,
        workspace,
        *map(str, args),
    ]


def worker_env():
    return {**os.environ, "PYTHONPATH": ROOT}


def run_worker(srv, workspace, mode, scenario, *args, timeout=180):
    proc = subprocess.run(
        worker_command(srv, workspace, mode, scenario, *args),
        capture_output=True,
        text=True,
        env=worker_env(),
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"worker exited with {proc.returncode}:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- fork ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_fork_parent_and_child_each_get_their_own_answers(srv, workspace, mode):
    out = run_worker(srv, workspace, mode, "fork", "--items", 200)
    assert out["in_flight_at_fork"] >= 2  # a greenlet and a thread were mid-request
    assert out["errors"] == []


# -- threads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_eight_threads_share_one_api(srv, workspace, mode):
    out = run_worker(srv, workspace, mode, "api", "--threads", 8, "--items", 60, "--budget", BUDGET)
    assert out["errors"] == [] and out["runs"] >= 1


@pytest.mark.parametrize("mode", MODES)
def test_eight_threads_each_with_its_own_filesystem_on_one_api(srv, workspace, mode):
    out = run_worker(srv, workspace, mode, "fs", "--threads", 8, "--items", 100, "--budget", BUDGET)
    assert out["errors"] == [] and out["runs"] >= 1


def test_requests_sent_is_exact_across_threads(srv, workspace):
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url, max_concurrency=3)
    api.query("SELECT 1")
    before = api.endpoint.requests_sent
    srv.reset_stats()

    def work():
        gevent.joinall(
            [gevent.spawn(lambda: [api.query("SELECT 1") for _ in range(25)]) for _ in range(2)],
            raise_error=True,
        )

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert api.endpoint.requests_sent - before == 400 == srv.stats()["requests"]
    assert api.endpoint.limiter.in_flight == 0 and api.endpoint.limiter.peak <= 3


# -- cancellation ----------------------------------------------------------------------------


def test_timeout_around_query_many_leaves_nothing_running(srv, api):
    api = DeeplakeApi(srv.token, srv.org, api.workspace_id, srv.url, max_concurrency=4)
    api.query("SELECT 1")
    srv.reset_stats()
    statements = [("SELECT pg_sleep(0.4), $1::int AS v", [i]) for i in range(20)]
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.6):
        api.query_many(statements)
    # every child was killed and waited for: no request in flight, nobody queued ...
    assert api.endpoint.limiter.in_flight == 0 and api.endpoint.limiter.waiting == 0
    assert not [g for g in gc.get_objects() if isinstance(g, gevent.Greenlet) and not g.dead]
    started = srv.stats()["requests"]
    assert 4 <= started < 20
    # ... and once the server is done with what it had, it saw no statement start since
    poll(lambda: srv.stats()["inflight"] == 0, "the server to finish")
    assert srv.stats()["requests"] == started


@pytest.mark.parametrize("mode", ["unpatched", "patched"])
def test_timeout_around_query_many_in_a_separate_process(srv, workspace, mode):
    srv.reset_stats()
    out = run_worker(srv, workspace, mode, "cancel", "--items", 20)
    assert out["interrupted"] == "Timeout" and out["errors"] == []
    assert out["in_flight"] == 0 and out["waiting"] == 0 and out["greenlets_alive"] == 0
    assert out["requests_later"] == out["requests_at_interrupt"] < 20


def interrupt(proc, tries=3, wait=10.0):
    """Send SIGINT until the worker says it caught it (at most ``tries`` times).

    CPython runs a signal's handler between two bytecodes of the main thread, wherever that
    is: when it happens inside a finalizer (``__del__``, a weakref callback), the
    KeyboardInterrupt is printed as "Exception ignored" and lost. A second signal is sent only
    after ``wait`` seconds without an answer, long after the first one would have been caught.
    """
    for _ in range(tries):
        proc.send_signal(signal.SIGINT)
        if select.select([proc.stdout], [], [], wait)[0]:
            return json.loads(proc.stdout.readline())
    return None


def test_sigint_during_query_many_kills_and_waits_for_every_child(srv, workspace):
    srv.reset_stats()
    command = worker_command(srv, workspace, "unpatched", "cancel", "--items", 80)
    proc = subprocess.Popen(
        [*command, "--interrupt", "sigint"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
    )
    try:
        assert json.loads(proc.stdout.readline()) == {"ready": True}
        poll(lambda: srv.stats()["inflight"] >= 4, "the first statements to run")
        caught = interrupt(proc)
        if caught is None:  # what the worker said instead, should it ever happen
            proc.kill()
            caught = proc.communicate(timeout=60)[1][-4000:]
        assert caught == {"caught": True}
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, stderr[-4000:]
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["interrupted"] == "KeyboardInterrupt" and out["errors"] == []
    assert out["in_flight"] == 0 and out["waiting"] == 0 and out["greenlets_alive"] == 0
    assert out["requests_later"] == out["requests_at_interrupt"] < 20
