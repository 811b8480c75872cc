"""A separate process exercising one process model of the SDK; prints one JSON line.

Usage: python proc_worker.py MODE SCENARIO URL TOKEN ORG WORKSPACE [OPTIONS]

MODE: ``unpatched``, ``patched`` (``gevent.monkey.patch_all()`` first: ``threading.Thread``
then runs greenlets) or ``patched-native`` (patched; half the workers are real native threads,
each running its own gevent hub, the other half greenlets of the main thread's hub, all on one
client at once). SCENARIO:

* ``api`` - ``--threads`` threads share one DeeplakeApi; each runs ``--items`` rounds of
  ``query`` or ``query_many`` of statements echoing a unique value, and checks each answer;
* ``fs`` - ``--threads`` threads each open their own DeeplakeFs on one shared DeeplakeApi,
  write ``--items`` files and append ``--items`` lines to one more, close it, then read
  everything back through a new DeeplakeFs and check the exact content;
* ``cancel`` - ``query_many`` of ``--items`` slow statements (1.5 s each, 4 at a time) is
  interrupted by a ``gevent.Timeout`` of 0.6 s, or by SIGINT (``--interrupt sigint``: the
  process prints ``{"ready": true}`` and waits for the signal, and ``{"caught": true}`` as
  soon as it is interrupted); reports what is still in
  flight at the endpoint right after the interruption, and the server's request count then
  and once its last request finished;
* ``fork`` - requests are in flight in the parent (a greenlet and a native thread, each in
  the middle of a slow query) when it forks; parent and child then each run ``--items``
  queries on the same DeeplakeApi; every answer must be the process's own.

``api`` and ``fs`` repeat for ``--runs`` runs (a fresh workspace each) or until ``--budget``
seconds have passed (at least one run). Output: ``{"runs": N, "errors": [...], ...}``; a run
whose threads do not finish within ``--join`` seconds is reported as a hang, and the process
exits without waiting for them.
"""

from __future__ import annotations

import sys

MODE = sys.argv[1]
if MODE.startswith("patched"):
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
from gevent.monkey import get_original  # noqa: E402

from deeplake_sdk import DeeplakeApi, DeeplakeFs  # noqa: E402
from deeplake_sdk._coop import Completion  # noqa: E402

_allocate_lock = get_original("_thread", "allocate_lock")
_start_new_thread = get_original("_thread", "start_new_thread")


def start_threads(count: int, target: Callable[[int], None]) -> Callable[[float], list[int]]:
    """Start ``count`` threads of the mode's kind; returns ``join(timeout) -> unfinished``."""
    if MODE != "patched-native":
        threads = [threading.Thread(target=target, args=(n,), daemon=True) for n in range(count)]
        for t in threads:
            t.start()

        def join(timeout: float) -> list[int]:
            deadline = time.monotonic() + timeout
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            return [n for n, t in enumerate(threads) if t.is_alive()]

        return join
    # Even workers are native threads, each running its own hub; odd ones are greenlets of
    # the main thread's hub, which keeps running while it waits: both hubs use one client.
    done = [Completion() for _ in range(count)]

    def run(n: int) -> None:
        try:
            if n % 2 == 0:
                gevent.get_hub()  # this native thread's own hub, as a journal flusher has
            target(n)
        finally:
            done[n].set()

    for n in range(count):
        if n % 2 == 0:
            _start_new_thread(run, (n,))
        else:
            gevent.spawn(run, n)

    def join_mixed(timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        return [n for n in range(count) if not done[n].wait(max(0.0, deadline - time.monotonic()))]

    return join_mixed


def echo_round(api: DeeplakeApi, tag: str, width: int) -> list[str]:
    """One ``query`` (``width`` 1) or ``query_many`` of statements echoing unique values."""
    if width == 1:
        got = api.query("SELECT $1::text AS v", [tag])[0]["v"]
        return [] if got == tag else [f"query {tag} answered {got}"]
    values = [f"{tag}-{k}" for k in range(width)]
    rows = api.query_many([("SELECT $1::text AS v", [v]) for v in values])
    got_all = [r[0]["v"] for r in rows]
    return [] if got_all == values else [f"query_many {values} answered {got_all}"]


def api_run(opts: argparse.Namespace, workspace: str) -> list[str]:
    api = DeeplakeApi(opts.token, opts.org, workspace, opts.url)
    errors: list[str] = []

    def work(n: int) -> None:
        try:
            for i in range(opts.items):
                errors.extend(echo_round(api, f"{workspace}-{n}-{i}", 3 if i % 3 == 2 else 1))
        except Exception as exc:
            errors.append(f"thread {n}: {exc!r}")

    hung = start_threads(opts.threads, work)(opts.join)
    errors += [f"thread {n} did not finish within {opts.join}s" for n in hung]
    if api.endpoint.limiter.in_flight and not hung:
        errors.append(f"{api.endpoint.limiter.in_flight} requests left in flight")
    return errors


def fs_run(opts: argparse.Namespace, workspace: str) -> list[str]:
    api = DeeplakeApi(opts.token, opts.org, workspace, opts.url)
    # The tables are created once first, so that the run measures the threads' own work and
    # not concurrent first-time CREATE TABLE statements of one table.
    DeeplakeFs(api, cache=False).close()
    errors: list[str] = []

    def expected(n: int) -> dict[str, str]:
        files = {f"/t{n}/f{i}.md": f"thread {n} file {i}\n" for i in range(opts.items)}
        files[f"/t{n}/log.md"] = "".join(f"thread {n} line {i}\n" for i in range(opts.items))
        return files

    def work(n: int) -> None:
        try:
            fs = DeeplakeFs(api, cache=False)
            for path, text in expected(n).items():
                if not path.endswith("log.md"):
                    fs.write_text(path, text)
            for i in range(opts.items):
                fs.append_text(f"/t{n}/log.md", f"thread {n} line {i}\n")
            fs.close()
            fs = DeeplakeFs(api, cache=False)  # what the service stored
            for path, text in expected(n).items():
                got = fs.read_text(path)
                if got != text:
                    errors.append(f"thread {n}: {path} holds {got[:60]!r}, not {text[:60]!r}")
            fs.close()
        except Exception as exc:
            errors.append(f"thread {n}: {exc!r}")

    hung = start_threads(opts.threads, work)(opts.join)
    return errors + [f"thread {n} did not finish within {opts.join}s" for n in hung]


def server_inflight(opts: argparse.Namespace) -> int:
    return int(server_stats(opts)["inflight"])


def fork_scenario(opts: argparse.Namespace) -> dict[str, Any]:
    api = DeeplakeApi(opts.token, opts.org, opts.workspace, opts.url)
    api.query_many([("SELECT $1::int AS v", [i]) for i in range(8)])  # pooled connections
    answers: dict[str, tuple[str, float]] = {}

    def slow_query(tag: str) -> None:
        # 0.5 s on the server; read timeout 5 s + 2 s: an answer taken by the child would
        # show as a read timeout and a retry, 7 s or more instead of 0.5 s
        started = time.monotonic()
        value = api.query("SELECT pg_sleep(0.5), $1::text AS v", [tag], timeout=5)[0]["v"]
        answers[tag] = (value, time.monotonic() - started)

    greenlet = gevent.spawn(slow_query, "parent-greenlet")
    thread_done = _allocate_lock()
    thread_done.acquire()

    def in_thread() -> None:
        try:
            slow_query("parent-thread")
        finally:
            thread_done.release()

    _start_new_thread(in_thread, ())
    deadline = time.monotonic() + 30
    while server_inflight(opts) < 2 and time.monotonic() < deadline:
        gevent.sleep(0.01)
    in_flight_at_fork = server_inflight(opts)

    def queries(who: str, at_least: float) -> list[str]:
        """``--items`` queries, and more until ``at_least`` seconds have passed."""
        bad = []
        until = time.monotonic() + at_least
        i = 0
        while i < opts.items or time.monotonic() < until:
            bad.extend(echo_round(api, f"{who}-{i}", 4 if i % 4 == 3 else 1))
            i += 1
        return bad

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read)
            # busy past the parent's in-flight answers: an inherited greenlet would race for them
            bad = queries("child", 1.5)
            # The child's copy of the in-flight greenlet: its request's answer went to the
            # parent; here it fails as a lost answer and is re-sent (a read) by the child.
            greenlet.join(30)
            value = answers.get("parent-greenlet", (None, 0.0))[0]
            if value != "parent-greenlet":
                bad.append(f"child: its copy of the in-flight greenlet answered {value!r}")
            if api.endpoint.limiter.in_flight != 0:  # its own slots, all given back
                bad.append(f"child: {api.endpoint.limiter.in_flight} slots still taken")
            os.write(write, json.dumps(bad).encode())
            code = 0
        except BaseException as exc:  # reported to the parent, which fails the test
            os.write(write, json.dumps([f"child: {exc!r}"]).encode())
        finally:
            os._exit(code)
    os.close(write)
    errors = queries("parent", 0.0)
    greenlet.join(30)
    if not thread_done.acquire(True, 30):
        errors.append("the parent's in-flight thread did not finish")
    if api.endpoint.limiter.in_flight != 0:
        errors.append(f"parent: {api.endpoint.limiter.in_flight} slots still taken")
    for tag in ("parent-greenlet", "parent-thread"):
        value, seconds = answers.get(tag, (None, 0.0))
        if value != tag or seconds > 5:
            errors.append(f"{tag} answered {value!r} after {seconds:.1f}s")
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    errors += json.loads(b"".join(chunks) or b'["child: no report"]')
    deadline = time.monotonic() + 30
    while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if waited[0] == 0:
        errors.append("the child did not exit")
    elif os.waitstatus_to_exitcode(waited[1]) != 0:
        errors.append(f"the child exited with {os.waitstatus_to_exitcode(waited[1])}")
    return {"runs": 1, "errors": errors, "in_flight_at_fork": in_flight_at_fork}


def server_stats(opts: argparse.Namespace) -> dict[str, Any]:
    return requests.get(
        f"{opts.url}/_admin/stats", headers={"Authorization": f"Bearer {opts.token}"}, timeout=10
    ).json()


def cancel_scenario(opts: argparse.Namespace) -> dict[str, Any]:
    """``query_many`` of slow statements, interrupted by a ``gevent.Timeout`` or SIGINT."""
    api = DeeplakeApi(opts.token, opts.org, opts.workspace, opts.url, max_concurrency=4)
    statements = [("SELECT pg_sleep(1.5), $1::int AS v", [i]) for i in range(opts.items)]
    out: dict[str, Any] = {"runs": 1, "errors": []}
    try:
        if opts.interrupt == "timeout":
            with gevent.Timeout(0.6):
                api.query_many(statements)
        else:  # the test sends SIGINT once the first statements are running
            print(json.dumps({"ready": True}), flush=True)
            api.query_many(statements)
        out["errors"].append("query_many was not interrupted")
    except (gevent.Timeout, KeyboardInterrupt) as exc:
        if opts.interrupt == "sigint":
            print(json.dumps({"caught": True}), flush=True)
        out["interrupted"] = type(exc).__name__
        out["in_flight"] = api.endpoint.limiter.in_flight
        out["waiting"] = getattr(api.endpoint.limiter, "waiting", None)
        out["requests_at_interrupt"] = server_stats(opts)["requests"]
    deadline = time.monotonic() + 30
    while server_stats(opts)["inflight"] and time.monotonic() < deadline:
        time.sleep(0.01)
    out["requests_later"] = server_stats(opts)["requests"]
    out["greenlets_alive"] = sum(
        1 for g in gc.get_objects() if isinstance(g, gevent.Greenlet) and not g.dead
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("scenario", choices=["api", "fs", "fork", "cancel"])
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("org")
    parser.add_argument("workspace")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--budget", type=float, default=None, help="seconds; stop starting runs")
    parser.add_argument("--join", type=float, default=60.0, help="seconds a run may take")
    parser.add_argument("--interrupt", choices=["timeout", "sigint"], default="timeout")
    opts = parser.parse_args()
    started = time.monotonic()
    if opts.scenario == "fork":
        out = fork_scenario(opts)
    elif opts.scenario == "cancel":
        out = cancel_scenario(opts)
    else:
        run = api_run if opts.scenario == "api" else fs_run
        out = {"runs": 0, "errors": [], "seconds": []}
        for n in range(opts.runs):
            t0 = time.monotonic()
            errors = run(opts, f"{opts.workspace}_{n}")
            out["runs"] += 1
            out["seconds"].append(round(time.monotonic() - t0, 3))
            out["errors"] += [f"run {n}: {e}" for e in errors]
            if errors or (opts.budget and time.monotonic() - started > opts.budget):
                break
    out["elapsed"] = round(time.monotonic() - started, 3)
    print(json.dumps(out), flush=True)
    os._exit(0)  # a hung thread must not keep the process alive


if __name__ == "__main__":
    main()
