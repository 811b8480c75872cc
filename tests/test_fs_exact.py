"""Exactness of DeeplakeFs under faults and across processes (verified by direct SQL)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import gevent
import gevent.pool
import pytest

from deeplake_sdk import DeeplakeApi, DeeplakeFs, RetryPolicy, SessionLog

WORKER = str(Path(__file__).with_name("fs_worker.py"))
FAST_RETRY = RetryPolicy(retries=6, backoff_base=0.01, backoff_max=0.05, jitter=0.0)


def run_worker(srv, workspace, cache_dir, *args) -> dict:
    out = subprocess.run(
        [sys.executable, WORKER, srv.url, srv.token, srv.org, workspace, str(cache_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def path_counts(api, table="memory") -> dict[str, int]:
    rows = api.query(f'SELECT path, COUNT(*) AS n FROM "{table}" GROUP BY path')
    return {r["path"]: r["n"] for r in rows}


def test_cross_process_append_then_warm_cache_read(srv, workspace, api, tmp_path):
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/shared.md", "v1\n")
    cache_dir = tmp_path / "b-cache"
    assert run_worker(srv, workspace, cache_dir, "read", "/shared.md")["text"] == "v1\n"
    run_worker(srv, workspace, tmp_path / "a-cache", "append", "/shared.md", "v2\n")
    fresh = run_worker(srv, workspace, cache_dir, "read", "/shared.md")
    assert fresh["text"] == "v1\nv2\n"  # the warm cache held v1: its version no longer matches
    assert fresh["queries"] == 1
    cached = run_worker(srv, workspace, cache_dir, "read", "/shared.md")
    assert cached == {"text": "v1\nv2\n", "queries": 0}  # nothing changed: served by the cache


def test_two_processes_creating_the_same_paths_leave_one_row_each(srv, workspace, api, tmp_path):
    with DeeplakeFs(api, cache=False):
        pass  # tables exist before the race
    srv.set_faults(latency_fixed_ms=20)
    go = tmp_path / "go"
    targets = [f"/race/{i}.md" for i in range(20)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                WORKER,
                srv.url,
                srv.token,
                srv.org,
                workspace,
                "-",
                "write_many",
                str(go),
                content,
                *targets,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for content in ("from A", "from B")
    ]
    go.touch()
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and json.loads(out)["ok"]
    counts = path_counts(api)
    assert counts == {p: 1 for p in targets}
    texts = {r["summary"] for r in api.query("SELECT summary FROM memory")}
    assert texts <= {"from A", "from B"}


def test_flush_settles_a_duplicate_left_by_a_concurrent_create(api):
    with DeeplakeFs(api, cache=False):
        pass
    # Two rows of one path, as two writers racing to create it can leave them.
    for row_id, text in (("0" * 32, "theirs"), ("f" * 32, "late twin")):
        api.execute(
            "INSERT INTO memory (id, path, filename, summary, size_bytes) "
            "VALUES ($1, '/dup.md', 'dup.md', $2, 1)",
            [row_id, text],
            idempotent=True,
        )
    with DeeplakeFs(api, cache=False) as fs:
        fs.tree.remove("/dup.md")  # this process believes it creates the file
        fs.write_text("/dup.md", "ours")
    rows = api.query("SELECT id, summary FROM memory WHERE path = '/dup.md'")
    assert rows == [{"id": "0" * 32, "summary": "ours"}]


def test_two_copies_of_our_own_create_settle_to_one_row(api, monkeypatch):
    """A create sent twice under one id (a killed process's, then its resend on resume, the
    first hidden from the second's check by read lag) leaves twins no ``id <>`` tells apart."""
    with DeeplakeFs(api, cache=False):
        pass
    twin = "7" * 32
    for _ in range(2):
        api.execute(
            "INSERT INTO memory (id, path, filename, summary, size_bytes) "
            "VALUES ($1, '/twin.md', 'twin.md', 'ours', 4)",
            [twin],
            idempotent=True,
        )
    monkeypatch.setattr("deeplake_sdk.fs.writer.new_row_id", lambda: twin)  # the same create
    with DeeplakeFs(api, cache=False) as fs:
        fs.tree.remove("/twin.md")  # this process believes it creates the file
        fs.write_text("/twin.md", "ours")
    rows = api.query("SELECT id, summary FROM memory WHERE path = '/twin.md'")
    assert [r["summary"] for r in rows] == ["ours"]
    assert rows[0]["id"].startswith(twin)  # created once more, under an id of its own


def test_commit_then_fail_never_duplicates_or_doubles(srv, workspace, tmp_path):
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url, retries=FAST_RETRY)
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/log.txt", "")
        fs.flush()
        srv.set_faults(p_commit_fail=0.3, seed=11)
        for i in range(40):
            fs.write_text(f"/many/{i}.txt", f"file {i}")
            if i % 4 == 3:
                fs.flush()  # several drains, so that many statements are sent
        for i in range(30):
            fs.append_text("/log.txt", f"line {i}\n")
            fs.flush()  # one compare-and-swap per append
        log = SessionLog(api, "exact", user="u")
        ids = []
        for i in range(20):
            ids.append(log.log({"type": "event", "i": i}))
            log.flush()
    injected = srv.stats()["injected"]
    assert injected.get("commit_502", 0) + injected.get("commit_drop", 0) > 10
    srv.set_faults(profile="none")
    counts = path_counts(api)
    assert all(counts[f"/many/{i}.txt"] == 1 for i in range(40))
    log_text = api.query("SELECT summary FROM memory WHERE path = '/log.txt'")
    assert log_text == [{"summary": "".join(f"line {i}\n" for i in range(30))}]
    rows = api.query("SELECT id FROM sessions ORDER BY creation_date")
    assert [r["id"] for r in rows] == ids


@pytest.mark.slow
def fifty_sessions_exact(srv, workspace: str) -> str:
    """50 concurrent sessions x (20 writes + 20 appends + 10 events) under the faults set,
    then the database, read without faults, holds exactly what was acknowledged."""
    expected: dict[str, bytes] = {}
    events: dict[str, list[str]] = {}

    def session(n: int) -> None:
        api = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
        log = SessionLog(api, f"s{n}", user=f"user{n % 7}")
        with DeeplakeFs(api, cache=False) as fs:
            for i in range(20):
                path = f"/s{n}/note{i}.md"
                fs.write_text(path, f"session {n} note {i}\n")
                expected[path] = f"session {n} note {i}\n".encode()
                if i % 4 == 3:
                    gevent.sleep(0)
            for i in range(20):
                path = f"/s{n}/note{i % 5}.md"
                fs.append_text(path, f"append {i}\n")
                expected[path] += f"append {i}\n".encode()
                if i == 9:
                    fs.flush()
            events[log.path] = [log.log({"type": "event", "i": i}) for i in range(10)]
            log.flush()

    pool = gevent.pool.Pool(50)
    for n in range(50):
        pool.spawn(session, n)
    pool.join(raise_error=True)
    srv.set_faults(profile="none")  # commits what the read lag still holds
    check = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    rows = check.query("SELECT path, summary FROM memory")
    got: dict[str, list[bytes]] = {}
    for r in rows:
        got.setdefault(r["path"], []).append(r["summary"].encode())
    assert {p: len(v) for p, v in got.items()} == {p: 1 for p in expected}  # none lost/duplicated
    mismatched = [p for p in expected if got[p][0] != expected[p]]
    assert mismatched == []  # no doubled or missing append
    stored = check.query("SELECT path, id FROM sessions ORDER BY path, creation_date")
    by_path: dict[str, list[str]] = {}
    for r in stored:
        by_path.setdefault(r["path"], []).append(r["id"])
    assert by_path == events  # every event once, in order
    digest = hashlib.sha256(repr(sorted(expected.items())).encode()).hexdigest()[:12]
    return f"verified {len(expected)} files, {sum(map(len, events.values()))} events ({digest})"


def test_beta_profile_fifty_sessions_exact(srv, workspace):
    """Profile beta plus commit-then-fail."""
    srv.set_faults(profile="beta", seed=5, p_commit_fail=0.02)
    print(fifty_sessions_exact(srv, workspace))


@pytest.mark.slow
def test_service_profile_fifty_sessions_exact(srv, workspace):
    """Profile service: read lag, coalesced UPDATEs, ALTER window, gateway pages."""
    srv.set_faults(profile="service", seed=11)
    print(fifty_sessions_exact(srv, workspace))
    stats = srv.stats()
    assert stats["injected"].get("read_lag", 0) > 0  # the lag was really in the way


def test_bootstrap_of_an_existing_workspace_sends_no_retried_500(srv, api, workspace):
    with DeeplakeFs(api, cache=False) as fs:  # the tables exist from here on
        fs.write_text("/a.md", "a\n")
    SessionLog(api, "s", user="u").log({"type": "event"})
    srv.set_faults(profile="service", seed=3)
    srv.reset_stats()
    for _ in range(5):
        fresh = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
        for table in ("memory", "sessions"):  # probed again, as by a new process
            fresh.forget_table(table)
        with DeeplakeFs(fresh, cache=False) as fs:
            assert fs.read_text("/a.md") == "a\n"
        fresh.close()
    stats = srv.stats()
    assert stats["requests"] >= 5  # at least the read of each fresh filesystem
    assert int(stats["status_counts"].get("500", 0)) == 0, stats["status_counts"]
