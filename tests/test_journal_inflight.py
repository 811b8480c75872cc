"""Batches of the journal applied side by side: which entries may start (pure), and the effect
on the real server (a write waiting out the read lag does not hold back other files)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from drain_holder import drain_held
from waiting import poll

from deeplake_sdk import DeeplakeFs
from deeplake_sdk.journal import Entry
from deeplake_sdk.journal.drain import Consistency, Outcome
from deeplake_sdk.journal.inflight import InFlight

PROC = str(Path(__file__).with_name("journal_proc.py"))


def entry(seq: int, op: str = "put", path: str = "/a", table: str = "memory") -> Entry:
    return Entry(seq, op, table, path, b"", {}, "me", 0.0, 0, "pending", None)


def seqs(entries: list[Entry]) -> list[int]:
    return [e.seq for e in entries]


def test_nothing_in_flight_admits_everything_in_order():
    flight = InFlight()
    batch = [entry(1), entry(2, "event", "/s"), entry(3, "rename"), entry(4, path="/b")]
    assert seqs(flight.admit(batch)) == [1, 2, 3, 4]


def test_a_file_in_flight_cuts_the_next_batch_before_its_first_operation():
    flight = InFlight()
    flight.start(flight.admit(flight.look([entry(1, path="/a"), entry(2, "append", "/b")])))
    assert flight.upto == 2 and flight.held == []
    later = [entry(3, path="/c"), entry(4, "event", "/s"), entry(5, "append", "/b"), entry(6)]
    assert seqs(flight.admit(later)) == [3, 4]  # /b and /a are in flight: their entries wait
    assert flight.admit([entry(7, "delete", "/a")]) == []
    # the same path in another table is another file
    assert seqs(flight.admit([entry(8, path="/a", table="notes")])) == [8]


def test_entries_of_free_files_go_past_a_file_in_flight_and_each_file_keeps_its_order():
    flight = InFlight()
    first = flight.start([entry(1, path="/a")])
    window = [
        entry(2, path="/a"),
        entry(3, path="/b"),
        entry(4, "append", "/a"),
        entry(5, path="/c"),
    ]
    batch = flight.admit(flight.look(window))
    assert seqs(batch) == [3, 5]
    flight.start(batch)
    assert flight.upto == 5  # every entry was read: the next look begins after them
    assert seqs(flight.held) == [2, 4]  # kept, not read again
    assert flight.admit(flight.look([])) == []  # /a still in flight
    assert flight.admit(window) == []  # 3 and 5 already started, 2 and 4 wait for /a
    flight.finish(first)
    batch = flight.admit(flight.look([entry(6, path="/d")]))
    assert seqs(batch) == [2, 4, 6]  # the file's operations, in their order, then the new one
    flight.start(batch)
    assert flight.upto == 6 and flight.held == []


def test_a_barrier_waits_for_every_entry_before_it():
    flight = InFlight()
    first = flight.start([entry(1, path="/a")])
    window = [entry(2, path="/a"), entry(3, path="/b"), entry(4, "rename", "/d"), entry(5)]
    batch = flight.admit(flight.look(window))
    assert seqs(batch) == [3]  # not the rename (entry 2 waits), nor anything after it
    second = flight.start(batch)
    flight.finish(first)
    assert seqs(flight.admit(flight.look([]))) == [2]  # the rename also waits for entry 3
    flight.finish(second)
    batch = flight.admit(flight.look([]))
    assert seqs(batch) == [2, 4, 5]  # then it goes, after entry 2, in one batch
    flight.start(batch)
    assert flight.full and flight.upto == 5 and flight.held == []


def test_the_events_of_a_session_in_flight_wait_for_it():
    flight = InFlight()
    flight.start([entry(1, "event", "/s1", "sessions")])
    later = [entry(2, "event", "/s2", "sessions"), entry(3, "event", "/s1", "sessions")]
    assert seqs(flight.admit(later)) == [2]  # another session's events go on


def test_a_barrier_starts_alone_and_holds_everything_after_it():
    flight = InFlight()
    token = flight.start([entry(1, path="/a")])
    assert seqs(flight.admit([entry(2, path="/b"), entry(3, "rename_tree", "/d")])) == [2]
    flight.finish(token)
    barrier = flight.start([entry(3, "rename_tree", "/d"), entry(4, path="/x")])
    assert flight.full
    assert flight.admit([entry(5, path="/y")]) == []
    flight.finish(barrier)
    assert seqs(flight.admit([entry(5, path="/y")])) == [5]


def test_depth_bounds_the_batches_in_flight_and_finish_frees_their_files():
    flight = InFlight(depth=2)
    first = flight.start([entry(1, path="/a")])
    flight.start([entry(2, path="/b")])
    assert flight.full and len(flight) == 2
    assert flight.admit([entry(3, path="/c")]) == []
    flight.finish(first)
    assert seqs(flight.admit([entry(3, path="/a")])) == [3]


def test_restart_takes_the_oldest_again_only_when_nothing_is_in_flight():
    flight = InFlight()
    token = flight.start([entry(5)])
    with pytest.raises(RuntimeError):
        flight.restart()
    flight.finish(token)
    flight.restart()
    assert flight.upto == 0 and flight.held == []
    with pytest.raises(ValueError):
        flight.start([])
    with pytest.raises(ValueError):
        InFlight(depth=0)


def test_random_sequences_keep_every_file_in_order_and_barriers_alone():
    """Batches admitted from random journals and finished in random order, checked step by step."""
    for trial in range(400):
        rng = random.Random(trial)
        journal = [
            entry(s, "rename", rng.choice(["/a", "/b"]))
            if rng.random() < 0.05
            else entry(
                s, rng.choice(["put", "append", "event"]), rng.choice(["/a", "/b", "/c", "/d"])
            )
            for s in range(1, rng.randint(2, 40))
        ]
        pending = {e.seq: e for e in journal}
        flight, running, done = InFlight(depth=rng.randint(1, 4)), {}, set()
        window_size = rng.randint(1, 10)
        while pending:
            while not flight.full:
                fresh = [pending[s] for s in sorted(pending) if s > flight.upto][:window_size]
                batch = flight.admit(flight.look(fresh))
                if not batch:
                    break
                in_flight = {e.path for b in running.values() for e in b}
                for e in batch:
                    earlier = [
                        o.seq for o in journal[: e.seq - 1] if o.op == "rename" or o.path == e.path
                    ]
                    if e.op == "rename":
                        earlier = [o.seq for o in journal[: e.seq - 1]]
                        assert not running, "a barrier started beside another batch"
                    else:
                        assert e.path not in in_flight, "a file in two batches at once"
                    assert all(o in done or o in seqs(batch) for o in earlier), "out of order"
                running[flight.start(batch)] = batch
            assert running, "nothing in flight and nothing admitted: stuck"
            token = rng.choice(list(running))
            flight.finish(token)
            for e in running.pop(token):
                done.add(e.seq)
                del pending[e.seq]


def test_an_outcome_tells_what_settled_early_once_and_keeps_the_rest_for_the_end():
    told: list[Outcome] = []
    outcome = Outcome(settled=told.append)
    outcome.settle(Outcome(completed=[1, 2], lanes={("memory", "/a"): None}))
    outcome.settle(Outcome())  # nothing settled: nobody is told
    outcome.completed.append(3)
    outcome.rejected[4] = "refused"
    assert [t.completed for t in told] == [[1, 2]]
    rest = outcome.remainder()
    assert (rest.completed, rest.rejected) == ([3], {4: "refused"})
    assert rest.lanes == {("memory", "/a"): None}  # every hint is written again at the end
    assert outcome.completed == [1, 2, 3]


#: The inserts into table ``slow`` fail ambiguously (a 502 before they run).
FAIL_SLOW_INSERTS = dict(profile="none", fail_pattern='^INSERT INTO "slow"', fail_status=502)


@contextmanager
def slow_and_fast(api, journal: Path) -> Iterator[tuple[DeeplakeFs, DeeplakeFs]]:
    """Two filesystems on one journal: ``slow`` (table ``slow``, a 6 s window) and ``fast``."""
    slow = DeeplakeFs(api, "slow", cache=False, journal=journal, consistency=Consistency(window=6))
    fast = DeeplakeFs(api, cache=False, journal=journal)
    try:
        slow.write_text("/ready.md", "x")
        fast.write_text("/ready.md", "x")
        fast.flush()
        slow.flush()  # both tables exist: only the inserts of the test are sent
        yield slow, fast
    finally:
        slow.close(wait=False)
        fast.close(wait=False)


def assert_fast_settles_while_slow_waits(srv, api, slow: DeeplakeFs, fast: DeeplakeFs) -> None:
    fast.flush()
    # confirmed while the slow write still waits: it was sent only once so far
    assert srv.stats()["injected"].get("pattern", 0) == 1
    assert api.query("SELECT summary FROM memory WHERE path = '/b.md'") == [{"summary": "fast"}]
    srv.set_faults(profile="none")
    slow.flush()
    assert api.query("SELECT summary FROM slow WHERE path = '/a.md'") == [{"summary": "slow"}]


def test_a_write_waiting_out_the_read_lag_does_not_hold_back_other_files(srv, api, tmp_path):
    """The insert of one file fails ambiguously (502): its drain waits the consistency window
    before it may resend. A file journaled meanwhile is confirmed before that resend."""
    with slow_and_fast(api, tmp_path / "journal") as (slow, fast):
        srv.set_faults(**FAIL_SLOW_INSERTS)
        slow.write_text("/a.md", "slow")
        poll(lambda: srv.stats()["injected"].get("pattern", 0) >= 1)
        fast.write_text("/b.md", "fast")
        assert_fast_settles_while_slow_waits(srv, api, slow, fast)


def test_a_file_confirmed_is_settled_before_a_file_of_its_batch_that_waits(
    srv, api, workspace, tmp_path
):
    """Both writes are journaled while another process holds the drain lock, so that one batch
    takes them: the slow file's insert fails ambiguously (502) and waits the window, the fast
    file is confirmed in the first round, and its writer is told then, not at the batch's end."""
    journal = tmp_path / "journal"
    with slow_and_fast(api, journal) as (slow, fast):
        with drain_held(journal, srv, workspace):
            srv.set_faults(**FAIL_SLOW_INSERTS)
            slow.write_text("/a.md", "slow")
            fast.write_text("/b.md", "fast")
        # the holder exited: this process drains both in one batch
        assert_fast_settles_while_slow_waits(srv, api, slow, fast)
