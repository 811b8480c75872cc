"""The consistency window follows the read lag the service shows: the policy as a pure value,
then on the real server (writes that show at once shorten it, a lagging service keeps it)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from consistency import SHORT_WINDOW
from waiting import poll

from deeplake_sdk import DeeplakeApi, DeeplakeFs, SessionLog
from deeplake_sdk.journal import Consistency
from deeplake_sdk.journal.drain import Catalog, Drain, Row, _Run
from deeplake_sdk.journal.lag import ObservedLag
from deeplake_sdk.journal.plan import Lane, Op
from deeplake_sdk.journal.store import journal_path, list_entries

WORKER = str(Path(__file__).with_name("journal_worker.py"))
PROC = str(Path(__file__).with_name("journal_proc.py"))


def test_the_whole_window_until_enough_changes_were_seen():
    policy = Consistency(window=2.0, min_samples=4)
    assert policy.effective_window([]) == 2.0
    assert policy.effective_window([0.01, 0.01, 0.01]) == 2.0
    assert policy.effective_window([0.01] * 4) == 0.25  # the floor


def test_the_window_is_a_margin_over_the_longest_lag_seen_within_its_bounds():
    policy = Consistency(window=2.0, min_samples=3, lag_factor=4.0, min_window=0.1)
    assert policy.effective_window([0.05, 0.1, 0.02]) == pytest.approx(0.4)
    assert policy.effective_window([0.05, 0.3, 0.02]) == pytest.approx(1.2)
    assert policy.effective_window([0.05, 0.9, 0.02]) == 2.0  # never past the window


def test_a_fixed_window_ignores_what_was_seen():
    policy = Consistency(window=3.0, adaptive=False, min_samples=1)
    assert policy.effective_window([0.0] * 100) == 3.0


def test_a_wait_polls_from_the_first_interval_doubling_up_to_the_longest():
    polls = Consistency(first_poll=0.05, max_poll=0.4).polls()
    assert [next(polls) for _ in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]


def test_one_slow_change_among_the_latest_keeps_the_window_long():
    lag, policy = ObservedLag(keep=8), Consistency(window=2.0, min_samples=4)
    for _ in range(8):
        lag.observe(0.01)
    lag.observe(0.4)
    assert lag.window(policy) == pytest.approx(1.6)
    for _ in range(7):
        lag.observe(0.01)
    assert lag.window(policy) == pytest.approx(1.6)  # still among the latest 8
    lag.observe(0.01)
    assert lag.window(policy) == 0.25


@pytest.mark.parametrize(
    "bad",
    [dict(min_window=-1), dict(lag_factor=0.5), dict(min_samples=0), dict(window=-1)],
)
def test_an_impossible_policy_is_refused(bad):
    with pytest.raises(ValueError):
        Consistency(**bad)


def _wait_for_every_commit(srv) -> None:
    """Until the server committed every write it answered (read lag): a late copy shows."""
    pending = lambda: srv.stats()["db_pool"]["pending_commits"]["pending"]  # noqa: E731
    poll(lambda: pending() == 0, "every write the server answered to commit")


def _copies_of_event(srv, fs: DeeplakeFs, event_id: str) -> int:
    """Rows with the event's id once every write the server answered has committed; each is
    dated as the event (as the plugin's rows are), whichever copy was kept."""
    _wait_for_every_commit(srv)
    rows = fs.api.query(
        f'SELECT creation_date, last_update_date FROM "{fs.sessions_table}" WHERE id = $1',
        [event_id],
    )
    assert all(r["creation_date"] == r["last_update_date"] for r in rows)
    return len(rows)


def _write_and_flush(fs: DeeplakeFs, n: int, prefix: str) -> None:
    for i in range(n):
        fs.write_text(f"/{prefix}{i}.md", f"note {i}")
        fs.flush()


def test_writes_that_show_at_once_shorten_the_window_and_a_lag_lengthens_it(srv, api, tmp_path):
    policy = Consistency(window=30.0, min_samples=8)
    fs = DeeplakeFs(api, cache=False, journal=tmp_path / "j", consistency=policy)
    try:
        assert fs.journal.lag_window == 30.0  # nothing seen yet
        _write_and_flush(fs, 8, "now")
        assert fs.journal.lag_window < 30.0
        srv.set_faults(profile="none", read_lag_ms=400)
        _write_and_flush(fs, 2, "later")
        # each change was answered 0.4 s before it could show: the window covers that, with
        # a margin (4 x what was seen; answer and read timings may shave a few ms off 0.4 s)
        assert fs.journal.lag_window >= 4 * 0.4 * 0.95
    finally:
        srv.set_faults(profile="none")
        fs.close(wait=False)


def test_a_write_lost_before_it_ran_is_resent_after_the_learnt_window(srv, api, tmp_path):
    """With a 60 s window a 502 on the insert (which did not run) would hold the flush past
    its 20 s timeout; after the service showed writes at once, the resend comes in time, and
    the file is stored once."""
    policy = Consistency(window=60.0, min_samples=8)
    fs = DeeplakeFs(api, cache=False, journal=tmp_path / "j", consistency=policy)
    try:
        _write_and_flush(fs, 8, "warm")
        srv.set_faults(profile="none", fail_pattern='^INSERT INTO "memory"', fail_status=502)
        fs.write_text("/lost.md", "once")
        poll(lambda: srv.stats()["injected"].get("pattern", 0) >= 1)
        srv.set_faults(profile="none")
        fs.flush(timeout=20.0)
        rows = api.query("SELECT summary FROM memory WHERE path = '/lost.md'")
        assert rows == [{"summary": "once"}]
        assert fs.journal.lag_window < 60.0
    finally:
        srv.set_faults(profile="none")
        fs.close(wait=False)


@pytest.mark.parametrize("write", ["write_text", "append_text"])
def test_a_lag_grown_past_the_window_leaves_no_twin_of_a_create_sent_again(
    srv, api, tmp_path, write
):
    """Writes showed at once, so the window is short (0.2 s); then the service takes 1 s.

    The create is taken as lost after the window and sent again; the first one shows, alone,
    for the 0.2 s until the second one does: the drain must wait for that twin and merge it,
    not confirm the file while a second row of it is still to come.
    """
    fs = DeeplakeFs(api, cache=False, journal=tmp_path / "j", consistency=SHORT_WINDOW)
    try:
        _write_and_flush(fs, 1, "warm")
        assert fs.journal.lag_window == 0.2
        srv.set_faults(profile="none", read_lag_ms=1000)
        getattr(fs, write)("/late.md", "once")
        fs.flush(timeout=30.0)
        _wait_for_every_commit(srv)
        rows = api.query("SELECT summary FROM memory WHERE path = '/late.md'")
        assert rows == [{"summary": "once"}]
        assert fs.journal.lag_window > 0.2  # the late create, seen with its twin, taught it
    finally:
        srv.set_faults(profile="none")
        fs.close(wait=False)


@contextlib.contextmanager
def _watching(srv, workspace, like: str) -> Iterator[list[int]]:
    """Count the distinct paths matching ``like`` every 20 ms, as another reader, meanwhile."""
    count = f"SELECT count(DISTINCT path) AS n FROM memory WHERE path LIKE '{like}'"
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        reader = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
        try:
            while not stop.is_set():
                seen.append(reader.query(count)[0]["n"])
                stop.wait(0.02)
        finally:
            reader.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join(30)


def _never_vanished(seen: list[int], total: int) -> None:
    """Once ``total`` paths showed, every later sample shows them all."""
    shown = seen.index(total)
    assert seen[shown:] == [total] * (len(seen) - shown), seen


def test_an_append_create_sent_again_keeps_the_file_in_sight_of_other_readers(
    srv, api, workspace, tmp_path
):
    """An append's create taken as lost after the 0.2 s window is sent again, and both copies
    apply (the lag is 1 s). Once the file shows, other readers must keep seeing it while the
    surplus copy is removed (deleting every copy and creating the file once more hid it for
    about one lag)."""
    fs = DeeplakeFs(api, cache=False, journal=tmp_path / "j", consistency=SHORT_WINDOW)
    try:
        _write_and_flush(fs, 1, "warm")
        srv.set_faults(profile="none", read_lag_ms=1000)
        with _watching(srv, workspace, "/late.md") as seen:
            fs.append_text("/late.md", "once")
            fs.flush(timeout=30.0)
            _wait_for_every_commit(srv)
            poll(lambda: len(seen) > 2 and seen[-1] == 1, "the watcher to see the file")
    finally:
        srv.set_faults(profile="none")
        fs.close(wait=False)
    rows = api.query("SELECT summary FROM memory WHERE path = '/late.md'")
    assert rows == [{"summary": "once"}]
    _never_vanished(seen, 1)


def test_copies_of_a_create_a_later_write_changed_are_left_to_that_write():
    """The decision alone: two rows under one id, both rewritten by a later write. Deleting
    them would delete that write (the guarded delete would not, and the lane would resend
    until it gave up): ours is superseded, and the later write's drain merges the copies."""
    drain = _offline_drain()
    op = Op("put", "memory", "/f.md", b"ours", {"stamp": "2026-01-01T00:00:00Z"}, [1], False)
    run = _Run(Lane("memory", "/f.md", [op]), None)
    later = Row("r0", 6, "2026-01-01T00:00:09Z", "2026-01-01T00:00:00Z")
    assert drain._check(run, [later, later]) == "ok"
    older = Row("r0", 4, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    assert drain._check(run, [older, older]) == "repair"  # our own copies: merged by us


def test_another_writers_append_onto_the_copies_of_a_create_sent_again_is_kept(
    srv, api, workspace, tmp_path
):
    """Another writer appends once the first copy of a create sent again shows: its append
    lands on the copies committed by then, and the copies still to come are bare. Deleting
    the surplus copies must leave its bytes, acknowledged to it, in the one row kept."""
    from deeplake_sdk import DeeplakeApi

    fs = DeeplakeFs(api, cache=False, journal=tmp_path / "j", consistency=SHORT_WINDOW)
    other_api = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    other = DeeplakeFs(other_api, cache=False, journal=tmp_path / "other")
    try:
        _write_and_flush(fs, 1, "warm")
        srv.set_faults(profile="none", read_lag_ms=1000)
        fs.append_text("/late.md", "once")
        poll(lambda: api.query("SELECT id FROM memory WHERE path = '/late.md'"))
        other.append_text("/late.md", "+two")
        other.flush(timeout=30.0)
        fs.flush(timeout=30.0)
        _wait_for_every_commit(srv)
        rows = api.query("SELECT summary FROM memory WHERE path = '/late.md'")
        assert rows == [{"summary": "once+two"}]
    finally:
        srv.set_faults(profile="none")
        fs.close(wait=False)
        other.close(wait=False)
        other_api.close()


def test_copies_of_a_create_under_one_id_another_writer_appended_to_are_all_kept():
    """The decision alone, on copies earlier versions sent under one row id (no ``sent_ids``
    recorded): every copy shows the other writer's bytes too, and no statement can delete one
    of two identical rows: the surplus copy stays, with every byte."""
    drain = _offline_drain()
    meta = {"stamp": "2026-01-01T00:00:00Z", "append_id": "a1", "create": True}
    op = Op("append", "memory", "/late.md", b"once", meta, [1], False)
    run = _Run(Lane("memory", "/late.md", [op]), None)
    run.inserted = "a1"
    grown = Row("a1", 8, "2026-01-01T00:00:05Z", "2026-01-01T00:00:00Z")
    drain._repair_append(run, [grown, grown])  # sends nothing (the drain has no client)
    assert run.op is None and run.done == [1]


_INSERT_ROW = (
    "INSERT INTO memory (id, path, filename, summary, size_bytes, creation_date, "
    "last_update_date) VALUES ($1, '/late.md', 'late.md', $2, $3, $4, $5)"
)
_STAMP = "2026-01-01T00:00:00.000Z"


def _repair_copies(api, tmp_path, copies: list[tuple[str, str, str]]) -> tuple[_Run, list]:
    """Store ``copies`` (id, text, last change) of an append's create of ``once``, all sent by
    this lane (the latest last), and let the drain repair the lane on what it reads."""
    fs = DeeplakeFs(api, cache=False, journal=tmp_path / "j")
    try:
        for row_id, text, date in copies:
            params = [row_id, text, len(text.encode()), _STAMP, date]
            api.execute(_INSERT_ROW, params, idempotent=True)
        ids = [c[0] for c in copies]
        meta = {"stamp": _STAMP, "append_id": ids[0], "create": True, "sent_ids": ids}
        op = Op("append", "memory", "/late.md", b"once", meta, [1], False)
        run = _Run(Lane("memory", "/late.md", [op]), None)
        run.inserted = ids[-1]
        drain = fs.journal._drain
        drain._repair_append(run, drain._rows([("memory", "/late.md")])[("memory", "/late.md")])
    finally:
        fs.close(wait=False)
    rows = api.query("SELECT id, summary FROM memory WHERE path = '/late.md' ORDER BY id")
    return run, [(r["id"], r["summary"]) for r in rows]


def test_the_copy_of_a_create_another_writer_appended_to_is_kept_and_the_others_dropped(
    api, tmp_path
):
    """Three copies of an append's create, each with an id of its own; another writer appended
    to the second while it was the one readers picked. That one holds every byte: it stays,
    the copies nobody changed go, and the lane is checked again once their deletion shows."""
    later = "2026-01-01T00:00:05.000Z"
    copies = [("a1", "once", _STAMP), ("a1-1", "once+two", later), ("a1-2", "once", _STAMP)]
    run, rows = _repair_copies(api, tmp_path, copies)
    assert rows == [("a1-1", "once+two")]
    assert run.dropping == {"a1", "a1-2"} and run.op is not None and run.row.id == "a1-1"


def test_bytes_others_appended_to_two_copies_of_a_create_are_folded_into_one(api, tmp_path):
    """Two copies were appended to: the one readers pick stays, and the other's bytes past
    the create move onto it before it is deleted."""
    later = "2026-01-01T00:00:05.000Z"
    copies = [("a1", "once+two", later), ("a1-1", "once+three", later)]
    run, rows = _repair_copies(api, tmp_path, copies)
    assert rows == [("a1", "once+two+three")]
    assert run.dropping == {"a1-1"}


def _offline_drain() -> Drain:
    """A drain whose decisions are asked directly (it is never given entries to send)."""
    return Drain(
        None,
        Catalog(lambda table, kind: frozenset()),
        SHORT_WINDOW,
        attempt=lambda seqs, meta: None,
        lanes=lambda keys: {},
    )


def test_a_create_resent_into_a_file_its_first_copy_made_waits_for_the_other_copies():
    """The decision alone (no service): three copies of a create were sent, the last one found
    the path taken (the first copy had just shown). One row shows: the lane waits until the
    copies still in flight could have shown (2 x the 1 s the first took, after the last
    create), instead of confirming the file with two copies to come."""
    drain = _offline_drain()
    op = Op("put", "memory", "/late.md", b"once", {"stamp": "2026-01-01T00:00:00Z"}, [1], True)
    run = _Run(Lane("memory", "/late.md", [op]), None)
    run.answered(100.0)  # the first copy
    for when in (100.3, 100.6):  # not shown within the window: sent again
        run.recreating()
        run.answered(when)
        run.created = when
    run.skipped, run.inserted = True, None  # the third found the path taken
    run.answered(101.0)
    run.created = 101.0
    rows = [Row("r0", 4, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")]
    assert drain._late_copy(run, rows, asked=101.01, answered=101.02)
    assert drain._late_copy(run, rows, asked=102.9, answered=102.91)
    assert not drain._late_copy(run, rows, asked=103.1, answered=103.11)


def test_a_write_whose_creates_an_earlier_drain_sent_waits_for_them_then_names_its_own_apart():
    """The decisions alone: two creates of a write were sent by an earlier drain (ids
    recorded). The lane sends nothing until both show or the window (5 s here) has passed;
    then it is checked at once, and a create it sends gets an id of its own."""
    drain = _offline_drain()
    meta = {"stamp": "2026-01-01T00:00:00Z", "row_id": "r", "sent_ids": ["r", "r-1"]}
    op = Op("put", "memory", "/f.md", b"ours", meta, [1], True)
    run = _Run(Lane("memory", "/f.md", [op]), None)
    assert run.await_earlier_copies() and run.awaiting == {"r", "r-1"}
    now = run.acked
    first = Row("r", 4, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    assert drain._awaits(run, [first], asked=now + 1.0)  # "r-1" may still show
    assert not drain._awaits(run, [first], asked=now + 5.1)  # it never will
    assert drain._check(run, [first]) == "ok"
    assert not run.await_earlier_copies()  # looked for once per operation
    run = _Run(Lane("memory", "/f.md", [op]), None)
    assert run.await_earlier_copies()
    second = Row("r-1", 4, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    assert not drain._awaits(run, [first, second], asked=run.acked)  # both shown
    assert drain._new_row(run, frozenset())["id"] == "r-2"


def test_each_create_of_an_append_is_named_apart_and_recorded_before_it_is_sent():
    """The decisions alone: a create sent again gets an id of its own, and every id is
    recorded on each entry of the group (counted as sent) before its statement goes out."""
    recorded = []
    drain = Drain(
        None,
        Catalog(lambda table, kind: frozenset()),
        SHORT_WINDOW,
        attempt=lambda seqs, meta: recorded.append((list(seqs), dict(meta))),
        lanes=lambda keys: {},
    )
    op = Op("append", "memory", "/f.md", b"x", {"stamp": _STAMP, "append_id": "a1"}, [1, 2], True)
    run = _Run(Lane("memory", "/f.md", [op]), None)
    for expected in ("a1", "a1-1"):
        row = drain._new_row(run, frozenset())
        assert row["id"] == expected
        drain._record_copies([op], [row])
    facts = {"create": True, "sent_ids": ["a1", "a1-1"], "group": 1, "members": 2}
    assert recorded[-1] == ([1, 2], {1: facts, 2: facts})


@pytest.mark.parametrize("sent_ids", [None, ["a1", "a1-1"]])
def test_an_append_create_resent_into_its_own_first_copy_does_not_append_again(sent_ids):
    """The decision alone: an append's create was sent again (as ``a1-1``; by earlier
    versions, under the same id) and found the path taken by its own first copy. That is the
    create applied, not another writer's file to append to (which would store the bytes
    twice)."""
    drain = _offline_drain()
    meta = {"stamp": "2026-01-01T00:00:00Z", "append_id": "a1", "create": True}
    if sent_ids:
        meta["sent_ids"] = sent_ids
    op = Op("append", "memory", "/late.md", b"once", meta, [1], False)
    run = _Run(Lane("memory", "/late.md", [op]), None)
    run.skipped, run.inserted = True, None
    mine = Row("a1", 4, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    assert drain._check(run, [mine]) == "ok"
    assert run.inserted == "a1"
    theirs = Row("b2", 7, "2026-01-01T00:00:01Z", "2026-01-01T00:00:01Z")
    run.skipped, run.inserted = True, None
    assert drain._check(run, [theirs]) == "repair"  # another writer's file: append to it


def test_an_event_inserted_again_after_a_lost_answer_and_a_grown_lag_is_stored_once(
    srv, api, tmp_path
):
    fs = DeeplakeFs(api, cache=False, journal=tmp_path / "j", consistency=SHORT_WINDOW)
    log = SessionLog(api, "s1", user="u", project="p", journal=tmp_path / "j")
    try:
        assert log.journal is fs.journal
        _write_and_flush(fs, 1, "warm")
        assert fs.journal.lag_window == 0.2
        # the insert runs, its answer is lost, and it shows only after 1 s
        srv.set_faults(profile="none", read_lag_ms=1000, p_commit_fail=1.0, max_faults=1)
        event_id = log.log({"type": "prompt", "text": "hello"})
        log.flush(timeout=30.0)
        assert _copies_of_event(srv, fs, event_id) == 1
    finally:
        srv.set_faults(profile="none")
        fs.close(wait=False)


def _worker(srv, workspace, journal: Path, *args: str) -> subprocess.Popen:
    """``tests/journal_worker.py`` (plain) on ``journal``, driven through its stdin and stdout."""
    where = [srv.url, srv.token, srv.org, workspace, str(journal)]
    proc = subprocess.Popen(
        [sys.executable, WORKER, *where, "plain", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    return proc


def test_a_process_resuming_an_event_a_killed_one_sent_again_leaves_one_copy(
    srv, api, workspace, tmp_path
):
    """The killed process sent the event, lost its answer, sent it again after its 0.2 s window
    (a 1 s lag hid the first copy) and was killed before either showed: the copies it recorded
    in the journal let the next process keep one."""
    journal = tmp_path / "j"
    proc = _worker(srv, workspace, journal, "event_then_sleep", "60")
    try:
        assert proc.stdout.readline().strip() == "ready"
        srv.set_faults(profile="none", read_lag_ms=1000, p_commit_fail=1.0, max_faults=1)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        event_id = proc.stdout.readline().strip()
        file = journal_path(journal, srv.url, srv.org, workspace)
        sent_again = lambda: any("copies" in e.meta for e in list_entries(file))  # noqa: E731
        poll(sent_again, "the worker to send the event again")
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    fs = DeeplakeFs(api, cache=False, journal=journal)
    try:
        assert not fs.journal.wait_for(fs.journal.overlay.seqs(), 60)
        assert _copies_of_event(srv, fs, event_id) == 1
    finally:
        srv.set_faults(profile="none")
        fs.close(wait=False)


def _killed_after_its_create_was_sent(srv, workspace, journal: Path, op: str, steps: int) -> None:
    """Run the worker's ``op`` under a 1 s lag; once the create of its file was answered (the
    server holds its commit), go through the ``steps`` that follow, then SIGKILL it."""
    proc = _worker(srv, workspace, journal, op, *(["3", "60"] if steps == 1 else ["60"]))
    try:
        assert proc.stdout.readline().strip() == "ready"
        srv.set_faults(profile="none", read_lag_ms=1000)
        for step in range(steps):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() in ("written", "deleted")
            if step == 0:
                held = lambda: srv.stats()["db_pool"]["pending_commits"]["pending"] > 0  # noqa: E731
                poll(held, "the worker's create to be answered")
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]


def _resume(srv, fs: DeeplakeFs, expected: int) -> None:
    """Take over what the killed process left (``expected`` entries), send it, and wait until
    the server committed every write it answered."""
    seqs = fs.journal.adopt_all()
    assert len(seqs) == expected
    assert not fs.journal.wait_for(seqs, 60)
    _wait_for_every_commit(srv)


def test_a_process_resuming_writes_a_killed_one_sent_waits_for_them_instead_of_sending_again(
    srv, api, workspace, tmp_path
):
    """The killed process's creates were answered, not yet shown. Created again by the next
    process they would show twice under one id, and the twins would have to be deleted and
    the files created once more: gone for other readers meanwhile. The creates it recorded
    let the next process wait for them: the files, once shown, never vanish."""
    journal = tmp_path / "j"
    fs = DeeplakeFs(api, cache=False, journal=journal)  # open (layout known) before the lag
    try:
        _killed_after_its_create_was_sent(srv, workspace, journal, "write_then_sleep", 1)
        with _watching(srv, workspace, "/k/%") as seen:
            _resume(srv, fs, 3)
    finally:
        srv.set_faults(profile="none")
        fs.close(wait=False)
    rows = api.query("SELECT path FROM memory WHERE path LIKE '/k/%' ORDER BY path")
    assert [r["path"] for r in rows] == ["/k/0.md", "/k/1.md", "/k/2.md"]
    _never_vanished(seen, 3)


def test_a_delete_of_a_file_whose_create_a_killed_process_sent_waits_for_the_create(
    srv, api, workspace, tmp_path
):
    """The killed process wrote a file (its create answered, not yet shown), then deleted it
    (not sent). Sent at once, the delete finds nothing, and the create shows after it."""
    journal = tmp_path / "j"
    fs = DeeplakeFs(api, cache=False, journal=journal)
    try:
        _killed_after_its_create_was_sent(srv, workspace, journal, "write_delete_then_sleep", 2)
        _resume(srv, fs, 2)
        assert api.query("SELECT path FROM memory WHERE path = '/k/0.md'") == []
    finally:
        srv.set_faults(profile="none")
        fs.close(wait=False)


def test_an_event_another_process_never_sent_is_stored_once_dated_as_the_event(
    srv, api, workspace, tmp_path
):
    """The killed process journaled the event as being sent, and never sent it: the next one
    waits the window for it, sends a (marked) copy, and dates the row as the event again."""
    journal = tmp_path / "j"
    fs = DeeplakeFs(api, cache=False, journal=journal, consistency=Consistency(window=0.5))
    try:
        log = SessionLog(api, "s1", user="u", project="p", journal=journal)
        row = log.make_row({"type": "prompt", "text": "hello"})
        where = ["--origin", srv.url, "--org", srv.org, "--ws", workspace, "--tag", log.table]
        proc = subprocess.run(
            [sys.executable, PROC, "event-unsent", str(journal), *where],
            input=json.dumps(row),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        seqs = json.loads(proc.stdout)["seqs"]
        assert fs.journal.adopt_all() == seqs  # the next process takes it over
        assert not fs.journal.wait_for(seqs, 60)
        assert _copies_of_event(srv, fs, row["id"]) == 1
    finally:
        fs.close(wait=False)
