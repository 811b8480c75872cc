"""A process that uses a journal, for the journal store's multi-process tests.

``python tests/journal_proc.py SCENARIO ROOT [options]``; ``--patched`` (first) runs
``gevent.monkey.patch_all()`` before anything else. Results are printed as one JSON line.
The journal is the one of ORIGIN/ORG/WS under ROOT.
"""

from __future__ import annotations

import sys

if "--patched" in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import argparse
import atexit
import json
import os
import signal
import subprocess

from gevent import monkey as _monkey

from deeplake_sdk.journal import JournalStore, NewEntry

ORIGIN, ORG, WS = "http://127.0.0.1:1", "org", "ws"

_allocate_lock = _monkey.get_original("_thread", "allocate_lock")
# gevent's waitpid waits for SIGCHLD through its hub, which does not always see it: use the
# blocking one (the child is known to exit quickly).
_waitpid = _monkey.get_original("os", "waitpid")
_start_thread = _monkey.get_original("_thread", "start_new_thread")
_sleep = _monkey.get_original("time", "sleep")


def store_at(root: str, origin: str = ORIGIN, org: str = ORG, ws: str = WS) -> JournalStore:
    return JournalStore.open(root, origin, org, ws)


def emit(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def _write(path: str, value: object) -> None:
    with open(path, "w") as f:
        json.dump(value, f)


def _read(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def in_child(root: str, body) -> tuple[int, dict]:
    """Fork; the child runs body() and reports its dict. Returns the child's status and report."""
    report = os.path.join(root, "child.json")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _write(report, body())
            code = 0
        finally:
            os._exit(code)
    _, status = _waitpid(pid, 0)
    return status, _read(report)


def entry(path: str, **meta: object) -> NewEntry:
    return NewEntry("put", "memory", path, json.dumps(meta).encode(), meta)


def run_threads(fn, n: int, timeout: float = 120) -> list:
    """Run fn(i) on n native threads; their results (or raise the first error)."""
    results: list = [None] * n
    errors: list = []
    locks = []
    for i in range(n):
        lock = _allocate_lock()
        lock.acquire()
        locks.append(lock)

        def body(i: int = i, lock=lock) -> None:
            try:
                results[i] = fn(i)
            except BaseException as exc:
                errors.append(repr(exc))
            finally:
                lock.release()

        _start_thread(body, ())
    for lock in locks:
        if not lock.acquire(timeout=timeout):
            raise RuntimeError("a thread did not finish in time")
    if errors:
        raise RuntimeError(errors[0])
    return results


# ---------------------------------------------------------------------------------------------


def scenario_append(args: argparse.Namespace) -> None:
    """Append COUNT entries (BATCH per call), printing "ack <seq...>" after each call."""
    store = store_at(args.root)
    emit({"owner": store.owner})
    k = 0
    while k < args.count:
        batch = [entry(f"/{args.tag}/{k + i}", tag=args.tag, k=k + i) for i in range(args.batch)]
        seqs = store.append(batch)
        sys.stdout.write("ack " + " ".join(map(str, seqs)) + "\n")
        sys.stdout.flush()
        k += args.batch
    emit({"done": k})


def scenario_hold_drain(args: argparse.Namespace) -> None:
    """Take the drain lock, say whether it was granted, hold it until stdin closes."""
    store = store_at(args.root, args.origin, args.org, args.ws)
    emit({"locked": store.try_lock_drain()})
    sys.stdin.read()


def scenario_event_unsent(args: argparse.Namespace) -> None:
    """Journal the event row read from stdin (JSON) as being sent, and exit without sending."""
    row = json.loads(sys.stdin.read())
    meta = {k: v for k, v in row.items() if k != "message"}
    store = store_at(args.root, args.origin, args.org, args.ws)
    seqs = store.append(
        [NewEntry("event", args.tag, row["path"], row["message"].encode(), {"row": meta})]
    )
    store.begin_attempt(seqs)
    emit({"seqs": seqs})


def scenario_try_drain(args: argparse.Namespace) -> None:
    """Say whether the drain lock can be taken now (then exit, releasing it)."""
    store = store_at(args.root)
    emit({"locked": store.try_lock_drain()})


def _other_process_can_lock(root: str) -> bool:
    out = subprocess.run(
        [sys.executable, __file__, "try-drain", root],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)["locked"]


def scenario_fork(args: argparse.Namespace) -> None:
    """Fork while holding the drain lock; report what parent and child observe."""
    store = store_at(args.root)
    store.append([entry("/parent/before")])
    assert store.try_lock_drain()
    parent_owner = store.owner

    def body() -> dict:
        child = {
            "owner_changed": store.owner != parent_owner,
            "holds_after_fork": store.drain_locked,
            "try_lock": store.try_lock_drain(),
        }
        seqs = store.append([entry("/child")])
        pending = store.pending()
        child["child_seq"] = seqs[0]
        child["sees_parent_entry"] = any(e.path == "/parent/before" for e in pending)
        child["child_entry_owner_is_new"] = next(
            e.owner for e in pending if e.path == "/child"
        ) not in (parent_owner,)
        store.close()
        return child

    status, child = in_child(args.root, body)
    result = {"child": child, "child_status": status}
    # The child closed its copy of the lock descriptor: the parent still holds the lock.
    result["parent_holds"] = store.drain_locked
    result["other_can_lock_while_parent_holds"] = _other_process_can_lock(args.root)
    result["parent_seq_after_fork"] = store.append([entry("/parent/after")])[0]
    store.unlock_drain()
    result["other_can_lock_after_unlock"] = _other_process_can_lock(args.root)
    result["paths"] = [e.path for e in store.pending()]
    emit(result)


def scenario_fork_busy(args: argparse.Namespace) -> None:
    """Fork repeatedly while other threads append; every child appends and exits."""
    store = store_at(args.root)
    stop = []

    def writer(i: int) -> int:
        n = 0
        while not stop:
            store.append([entry(f"/w{i}/{n}")])
            n += 1
        return n

    done = _allocate_lock()
    done.acquire()
    counts: list = []

    def run_writers() -> None:
        try:
            counts.extend(run_threads(writer, 4))
        finally:
            done.release()

    _start_thread(run_writers, ())
    children = 0
    for f in range(args.count):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                store.append([entry(f"/fork/{f}")])
                code = 0
            finally:
                os._exit(code)
        _, status = _waitpid(pid, 0)
        children += status == 0
    stop.append(True)
    if not done.acquire(timeout=120):
        raise RuntimeError("writers did not stop")
    emit({"children_ok": children, "written": sum(counts), "stored": store.stats().pending})


def scenario_fork_first_use(args: argparse.Namespace) -> None:
    """In a forked child, 8 greenlets, then 8 threads, use a store at once: it reattaches once."""
    from deeplake_sdk.journal import store as store_module

    store = store_at(args.root)
    other = JournalStore.open(args.root, ORIGIN, ORG, WS)  # a second handle, for greenlets
    store.append([entry("/parent")])

    def body() -> dict:
        import gevent

        jobs = [gevent.spawn(lambda: other.stats().pending) for _ in range(8)]
        gevent.joinall(jobs, timeout=60, raise_error=True)
        arrived: list[int] = []

        def use(i: int) -> int:
            arrived.append(i)
            while len(arrived) < 8:  # all threads start together
                _sleep(0.0005)
            return store.stats().pending

        seen = run_threads(use, 8)
        backend = store_module._backends.get(str(store.path))
        refs = None if backend is None else backend.refs
        store.close()
        other.close()
        greenlets = [job.value for job in jobs]
        return {
            "greenlets": greenlets,
            "seen": seen,
            "refs": refs,
            "left": len(store_module._backends),
        }

    status, child = in_child(args.root, body)
    emit({"child": child, "status": status, "parent": store.stats().pending})


def scenario_memory_fork(args: argparse.Namespace) -> None:
    """The null journal across fork: the child starts empty, the parent keeps its entries."""
    store = JournalStore.memory()
    store.append([entry("/parent")])

    def body() -> dict:
        before = [e.path for e in store.pending()]
        store.append([entry("/child")])
        after = [e.path for e in store.pending()]
        return {"before": before, "after": after, "lock": store.try_lock_drain()}

    _, child = in_child(args.root, body)
    emit({"child": child, "parent": [e.path for e in store.pending()]})


def scenario_threads(args: argparse.Namespace) -> None:
    """8 native threads, each running greenlets and plain calls, plus the main thread's."""
    import gevent

    store = store_at(args.root)
    greenlets, per = 5, 20

    def in_thread(i: int) -> list[int]:
        def one(j: int) -> list[int]:
            return [store.append([entry(f"/t{i}/g{j}", i=i, j=j, k=k)])[0] for k in range(per)]

        jobs = [gevent.spawn(one, j) for j in range(greenlets)]
        gevent.joinall(jobs, raise_error=True)
        seqs = [s for job in jobs for s in job.value]
        seqs += [store.append([entry(f"/t{i}/plain", i=i, k=k)])[0] for k in range(per)]
        return seqs

    main_jobs = [
        gevent.spawn(lambda j=j: [store.append([entry(f"/main/{j}", k=k)])[0] for k in range(per)])
        for j in range(greenlets)
    ]
    per_thread = run_threads(in_thread, 8)
    gevent.joinall(main_jobs, raise_error=True)
    seqs = [s for t in per_thread for s in t] + [s for job in main_jobs for s in job.value]
    pending = store.pending(limit=100000, max_bytes=1 << 40)
    order_ok = True
    last: dict[str, int] = {}
    for e in pending:  # per path, k increases with seq (each writer is sequential)
        k = e.meta["k"]
        if last.get(e.path, -1) >= k:
            order_ok = False
        last[e.path] = k
    emit(
        {
            "returned": len(seqs),
            "unique": len(set(seqs)),
            "stored": len(pending),
            "stored_match": sorted(seqs) == [e.seq for e in pending],
            "order_ok": order_ok,
            "transactions": store.counters.transactions,
            "patched": _monkey.is_module_patched("threading"),
        }
    )


def scenario_signals(args: argparse.Namespace) -> None:
    """Append from a signal handler and from atexit while another thread is appending."""
    store = store_at(args.root)
    handled = []

    def handler(signum, frame) -> None:
        store.append([entry(f"/signal/{len(handled)}")])
        handled.append(signum)

    signal.signal(signal.SIGUSR1, handler)
    atexit.register(lambda: store.append([entry("/atexit")]))

    def background() -> None:
        n = 0
        while True:  # still appending when atexit runs and the process exits
            store.append([entry(f"/bg/{n}")])
            n += 1

    _start_thread(background, ())
    for k in range(args.count):
        store.append([entry(f"/main/{k}")])
        os.kill(os.getpid(), signal.SIGUSR1)  # arrives while main is appending, or between
    for k in range(20):  # let the last signals be handled
        store.append([entry(f"/tail/{k}")])
    emit({"handled": len(handled)})


SCENARIOS = {
    "append": scenario_append,
    "hold-drain": scenario_hold_drain,
    "event-unsent": scenario_event_unsent,
    "try-drain": scenario_try_drain,
    "fork": scenario_fork,
    "fork-busy": scenario_fork_busy,
    "fork-first-use": scenario_fork_first_use,
    "memory-fork": scenario_memory_fork,
    "threads": scenario_threads,
    "signals": scenario_signals,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("root")
    parser.add_argument("--patched", action="store_true")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--tag", default="p")
    parser.add_argument("--origin", default=ORIGIN, help="journal of this origin")
    parser.add_argument("--org", default=ORG, help="journal of this org")
    parser.add_argument("--ws", default=WS, help="journal of this workspace")
    args = parser.parse_args()
    SCENARIOS[args.scenario](args)


if __name__ == "__main__":
    main()
