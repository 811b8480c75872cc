"""Choosing the journal's storage: caller-visible latency, throughput and drain cost.

Every candidate is durable (an fsync or fdatasync before the caller is answered) and runs
behind the same committer: one native thread that takes queued appends and makes them durable,
either one call at a time (``per-call``) or everything queued at once (``group``: one
transaction / one sync for the batch). Callers wait the way the SDK's callers do
(:class:`deeplake_sdk._native_worker.Completion`: greenlets on their hub, threads natively).

Candidates:

* ``sqlite``: SQLite in WAL mode, ``synchronous=FULL``, payload inline as a BLOB.
* ``diskcache``: a ``diskcache.Deque`` on a ``Cache`` with ``sqlite_synchronous=2`` (FULL).
* ``file``: an append-only file, records ``length + crc32 + payload``, ``flock`` around the
  write (several processes share a journal), ``fdatasync``; the drain persists its read offset
  in a sidecar file (fdatasync) instead of deleting.
* ``JournalStore``: the shipped store (SQLite WAL FULL, group commit), and the same with
  ``durable=False`` to show what the fsync costs.

Also: one process's append latency while another process appends to the same journal flat
out, and what ``fork()`` costs when a journal is open (its connection is closed before the fork
and reopened by the parent's next operation).

Writers: 1 caller, 50 greenlets of one hub (not monkey-patched), 50 native threads; each
writer appends one entry per call. Drain: read a batch of 500 pending entries, then remove
them, until the journal is empty.

Usage::

    .venv/bin/python benchmarks/journal_storage.py [--calls 2000] [--size 256] [--json]

Takes about 15 s; writes only under a temporary directory.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import statistics
import struct
import tempfile
import threading
import time
import zlib
from _queue import Empty, SimpleQueue
from collections.abc import Callable
from itertools import islice

import gevent

from deeplake_sdk._native_worker import Completion
from deeplake_sdk.journal import JournalStore, NewEntry

DRAIN_BATCH = 500


class Committer:
    """Runs ``append_batch`` on one native thread, per call or grouped."""

    def __init__(self, append_batch: Callable[[list[bytes]], None], group: bool) -> None:
        self.append_batch = append_batch
        self.group = group
        self.queue: SimpleQueue = SimpleQueue()
        self.transactions = 0
        threading.Thread(target=self._run, daemon=True).start()

    def call(self, payload: bytes) -> None:
        done = Completion()
        self.queue.put((payload, done))
        done.wait()

    def _run(self) -> None:
        while True:
            batch = [self.queue.get()]
            while self.group and len(batch) < 1000:
                try:
                    batch.append(self.queue.get_nowait())
                except Empty:
                    break
            self.append_batch([payload for payload, _ in batch])
            self.transactions += 1
            for _, done in batch:
                done.set()


# ---------------------------------------------------------------------------------------------
# Candidates: append_batch(payloads) makes them durable; drain() reads+removes a batch.


class SqliteWal:
    def __init__(self, directory: str) -> None:
        self.conn = sqlite3.connect(
            os.path.join(directory, "j.sqlite"), isolation_level=None, check_same_thread=False
        )
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute(
            "CREATE TABLE e (seq INTEGER PRIMARY KEY AUTOINCREMENT, meta TEXT, data BLOB)"
        )

    def append_batch(self, payloads: list[bytes]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(
            "INSERT INTO e (meta, data) VALUES ('{}', ?)", [(p,) for p in payloads]
        )
        self.conn.execute("COMMIT")

    def drain(self) -> int:
        rows = self.conn.execute("SELECT seq, data FROM e ORDER BY seq LIMIT ?", (DRAIN_BATCH,))
        rows = rows.fetchall()
        if rows:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM e WHERE seq <= ?", (rows[-1][0],))
            self.conn.execute("COMMIT")
        return len(rows)

    def close(self) -> None:
        self.conn.close()


class DiskcacheDeque:
    def __init__(self, directory: str) -> None:
        import diskcache

        self.cache = diskcache.Cache(directory, sqlite_synchronous=2)
        self.deque = diskcache.Deque.fromcache(self.cache)

    def append_batch(self, payloads: list[bytes]) -> None:
        with self.cache.transact():
            for p in payloads:
                self.deque.append(p)

    def drain(self) -> int:
        items = list(islice(self.deque, DRAIN_BATCH))
        with self.cache.transact():
            for _ in items:
                self.deque.popleft()
        return len(items)

    def close(self) -> None:
        self.cache.close()


class AppendFile:
    HEADER = struct.Struct("<II")

    def __init__(self, directory: str) -> None:
        self.fd = os.open(os.path.join(directory, "j.log"), os.O_RDWR | os.O_CREAT | os.O_APPEND)
        self.ack = os.open(os.path.join(directory, "j.ack"), os.O_RDWR | os.O_CREAT)
        self.offset = 0

    def append_batch(self, payloads: list[bytes]) -> None:
        blob = b"".join(self.HEADER.pack(len(p), zlib.crc32(p)) + p for p in payloads)
        fcntl.flock(self.fd, fcntl.LOCK_EX)  # other processes append to the same file
        try:
            os.write(self.fd, blob)
            os.fdatasync(self.fd)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def drain(self) -> int:
        n = 0
        position = self.offset
        while n < DRAIN_BATCH:
            header = os.pread(self.fd, self.HEADER.size, position)
            if len(header) < self.HEADER.size:
                break
            length, crc = self.HEADER.unpack(header)
            payload = os.pread(self.fd, length, position + self.HEADER.size)
            assert zlib.crc32(payload) == crc
            position += self.HEADER.size + length
            n += 1
        if n:
            os.pwrite(self.ack, struct.pack("<Q", position), 0)
            os.fdatasync(self.ack)
            self.offset = position
        return n

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.ack)


class Journal:
    """The shipped store: its own committer (group commit) is used, not the one above."""

    def __init__(self, directory: str, durable: bool = True) -> None:
        self.store = JournalStore.open(directory, "http://bench:1", "org", "ws", durable=durable)

    def call(self, payload: bytes) -> None:
        self.store.append([NewEntry("put", "memory", "/p", payload, {})])

    def append_batch(self, payloads: list[bytes]) -> None:
        self.store.append([NewEntry("put", "memory", "/p", p, {}) for p in payloads])

    def drain(self) -> int:
        entries = self.store.pending(limit=DRAIN_BATCH)
        self.store.complete([e.seq for e in entries])
        return len(entries)

    def close(self) -> None:
        self.store.close()


CANDIDATES: dict[str, Callable[[str], object]] = {
    "sqlite WAL FULL": SqliteWal,
    "diskcache Deque FULL": DiskcacheDeque,
    "append-only file + fdatasync": AppendFile,
}


# ---------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_writers(call: Callable[[bytes], None], payload: bytes, calls: int, mode: str) -> dict:
    writers = 1 if mode == "1 caller" else 50
    per_writer = max(1, calls // writers)
    latencies: list[float] = []

    def writer() -> None:
        for _ in range(per_writer):
            t = time.perf_counter()
            call(payload)
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    if mode == "50 threads":
        threads = [threading.Thread(target=writer) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        gevent.joinall([gevent.spawn(writer) for _ in range(writers)], raise_error=True)
    wall = time.perf_counter() - started
    return {
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "per_s": len(latencies) / wall,
        "calls": len(latencies),
    }


def measure_drain(backend, payload: bytes, entries: int) -> dict:
    backend.append_batch([payload] * entries)
    started = time.perf_counter()
    drained = batches = 0
    while True:
        n = backend.drain()
        if not n:
            break
        drained += n
        batches += 1
    wall = time.perf_counter() - started
    assert drained == entries, (drained, entries)
    return {"batch_ms": 1000 * wall / batches, "per_s": drained / wall}


def measure_fork(directory: str, forks: int) -> dict:
    """Time fork() + the child's exit, without and with an open journal (closed across fork)."""

    def timed() -> float:
        started = time.perf_counter()
        for _ in range(forks):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        return 1000 * (time.perf_counter() - started) / forks

    without = timed()
    journal = Journal(directory)
    journal.call(b"x")
    with_journal = timed()
    journal.call(b"x")  # the parent reopens its connection
    journal.close()
    return {"without_ms": without, "with_journal_ms": with_journal}


def measure_contention(directory: str, calls: int) -> dict:
    """Latency of one process's appends while another process appends flat out (4 threads)."""
    journal = Journal(directory)

    def latencies() -> list[float]:
        out = []
        for _ in range(calls):
            t = time.perf_counter()
            journal.call(b"x" * 256)
            out.append(1000 * (time.perf_counter() - t))
        return out

    alone = latencies()
    pid = os.fork()
    if pid == 0:  # the other process: hammer until killed
        try:
            other = Journal(directory)
            threads = [
                threading.Thread(target=lambda: [other.call(b"y" * 256) for _ in iter(int, 1)])
                for _ in range(4)
            ]
            for t in threads:
                t.start()
            threads[0].join()
        finally:
            os._exit(0)
    try:
        while journal.store.stats().owners.keys() <= {journal.store.owner}:
            time.sleep(0.01)  # until the other process has written
        contended = latencies()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    journal.close()
    return {
        "alone_p50_ms": statistics.median(alone),
        "alone_p99_ms": percentile(alone, 0.99),
        "contended_p50_ms": statistics.median(contended),
        "contended_p99_ms": percentile(contended, 0.99),
        "contended_max_ms": max(contended),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="appends per writer scenario")
    parser.add_argument("--size", type=int, default=256, help="payload bytes per entry")
    parser.add_argument("--drain", type=int, default=5000, help="entries drained")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    payload = os.urandom(args.size)
    modes = ["1 caller", "50 greenlets", "50 threads"]
    results = []
    base = tempfile.mkdtemp(prefix="jbench")
    try:
        rows: list[tuple[str, str, Callable[[str], object]]] = []
        for name, factory in CANDIDATES.items():
            for commit in ("per-call", "group"):
                rows.append((name, commit, factory))
        rows.append(("JournalStore", "group", Journal))
        rows.append(("JournalStore durable=False", "group", lambda d: Journal(d, False)))
        for k, (name, commit, factory) in enumerate(rows):
            row = {"storage": name, "commit": commit}
            for mode in modes:
                directory = os.path.join(base, f"{k}-{mode}")
                os.makedirs(directory)
                backend = factory(directory)
                if isinstance(backend, Journal):
                    call = backend.call
                    syncs = lambda b=backend: b.store.counters.transactions  # noqa: E731
                else:
                    committer = Committer(backend.append_batch, commit == "group")
                    call, syncs = committer.call, lambda c=committer: c.transactions
                row[mode] = run_writers(call, payload, args.calls, mode)
                row[mode]["syncs"] = syncs()
                backend.close()
            directory = os.path.join(base, f"{k}-drain")
            os.makedirs(directory)
            backend = factory(directory)
            row["drain"] = measure_drain(backend, payload, args.drain)
            backend.close()
            results.append(row)
            if not args.json:
                print(f"measured {name} ({commit})", flush=True)
        fork = measure_fork(os.path.join(base, "fork"), 50)
        contention = measure_contention(os.path.join(base, "contention"), 300)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps({"storage": results, "fork": fork, "contention": contention}, indent=2))
        return
    print(
        f"\n{args.calls} appends of {args.size} B per scenario; latency p50 / p99 in ms, "
        "throughput in entries/s, syncs = transactions (fsyncs) used\n"
    )
    header = "| storage | commit | " + " | ".join(modes) + " | drain (500/batch) |"
    print(header)
    print("|" + "---|" * (3 + len(modes)))
    for row in results:
        cells = [
            f"{row[m]['p50_ms']:.2f} / {row[m]['p99_ms']:.2f} ms, "
            f"{row[m]['per_s']:,.0f}/s, {row[m]['syncs']} syncs"
            for m in modes
        ]
        drain = f"{row['drain']['batch_ms']:.1f} ms/batch, {row['drain']['per_s']:,.0f}/s"
        print(f"| {row['storage']} | {row['commit']} | " + " | ".join(cells) + f" | {drain} |")
    print(
        f"\nfork() + child exit: {fork['without_ms']:.2f} ms without a journal, "
        f"{fork['with_journal_ms']:.2f} ms with an open one (closed before, reopened after)"
    )
    c = contention
    print(
        f"one process's appends, p50 / p99 / max: alone {c['alone_p50_ms']:.2f} / "
        f"{c['alone_p99_ms']:.2f} ms; while another process appends flat out "
        f"{c['contended_p50_ms']:.2f} / {c['contended_p99_ms']:.2f} / "
        f"{c['contended_max_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
