"""The journal's durable store: semantics, group commit, durability, locking, fork, corruption.

Everything runs on real SQLite files in temporary directories and, for crashes, locks and
fork, in real processes (``tests/journal_proc.py``) killed with real signals.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import gevent
import pytest
from waiting import poll

from deeplake_sdk.journal import (
    Entry,
    JournalCorruptError,
    JournalError,
    JournalStore,
    NewEntry,
    _committer,
    _sqlite,
    journal_path,
    list_entries,
    list_journals,
    normalize_origin,
)
from deeplake_sdk.journal import store as store_module

PROC = str(Path(__file__).with_name("journal_proc.py"))
ORIGIN, ORG, WS = "http://127.0.0.1:1", "org", "ws"  # as in journal_proc.py
TIMEOUT = 120


def put(path: str, data: bytes = b"x", **meta) -> NewEntry:
    return NewEntry("put", "memory", path, data, meta)


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path):
    """A file journal and the null journal: both must behave the same."""
    if request.param == "file":
        s = JournalStore.open(tmp_path / "j", ORIGIN, ORG, WS)
    else:
        s = JournalStore.memory()
    yield s
    s.close()


@pytest.fixture
def fstore(tmp_path):
    s = JournalStore.open(tmp_path / "j", ORIGIN, ORG, WS)
    yield s
    s.close()


def proc(*args: str, patched: bool = False, **kw) -> subprocess.Popen:
    argv = [sys.executable, PROC, *args] + (["--patched"] if patched else [])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **kw)


def run_proc(*args: str, patched: bool = False) -> dict:
    argv = [sys.executable, PROC, *args] + (["--patched"] if patched else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Semantics (file and null journal alike)


def test_append_returns_increasing_seqs_and_pending_returns_them_in_order(store):
    seqs = store.append([put("/a", b"1", n=1), put("/b", b"22")])
    seqs += store.append([NewEntry("event", "sessions", "/s.jsonl", b'{"e":1}')])
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    entries = store.pending()
    assert [e.seq for e in entries] == seqs
    first = entries[0]
    assert isinstance(first, Entry)
    assert (first.op, first.table, first.path, first.data, first.meta) == (
        "put",
        "memory",
        "/a",
        b"1",
        {"n": 1},
    )
    assert first.owner == store.owner and first.attempts == 0
    assert first.state == "pending" and first.error is None
    assert entries[2].op == "event" and entries[2].data == b'{"e":1}'
    assert store.append([]) == []


def test_pending_respects_limit_and_bytes_but_returns_at_least_one(store):
    store.append([put("/big", b"x" * 1000), put("/a", b"y" * 10), put("/b", b"z" * 10)])
    assert [e.path for e in store.pending(max_bytes=100)] == ["/big"]  # over, but one
    store.complete([store.pending()[0].seq])
    assert [e.path for e in store.pending(max_bytes=15)] == ["/a"]
    assert [e.path for e in store.pending(max_bytes=20)] == ["/a", "/b"]
    assert [e.path for e in store.pending(limit=1)] == ["/a"]


def test_begin_attempt_counts_and_merges_meta(store):
    a, b = store.append([put("/a", k=1), put("/b")])
    store.begin_attempt([a, b], {a: {"expect": 7, "k": 2}})
    store.begin_attempt([a])
    by_path = {e.path: e for e in store.pending()}
    assert by_path["/a"].attempts == 2 and by_path["/a"].meta == {"k": 2, "expect": 7}
    assert by_path["/b"].attempts == 1 and by_path["/b"].meta == {}


def test_complete_deletes_and_updates_lanes(store):
    a, b = store.append([put("/a"), put("/b")])
    store.complete([a], {("memory", "/a"): {"size": 3}, ("memory", "/x"): {"v": 1}})
    assert [e.seq for e in store.pending()] == [b]
    assert store.states([a, b]) == {b: "pending"}  # absent = completed
    keys = [("memory", "/a"), ("memory", "/x"), ("memory", "/none")]
    assert store.lanes(keys) == {("memory", "/a"): {"size": 3}, ("memory", "/x"): {"v": 1}}
    store.complete([], {("memory", "/a"): {"size": 9}, ("memory", "/x"): None})
    assert store.lanes(keys) == {("memory", "/a"): {"size": 9}}


def test_reject_requeue_discard(store):
    a, b, c = store.append([put("/a"), put("/b"), put("/c")])
    store.reject(b, "HTTP 413: body too large")
    store.reject(c, "HTTP 400: bad")
    assert [e.seq for e in store.pending()] == [a]
    rejected = store.rejected()
    assert [(e.seq, e.state, e.error) for e in rejected] == [
        (b, "rejected", "HTTP 413: body too large"),
        (c, "rejected", "HTTP 400: bad"),
    ]
    assert store.states([a, b, c]) == {a: "pending", b: "rejected", c: "rejected"}
    store.requeue([b])
    assert [(e.seq, e.error) for e in store.pending()] == [(a, None), (b, None)]  # seq order
    store.discard([a, c])  # only rejected ones go
    assert store.states([a, b, c]) == {a: "pending", b: "pending"}
    assert store.rejected() == []


def test_stats_counts_bytes_oldest_and_owners(store):
    empty = store.stats()
    assert (empty.pending, empty.pending_bytes, empty.rejected, empty.oldest_created) == (
        0,
        0,
        0,
        None,
    )
    a, _, c = store.append([put("/a", b"12345"), put("/b", b"1"), put("/c", b"123")])
    store.reject(c, "no")
    stats = store.stats()
    assert (stats.pending, stats.pending_bytes, stats.rejected, stats.rejected_bytes) == (
        2,
        6,
        1,
        3,
    )
    assert stats.oldest_created == store.pending()[0].created
    assert stats.owners == {store.owner: 2}
    assert [i.seq for i in store.entries()] == [a, a + 1, c]
    assert [(i.seq, i.size) for i in store.entries("rejected")] == [(c, 3)]


def test_text_fields_and_meta_round_trip_exactly(store):
    odd = "/ü/nul\x00/\U0001f600 'q\"\\"
    store.append([NewEntry("event", "t\x00", odd, b"\x00\xff", {"s": "\udcff", "p": odd})])
    (entry,) = store.pending()
    assert (entry.table, entry.path, entry.data) == ("t\x00", odd, b"\x00\xff")
    assert entry.meta == {"s": "\udcff", "p": odd}


def test_bad_input_is_refused_before_journaling(store, monkeypatch):
    with pytest.raises(TypeError, match="NewEntry"):
        store.append([("put", "memory", "/a")])
    with pytest.raises(TypeError, match="JSON"):
        store.append([put("/a", when=object())])
    with pytest.raises(TypeError, match="bytes"):
        store.append([NewEntry("put", "memory", "/a", "text")])
    with pytest.raises(ValueError, match="not valid text"):
        store.append([put("/bad\udcff")])
    monkeypatch.setattr(store_module, "MAX_ENTRY_BYTES", 10)
    with pytest.raises(ValueError, match="limit of 10 bytes"):
        store.append([put("/ok"), put("/big", b"x" * 11)])
    assert store.pending() == []  # nothing of a refused call was stored


def test_a_closed_store_raises(store):
    store.close()
    assert store.closed
    with pytest.raises(JournalError, match="closed"):
        store.append([put("/a")])
    store.close()  # twice is fine


def test_gevent_timeout_around_append_leaves_the_store_working(store):
    # A thread holds the committer in a batch, so the append below must wait for it and the
    # timeout interrupts that wait (an idle committer could answer before the hub runs).
    busy, release = threading.Event(), threading.Event()

    def hold(conn):
        busy.set()
        release.wait(TIMEOUT)

    holder = threading.Thread(target=store._call, args=(hold,))
    holder.start()
    assert busy.wait(TIMEOUT)
    try:
        with pytest.raises(gevent.Timeout), gevent.Timeout(0):
            store.append([put("/maybe")])  # may or may not be committed: the caller gave up
    finally:
        release.set()
        holder.join(TIMEOUT)
    seqs = store.append([put("/after")])
    paths = [e.path for e in store.pending()]
    assert paths[-1] == "/after" and seqs[0] == store.pending()[-1].seq
    assert set(paths) <= {"/maybe", "/after"}


# ---------------------------------------------------------------------------------------------
# The file journal


def test_seqs_are_never_reused_and_state_survives_reopen(tmp_path):
    root = tmp_path / "j"
    with JournalStore.open(root, ORIGIN, ORG, WS) as s:
        a, b, c = s.append([put("/a"), put("/b", k=1), put("/c")])
        s.begin_attempt([b], {b: {"expect": 5}})
        s.reject(c, "why")
        s.complete([a], {("memory", "/b"): {"h": 1}})
    with JournalStore.open(root, ORIGIN, ORG, WS) as s:
        (entry,) = s.pending()
        assert (entry.seq, entry.attempts, entry.meta) == (b, 1, {"k": 1, "expect": 5})
        assert [(e.seq, e.error) for e in s.rejected()] == [(c, "why")]
        assert s.lanes([("memory", "/b")]) == {("memory", "/b"): {"h": 1}}
        s.complete([b])
        s.discard([c])
        (d,) = s.append([put("/d")])
        assert d > c  # the largest seq was deleted, and still is not reused


def test_journal_path_is_one_readable_file_per_key(tmp_path):
    p = journal_path(tmp_path, "https://API.deeplake.ai:443/", "my org", "ws_1")
    assert p == journal_path(tmp_path, "https://api.deeplake.ai", "my org", "ws_1")
    assert p.parent == tmp_path and p.name.startswith("api.deeplake.ai_my-org_ws-1-")
    assert p.suffix == ".sqlite"
    others = {
        journal_path(tmp_path, "http://api.deeplake.ai", "my org", "ws_1"),
        journal_path(tmp_path, "https://api.deeplake.ai:8443", "my org", "ws_1"),
        journal_path(tmp_path, "https://api.deeplake.ai", "my-org", "ws_1"),
        journal_path(tmp_path, "https://api.deeplake.ai", "my org", "ws-1"),
        journal_path(tmp_path, "https://api.deeplake.ai/v2", "my org", "ws_1"),
    }
    assert p not in others and len(others) == 5  # same slug, other hash
    assert normalize_origin("HTTP://[::1]:80/x/") == "http://[::1]/x"
    with pytest.raises(ValueError, match="org and workspace"):
        journal_path(tmp_path, "https://h", "", "ws")
    with pytest.raises(ValueError, match="not an endpoint URL"):
        journal_path(tmp_path, "api.deeplake.ai", "o", "w")


def test_files_are_private_whatever_the_umask(tmp_path):
    root = tmp_path / "a" / "journal"
    old = os.umask(0)
    try:
        with JournalStore.open(root, ORIGIN, ORG, WS) as s:
            s.append([put("/a")])
            assert s.try_lock_drain()
            names = sorted(p.name[len(s.path.stem) :] for p in root.iterdir())
            assert names == [".lock", ".sqlite", ".sqlite-shm", ".sqlite-wal"]
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in root.iterdir()}
            s.unlock_drain()
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert set(modes.values()) == {0o600}, modes


def test_handles_of_one_file_share_committer_and_drain_lock(tmp_path):
    a = JournalStore.open(tmp_path, ORIGIN, ORG, WS)
    b = JournalStore.open(tmp_path, ORIGIN.upper(), ORG, WS)
    try:
        a.append([put("/a")])
        assert [e.path for e in b.pending()] == ["/a"]
        assert a.counters == b.counters and a.counters.entries == 1
        assert a.try_lock_drain() and b.try_lock_drain()  # re-entrant in the process
        a.unlock_drain()
        assert b.drain_locked
        b.unlock_drain()
        assert not a.drain_locked
        a.close()
        assert [e.path for e in b.pending()] == ["/a"]  # b still works
        with pytest.raises(JournalError, match="durable"):
            JournalStore.open(tmp_path, ORIGIN, ORG, WS, durable=False)
    finally:
        a.close()
        b.close()


def test_a_journal_of_another_key_is_refused(tmp_path):
    path = journal_path(tmp_path, ORIGIN, ORG, WS)
    with JournalStore.open(tmp_path, "http://other:1", ORG, WS) as s:
        other = s.path
    os.rename(other, path)
    with pytest.raises(JournalError, match="belongs to"):
        JournalStore.open(tmp_path, ORIGIN, ORG, WS)


# ---------------------------------------------------------------------------------------------
# Group commit


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def _poll(predicate, what: str) -> None:
    poll(predicate, what, TIMEOUT, interval=0.001)


def test_concurrent_greenlets_share_one_transaction(fstore):
    """200 greenlets queue while the journal is locked: one or two transactions, not 200."""
    before = fstore.counters
    blocker = _hold_write_lock(fstore.path)
    jobs = [gevent.spawn(fstore.append, [put(f"/g{i}", i=i)]) for i in range(200)]
    _poll(lambda: fstore.counters.calls - before.calls >= 1, "the first batch")
    gevent.sleep(0)  # every greenlet has now queued its request
    blocker.execute("COMMIT")
    blocker.close()
    gevent.joinall(jobs, raise_error=True)
    after = fstore.counters
    assert after.entries - before.entries == 200
    assert after.transactions - before.transactions <= 2
    seqs = [job.value[0] for job in jobs]
    assert len(set(seqs)) == 200 and [e.seq for e in fstore.pending(limit=1000)] == sorted(seqs)


def test_group_commit_without_help(fstore):
    """Unforced: many greenlets and threads still need far fewer transactions than calls."""
    before = fstore.counters
    jobs = [gevent.spawn(fstore.append, [put(f"/g{i}")]) for i in range(400)]
    gevent.joinall(jobs, raise_error=True)
    middle = fstore.counters
    threads = [
        threading.Thread(target=lambda i=i: [fstore.append([put(f"/t{i}")]) for _ in range(25)])
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    after = fstore.counters
    assert after.entries - before.entries == 600
    # One hub queues all 400 before the committer runs much; 8 threads can share at most 8.
    assert middle.transactions - before.transactions <= 400 / 10, middle
    assert after.transactions - middle.transactions <= 200 / 2, after


def test_one_failing_request_fails_alone(fstore):
    """A request that fails inside the shared transaction is rolled back alone."""
    committer = fstore._backend.committer
    blocker = _hold_write_lock(fstore.path)

    def bad(conn):
        _sqlite.append(conn, [("put", "memory", "/half", 0, "{}", "me", 0.0, b"")])
        raise RuntimeError("refused")  # after writing: its write must be rolled back

    good = [gevent.spawn(fstore.append, [put(f"/ok{i}")]) for i in range(5)]
    failing = gevent.spawn(committer.call, bad, write=True)
    _poll(lambda: fstore.counters.calls >= 2, "the first batch")
    gevent.sleep(0)
    blocker.execute("COMMIT")
    blocker.close()
    gevent.joinall([*good, failing])
    assert isinstance(failing.exception, RuntimeError)
    assert all(job.successful() for job in good)
    assert sorted(e.path for e in fstore.pending()) == [f"/ok{i}" for i in range(5)]


def test_contention_waits_and_never_raises(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(_committer, "WARN_AFTER_S", 0.05)
    with JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s:
        blocker = _hold_write_lock(s.path)
        job = gevent.spawn(s.append, [put("/waited")])
        _poll(lambda: "still waiting" in caplog.text, "a warning")
        assert not job.ready()
        blocker.execute("COMMIT")
        blocker.close()
        job.join(TIMEOUT)
        assert job.successful() and [e.path for e in s.pending()] == ["/waited"]
    assert "locked by another process" in caplog.text


# ---------------------------------------------------------------------------------------------
# Processes


@pytest.mark.parametrize("acks", [1, 40, 200])
def test_acknowledged_entries_survive_sigkill(tmp_path, acks):
    writer = proc("append", str(tmp_path), "--count", "100000", "--batch", "3")
    acked: list[int] = []
    try:
        writer.stdout.readline()  # owner
        while len(acked) < acks * 3:
            line = writer.stdout.readline()
            assert line.startswith("ack "), line
            acked += map(int, line.split()[1:])
        writer.send_signal(signal.SIGKILL)  # right after an append returned
    finally:
        writer.kill()
        writer.wait(TIMEOUT)
    assert writer.returncode == -signal.SIGKILL
    with JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s:
        stored = s.pending(limit=10**6, max_bytes=1 << 40)
    seqs = [e.seq for e in stored]
    assert set(acked) <= set(seqs)
    assert all(json.loads(e.data) == e.meta for e in stored)  # whole entries only
    assert [e.meta["k"] for e in stored] == list(range(len(stored)))


def test_two_processes_append_concurrently(tmp_path):
    writers = [
        proc("append", str(tmp_path), "--count", "300", "--batch", str(b), "--tag", tag)
        for tag, b in (("p", 1), ("q", 3))
    ]
    outputs = [w.communicate(timeout=TIMEOUT)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0]
    acked = [
        int(seq)
        for out in outputs
        for line in out.splitlines()
        if line.startswith("ack ")
        for seq in line.split()[1:]
    ]
    with JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s:
        stored = s.pending(limit=10**6)
        owners = s.stats().owners
    assert len(stored) == len(acked) == 600 and sorted(acked) == [e.seq for e in stored]
    for tag in "pq":  # each writer's entries in its call order
        mine = [e.meta["k"] for e in stored if e.meta["tag"] == tag]
        assert mine == list(range(300))
    assert sorted(owners.values()) == [300, 300]


def test_drain_lock_is_exclusive_across_processes_and_released_on_sigkill(tmp_path):
    holder = proc("hold-drain", str(tmp_path), stdin=subprocess.PIPE)
    try:
        assert json.loads(holder.stdout.readline()) == {"locked": True}
        assert run_proc("try-drain", str(tmp_path)) == {"locked": False}
        with JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s:
            assert not s.try_lock_drain()
            assert not s.drain_locked
            holder.send_signal(signal.SIGKILL)
            holder.wait(TIMEOUT)
            assert s.try_lock_drain()  # the kernel released it with the dead holder
            assert run_proc("try-drain", str(tmp_path)) == {"locked": False}
            s.unlock_drain()
        assert run_proc("try-drain", str(tmp_path)) == {"locked": True}
    finally:
        holder.kill()
        holder.wait(TIMEOUT)


@pytest.mark.parametrize("patched", [False, True], ids=["unpatched", "patched"])
def test_fork_child_gets_its_own_store_and_not_the_drain_lock(tmp_path, patched):
    out = run_proc("fork", str(tmp_path), patched=patched)
    child = out["child"]
    assert out["child_status"] == 0
    assert child["owner_changed"] and child["child_entry_owner_is_new"]
    assert not child["holds_after_fork"] and not child["try_lock"]  # the parent holds it
    assert child["sees_parent_entry"]  # fresh connection on the shared file
    # Closing the child's copy of the lock descriptor did not release the parent's lock.
    assert out["parent_holds"] and not out["other_can_lock_while_parent_holds"]
    assert out["other_can_lock_after_unlock"]
    assert out["parent_seq_after_fork"] > child["child_seq"]  # parent reopened its connection
    assert out["paths"] == ["/parent/before", "/child", "/parent/after"]


@pytest.mark.parametrize("patched", [False, True], ids=["unpatched", "patched"])
def test_fork_while_threads_append(tmp_path, patched):
    out = run_proc("fork-busy", str(tmp_path), "--count", "15", patched=patched)
    assert out["children_ok"] == 15
    assert out["stored"] == out["written"] + 15


@pytest.mark.parametrize("patched", [False, True], ids=["unpatched", "patched"])
def test_fork_child_threads_reattach_once(tmp_path, patched):
    out = run_proc("fork-first-use", str(tmp_path), patched=patched)
    assert out["status"] == 0
    assert out["child"]["greenlets"] == [1] * 8 and out["child"]["seen"] == [1] * 8
    # One backend for the two handles' first uses, and closing both shut it down.
    assert out["child"]["refs"] == 2 and out["child"]["left"] == 0
    assert out["parent"] == 1


@pytest.mark.parametrize("patched", [False, True], ids=["unpatched", "patched"])
def test_null_journal_is_process_local_across_fork(tmp_path, patched):
    out = run_proc("memory-fork", str(tmp_path), patched=patched)
    assert out["child"] == {"before": [], "after": ["/child"], "lock": True}
    assert out["parent"] == ["/parent"]


@pytest.mark.parametrize("patched", [False, True], ids=["unpatched", "patched"])
def test_eight_native_threads_with_greenlets(tmp_path, patched):
    out = run_proc("threads", str(tmp_path), patched=patched)
    assert out["patched"] is patched
    assert out["returned"] == out["unique"] == out["stored"] == 8 * (5 * 20 + 20) + 5 * 20
    assert out["stored_match"] and out["order_ok"]
    assert out["transactions"] < out["returned"]


@pytest.mark.parametrize("patched", [False, True], ids=["unpatched", "patched"])
def test_signal_handler_and_atexit_while_another_thread_appends(tmp_path, patched):
    out = run_proc("signals", str(tmp_path), "--count", "30", patched=patched)
    assert out["handled"] == 30
    with JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s:
        paths = [e.path for e in s.pending(limit=10**6, max_bytes=1 << 40)]
    assert sorted(p for p in paths if p.startswith("/signal/")) == sorted(
        f"/signal/{i}" for i in range(30)
    )
    assert paths.count("/atexit") == 1 and "/main/29" in paths


# ---------------------------------------------------------------------------------------------
# Damaged files


def _corrupt_error(exc_info, path) -> str:
    text = str(exc_info.value)
    assert str(path) in text and "move it aside" in text and "nothing was dropped" in text
    return text


def test_a_file_that_is_not_a_database_is_reported_and_left_alone(tmp_path):
    path = journal_path(tmp_path, ORIGIN, ORG, WS)
    tmp_path.mkdir(exist_ok=True)
    garbage = b"this is not sqlite\n" * 300
    path.write_bytes(garbage)
    with pytest.raises(JournalCorruptError) as info:
        JournalStore.open(tmp_path, ORIGIN, ORG, WS)
    _corrupt_error(info, path)
    assert info.value.path == str(path)
    assert path.read_bytes() == garbage
    with JournalStore.open(tmp_path, "http://good:1", ORG, WS) as good:
        good.append([put("/a")])
    infos = {i.origin or i.path.name: i for i in list_journals(tmp_path)}
    assert infos["http://good:1"].pending == 1 and infos["http://good:1"].error is None
    assert str(path) in infos[path.name].error


def test_another_apps_database_is_not_taken_for_a_journal(tmp_path):
    path = journal_path(tmp_path, ORIGIN, ORG, WS)
    tmp_path.mkdir(exist_ok=True)
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalCorruptError, match="not a deeplake-sdk journal"):
        JournalStore.open(tmp_path, ORIGIN, ORG, WS)


def test_a_damaged_page_is_reported_on_read(tmp_path):
    with JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s:
        s.append([put(f"/f{i}", os.urandom(3000)) for i in range(100)])
        path = s.path
    page = 4096
    with open(path, "r+b") as f:  # damage b-tree pages after the schema page
        for n in (2, 3, 5, 8):
            f.seek(n * page)
            f.write(b"\xa5" * page)
    with (
        pytest.raises(JournalCorruptError) as info,
        JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s,
    ):
        s.pending(limit=1000, max_bytes=1 << 30)
    _corrupt_error(info, path)


def test_a_journal_from_a_newer_sdk_is_refused(tmp_path):
    with JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s:
        path = s.path
    conn = sqlite3.connect(str(path))
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(JournalError, match="newer deeplake-sdk"):
        JournalStore.open(tmp_path, ORIGIN, ORG, WS)


# ---------------------------------------------------------------------------------------------
# Listing


def test_list_journals_and_entries(tmp_path):
    assert list_journals(tmp_path / "missing") == []
    with JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s:
        a, b, c = s.append([put("/a", b"123"), put("/b", b"45"), put("/c")])
        s.reject(b, "too big")
        (info,) = list_journals(tmp_path)
        assert (info.origin, info.org, info.workspace) == (ORIGIN, ORG, WS)
        assert (info.pending, info.rejected, info.bytes) == (2, 1, 6)
        assert info.owners == {s.owner: 2} and info.path == s.path
        assert info.oldest == s.stats().oldest_created and info.file_bytes > 0
        listed = list_entries(s.path)
        assert [(e.seq, e.size, e.state) for e in listed] == [
            (a, 3, "pending"),
            (b, 2, "rejected"),
            (c, 1, "pending"),
        ]
        assert [e.error for e in list_entries(s.path, state="rejected")] == ["too big"]
        assert [e.seq for e in list_entries(s.path, limit=1)] == [a]


def test_without_a_thread_operations_run_on_the_caller(tmp_path, monkeypatch):
    """At interpreter exit no thread can be started: the store still works, inline."""

    def refuse(*args):
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(_committer, "_start_new_thread", refuse)
    with JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s:
        jobs = [gevent.spawn(s.append, [put(f"/g{i}")]) for i in range(5)]
        gevent.joinall(jobs, raise_error=True)
        assert s.append([put("/plain")]) == [6]
        assert len(s.pending()) == 6 and s.counters.transactions == 6
    with JournalStore.open(tmp_path, ORIGIN, ORG, WS) as s:
        assert len(s.pending()) == 6


def test_a_drain_is_never_handed_part_of_an_append_group_it_sent(monkeypatch):
    """The group's recorded offset is the whole group's: a part of it could not be checked."""
    from types import SimpleNamespace

    from deeplake_sdk.journal import core

    def journal_with(paths: list[str]) -> tuple[SimpleNamespace, list[int]]:
        store = JournalStore.memory()
        seqs = store.append([NewEntry("append", "memory", p, b"x") for p in paths])
        sent = [s for s, p in zip(seqs, paths, strict=True) if p == "/a"]
        group = {"group": sent[0], "members": len(sent), "expected": 0, "create": False}
        store.begin_attempt(sent, {s: group for s in sent})
        return SimpleNamespace(store=store), seqs

    monkeypatch.setattr(core, "BATCH_ENTRIES", 3)
    journal, seqs = journal_with(["/b", "/a", "/c", "/a"])
    assert [e.seq for e in core.Journal.next_batch(journal)] == seqs[:1]  # cut before it
    assert [e.seq for e in core.Journal.next_batch(journal, seqs[0])] == seqs[1:]  # then whole
    journal, seqs = journal_with(["/a", "/b", "/c", "/d", "/a"])
    assert [e.seq for e in core.Journal.next_batch(journal)] == seqs  # first: read larger


def test_no_more_entries_are_read_while_those_waiting_for_their_file_fill_a_batch(monkeypatch):
    from types import SimpleNamespace

    from deeplake_sdk.journal import core

    monkeypatch.setattr(core, "BATCH_ENTRIES", 3)
    store = JournalStore.memory()
    seqs = store.append([NewEntry("put", "memory", f"/{i}", b"x") for i in range(6)])
    journal = SimpleNamespace(store=store)
    waiting = core.Journal.next_batch(journal)
    assert [e.seq for e in waiting] == seqs[:3]
    assert core.Journal.next_batch(journal, seqs[2], held=waiting) == []
    assert [e.seq for e in core.Journal.next_batch(journal, seqs[2], held=waiting[:2])] == seqs[3:]
    monkeypatch.setattr(core, "BATCH_BYTES", 2)
    assert core.Journal.next_batch(journal, seqs[2], held=waiting[:2]) == []  # 2 bytes waiting
