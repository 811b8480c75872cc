"""Identical reads waiting at the same time are sent once per round, never answered stale.

The unit tests drive :class:`SharedReads` with a ``send`` that blocks on an event, so that the
order of calls is fixed by the test (no sleeps); the last test runs it on the real server.
"""

from __future__ import annotations

import threading

import gevent
import gevent.event
import pytest
from waiting import poll

from deeplake_sdk.shared_reads import SharedReads, read_key


class Sender:
    """A ``send`` whose rounds block until released; each returns ``[{"round": n}]``.

    ``fail`` is raised by every round while set, or only by the first ``fail_rounds`` rounds;
    the rounds after the first ``hold_after`` wait for ``release_later`` instead.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.release = gevent.event.Event()
        self.release_later = gevent.event.Event()
        self.fail: Exception | None = None
        self.fail_rounds: int | None = None
        self.hold_after: int | None = None

    def __call__(self) -> list[dict[str, int]]:
        self.calls += 1
        n = self.calls
        later = self.hold_after is not None and n > self.hold_after
        (self.release_later if later else self.release).wait()
        if self.fail is not None and (self.fail_rounds is None or n <= self.fail_rounds):
            raise self.fail
        return [{"round": n}]


def settle() -> None:
    """Let every runnable greenlet reach its next wait."""
    for _ in range(5):
        gevent.sleep(0)


def round_and_callers_behind(reads: SharedReads, send: Sender, n: int, again=None):
    """A round in flight (its caller's greenlet) and ``n`` callers who asked during it."""
    first = gevent.spawn(reads.read, "k", send, again)
    settle()
    later = [gevent.spawn(reads.read, "k", send, again) for _ in range(n)]
    settle()
    return first, later


def test_callers_arriving_during_a_round_share_the_next_one_and_never_its_answer():
    reads, send = SharedReads(), Sender()
    first, later = round_and_callers_behind(reads, send, 5)
    assert send.calls == 1  # they wait for the round in flight to end before sending theirs
    send.release.set()
    gevent.joinall([first, *later], raise_error=True)
    assert first.value == [{"round": 1}]
    assert [g.value for g in later] == [[{"round": 2}]] * 5
    assert send.calls == 2 and reads.sent == 2 and reads.shared == 4
    assert reads._slots == {}


def test_the_callers_of_one_round_get_the_same_value():
    reads, send = SharedReads(), Sender()
    first, later = round_and_callers_behind(reads, send, 3)
    send.release.set()
    gevent.joinall([first, *later], raise_error=True)
    assert later[0].value is later[1].value is later[2].value
    assert later[0].value is not first.value


def test_different_statements_are_not_shared():
    reads, send = SharedReads(), Sender()
    a = gevent.spawn(reads.read, read_key(("t",), "SELECT 1", []), send)
    b = gevent.spawn(reads.read, read_key(("t",), "SELECT 1", [1]), send)
    c = gevent.spawn(reads.read, read_key(("u",), "SELECT 1", []), send)
    settle()
    assert send.calls == 3
    send.release.set()
    gevent.joinall([a, b, c], raise_error=True)
    assert sorted(g.value[0]["round"] for g in (a, b, c)) == [1, 2, 3]


def test_a_failed_round_fails_each_of_its_callers_and_the_next_call_sends_again():
    reads, send = SharedReads(), Sender()
    first, later = round_and_callers_behind(reads, send, 3)
    send.fail = ValueError("refused")
    send.release.set()
    gevent.joinall([first, *later])
    assert all(isinstance(g.exception, ValueError) for g in (first, *later))
    assert send.calls == 2
    send.fail = None
    assert reads.read("k", send) == [{"round": 3}]


def test_callers_of_a_failed_round_they_did_not_send_join_one_more_round_when_told_to():
    reads, send = SharedReads(), Sender()
    send.fail, send.fail_rounds, send.hold_after = RuntimeError("unavailable"), 2, 2
    # round 1: `first`; round 2: sent by later[0], the three others wait for it
    first, later = round_and_callers_behind(reads, send, 4, again=lambda e: True)
    send.release.set()
    poll(lambda: send.calls == 3)  # the third round is in flight
    settle()
    send.release_later.set()
    gevent.joinall([first, *later])
    assert isinstance(first.exception, RuntimeError)  # senders get their round's failure
    assert isinstance(later[0].exception, RuntimeError)
    assert [g.value for g in later[1:]] == [[{"round": 3}]] * 3  # one more round, shared
    assert send.calls == 3 and reads.followed_failure == 3
    assert reads._slots == {}


def test_one_more_round_at_most_and_only_for_a_failure_worth_it():
    reads, send = SharedReads(), Sender()
    send.fail, send.hold_after = RuntimeError("unavailable"), 2
    first, later = round_and_callers_behind(reads, send, 3, again=lambda e: True)
    send.release.set()
    poll(lambda: send.calls == 3)
    settle()
    send.release_later.set()
    gevent.joinall([first, *later])
    assert all(isinstance(g.exception, RuntimeError) for g in (first, *later))
    assert send.calls == 3  # the round after the second failure is not sent

    reads, send = SharedReads(), Sender()
    send.fail = ValueError("bad statement")
    first, later = round_and_callers_behind(
        reads, send, 3, again=lambda e: not isinstance(e, ValueError)
    )
    send.release.set()
    gevent.joinall([first, *later])
    assert all(isinstance(g.exception, ValueError) for g in (first, *later))
    assert send.calls == 2 and reads.followed_failure == 0


def test_callers_of_an_interrupted_sender_send_their_round_themselves():
    reads, send = SharedReads(), Sender()
    first = gevent.spawn(reads.read, "k", send)
    settle()
    leader = gevent.spawn(reads.read, "k", send)  # sends the next round after the first
    settle()
    followers = [gevent.spawn(reads.read, "k", send) for _ in range(3)]
    settle()
    assert reads.shared == 3
    leader.kill()  # interrupted while waiting for its turn
    # its followers join again: one of them sends the next round, the two others wait for it
    poll(lambda: reads.shared == 5)
    assert send.calls == 1
    send.release.set()
    gevent.joinall([first, *followers], raise_error=True)
    assert first.value == [{"round": 1}]
    assert [g.value for g in followers] == [[{"round": 2}]] * 3
    assert send.calls == 2 and reads._slots == {}


def test_threads_share_a_round_as_greenlets_do():
    reads = SharedReads()
    calls, release = [], threading.Event()
    gate = threading.Lock()

    def send() -> list[dict[str, int]]:
        with gate:
            calls.append(1)
            n = len(calls)
        release.wait(10)
        return [{"round": n}]

    results: dict[int, list[dict[str, int]]] = {}

    def call(i: int) -> None:
        results[i] = reads.read("k", send)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, 5)]
    for t in others:
        t.start()
    deadline = threading.Event()
    for _ in range(1000):  # until the three followers wait in the gathering round
        if reads.shared == 3:
            break
        deadline.wait(0.01)
    assert reads.shared == 3 and len(calls) == 1
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert results[0] == [{"round": 1}]
    assert [results[i] for i in range(1, 5)] == [[{"round": 2}]] * 4


def test_only_reads_are_shared(api):
    with pytest.raises(ValueError, match="only reads"):
        api.query_shared("DELETE FROM memory")


def test_a_shared_read_answers_as_a_query_does_and_a_derived_value_is_shared(srv, api):
    sql, params = "SELECT $1::int AS v UNION ALL SELECT 2", [1]
    rows = api.query_shared(sql, params)
    assert rows == api.query(sql, params) == [{"v": 1}, {"v": 2}]
    rows.append({"v": 3})  # the caller's own list
    assert api.query_shared(sql, params) == [{"v": 1}, {"v": 2}]

    def total(found):
        return sum(r["v"] for r in found)

    srv.reset_stats()
    readers = [gevent.spawn(api.query_shared, sql, params, derive=total) for _ in range(10)]
    gevent.joinall(readers, raise_error=True)
    assert [g.value for g in readers] == [3] * 10
    assert srv.stats()["requests"] <= 2


def test_many_filesystems_reading_the_index_at_once_each_see_their_own_file(srv, api):
    """20 filesystems of one process read ``/index.md`` together: far fewer statements than
    readers, and each index lists the file its reader stored just before."""
    from deeplake_sdk import DeeplakeFs

    filesystems = [DeeplakeFs(api, cache=False, journal=False) for _ in range(20)]
    for i, fs in enumerate(filesystems):
        fs.write_text(f"/notes/n{i}.md", f"note {i}\n")
        fs.flush()
    srv.reset_stats()
    readers = [gevent.spawn(fs.read_text, "/index.md") for fs in filesystems]
    gevent.joinall(readers, raise_error=True)
    for i, reader in enumerate(readers):
        assert f"[/notes/n{i}.md](/notes/n{i}.md)" in reader.value
    assert srv.stats()["requests"] < len(filesystems) / 2
    for fs in filesystems:
        fs.close()


def test_a_round_failed_after_retries_fails_its_sender_not_its_followers(srv, workspace):
    """On the real server: every statement takes 0.3 s and the first two fail after it (an
    answer lost after the statement ran), with no retries. ``a`` sends round 1; ``b`` sends
    round 2 and ``c``, ``d`` wait for it; both fail, so ``c`` and ``d`` share a third."""
    from deeplake_sdk import DeeplakeApi, RetryPolicy
    from deeplake_sdk.errors import DeeplakeError
    from deeplake_sdk.shared_reads import shared_reads

    client = DeeplakeApi(srv.token, srv.org, workspace, srv.url, retries=RetryPolicy(retries=0))
    try:
        client.query("SELECT 1")  # first use of the workspace, before the faults
        srv.set_faults(latency_fixed_ms=300, p_commit_fail=1.0, max_faults=2)
        srv.reset_stats()
        sql = "SELECT 7 AS v"
        a = gevent.spawn(client.query_shared, sql)
        poll(lambda: srv.stats()["inflight"] == 1)
        shared = shared_reads.shared
        b, c, d = (gevent.spawn(client.query_shared, sql) for _ in range(3))
        poll(lambda: shared_reads.shared == shared + 2)
        gevent.joinall([a, b, c, d])
        assert isinstance(a.exception, DeeplakeError)
        assert isinstance(b.exception, DeeplakeError)
        assert c.value == d.value == [{"v": 7}]
        assert srv.stats()["requests"] == 3
    finally:
        client.close()
