"""Limiter tests: the slot mechanism across greenlets, hubs and native threads, the limit
policies as pure values, and the cooperative helpers under them (``Completion``, and
``run_parallel``'s results, errors and cancellation).

No server is needed: slots are held and released by the tests themselves. Waits are bounded
(``join`` timeouts, ``wait_until``); nothing sleeps to synchronise.
"""

from __future__ import annotations

import threading
import time

import gevent
import pytest
from waiting import poll

from deeplake_sdk._coop import Completion, Failure, run_parallel
from deeplake_sdk.errors import NetworkError
from deeplake_sdk.limiter import (
    ERROR,
    OK,
    OVERLOAD,
    AimdLimit,
    AimdState,
    FixedLimit,
    Limiter,
    Sample,
)


def start(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def joined(threads, timeout=30.0):
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


# -- policies: pure values -------------------------------------------------------------------


def test_aimd_halves_once_per_burst_and_grows_slowly():
    policy = AimdLimit(8, grow_after=2)
    # an overload with 3 others in flight: the next 3 overloads belong to the same burst
    limits = policy.limits([Sample(OVERLOAD, in_flight=3)] + [Sample(OVERLOAD)] * 3)
    assert limits == [4, 4, 4, 4]
    assert policy.limits([Sample(OVERLOAD)] * 5) == [4, 2, 1, 1, 1]
    # from 4, growing needs grow_after x limit consecutive successes: 8 for +1, then 10
    limits = policy.limits([Sample(OVERLOAD)] + [Sample(OK)] * 18)
    assert limits[8] == 5 and limits[7] == 4 and limits[18] == 6 and limits[17] == 5
    # never above the ceiling, and errors say nothing
    assert policy.limits([Sample(OK)] * 50)[-1] == 8
    assert policy.limits([Sample(ERROR)] * 5) == [8] * 5


def test_aimd_success_streak_restarts_after_an_overload():
    policy = AimdLimit(4, grow_after=2)
    samples = [Sample(OVERLOAD)] + [Sample(OK)] * 3 + [Sample(OVERLOAD)] + [Sample(OK)] * 2
    # the three successes before the second overload do not count towards growing from 1
    assert policy.limits(samples) == [2, 2, 2, 2, 1, 1, 2]


def test_policies_are_values():
    state = AimdLimit(4).initial()
    assert state == AimdState(4)
    after = AimdLimit(4).update(state, Sample(OVERLOAD))
    assert state.limit == 4 and after.limit == 2  # the old state is unchanged
    fixed = FixedLimit(3)
    assert fixed.update(fixed.initial(), Sample(OVERLOAD)).limit == 3
    assert FixedLimit(None).initial().limit is None
    with pytest.raises(ValueError):
        FixedLimit(0)
    with pytest.raises(ValueError):
        Limiter(0)


def test_limiter_consults_its_policy():
    lim = Limiter(8, adaptive=True)
    assert isinstance(lim.policy, AimdLimit) and lim.adaptive and lim.max_limit == 8
    lim.on_overload()
    assert lim.limit == 4 and lim.decreases == 1
    assert not Limiter(4).adaptive and Limiter(4, adaptive=True).limit == 4
    lim = Limiter(None, policy=AimdLimit(2, grow_after=1))
    lim.on_overload()
    lim.observe(Sample(OK))
    assert lim.limit == 2 and (lim.decreases, lim.increases) == (1, 1)


# -- slots -------------------------------------------------------------------------------------


def test_limiter_bounds_greenlets():
    lim = Limiter(3)
    seen = []

    def work():
        with lim.slot():
            seen.append(lim.in_flight)
            gevent.sleep(0.001)

    gevent.joinall([gevent.spawn(work) for _ in range(20)], raise_error=True)
    assert len(seen) == 20 and max(seen) == 3 and lim.peak == 3 and lim.in_flight == 0


def test_limiter_acquire_timeout_leaves_no_trace():
    lim = Limiter(1)
    lim.acquire()
    with pytest.raises(NetworkError, match="not sent"):
        lim.acquire(timeout=0.01)
    assert lim.waiting == 0
    lim.release()
    lim.acquire(timeout=0.01)
    lim.release()
    assert lim.in_flight == 0
    with pytest.raises(RuntimeError, match="without a slot"):
        lim.release()  # a release without its acquire would raise the bound
    assert lim.in_flight == 0


def test_waiters_are_served_in_fifo_order_across_threads_and_greenlets():
    lim = Limiter(1)
    lim.acquire()
    order = []

    def greenlet_waiter(name):
        with lim.slot():
            order.append(name)

    def thread_waiter(name, with_hub):
        if with_hub:  # a thread running its own hub, waiting from a greenlet
            gevent.spawn(greenlet_waiter, name).join()
        else:  # a plain thread: waits on a native lock
            greenlet_waiter(name)

    threads = []
    for k in range(6):
        name = f"w{k}"
        if k % 3 == 0:
            gevent.spawn(greenlet_waiter, name)
            gevent.sleep(0)
        else:
            threads.append(start(thread_waiter, name, k % 3 == 1))
        poll(lambda k=k: lim.waiting == k + 1, f"waiter {k} to queue")
    lim.release()
    poll(lambda: len(order) == 6, "every waiter to be served")
    assert order == [f"w{k}" for k in range(6)]
    assert joined(threads) and lim.in_flight == 0 and lim.waiting == 0


def test_urgent_waiters_are_served_first_in_their_own_fifo_order():
    lim = Limiter(1)
    lim.acquire()
    order = []

    def waiter(name, urgent):
        lim.acquire(urgent=urgent)
        order.append(name)
        lim.release()

    for k, (name, urgent) in enumerate(
        [("a", False), ("b", False), ("drain1", True), ("c", False), ("drain2", True)]
    ):
        gevent.spawn(waiter, name, urgent)
        poll(lambda k=k: lim.waiting == k + 1, f"waiter {name} to queue")
    lim.release()
    poll(lambda: len(order) == 5, "every waiter to be served")
    assert order == ["drain1", "drain2", "a", "b", "c"]
    assert lim.in_flight == 0 and lim.waiting == 0
    # an urgent waiter that gives up leaves its queue
    lim.acquire()
    with pytest.raises(NetworkError):
        lim.acquire(timeout=0.01, urgent=True)
    assert lim.waiting == 0
    lim.release()


def test_no_slot_leaks_when_waiters_are_interrupted():
    lim = Limiter(1)
    lim.acquire()
    killed = gevent.spawn(lim.acquire)
    timed_out = gevent.spawn(lambda: gevent.with_timeout(0.05, lim.acquire))
    poll(lambda: lim.waiting == 2, "two waiters")
    killed.kill()
    timed_out.join(10)
    assert isinstance(timed_out.exception, gevent.Timeout)
    assert lim.waiting == 0 and lim.in_flight == 1
    lim.release()
    assert lim.in_flight == 0
    lim.acquire(timeout=0.01)  # the slot is free
    lim.release()


def test_slot_granted_to_an_interrupted_waiter_is_handed_on():
    lim = Limiter(1)
    lim.acquire()
    first = gevent.spawn(lim.acquire)
    second = gevent.spawn(lim.acquire)
    poll(lambda: lim.waiting == 2, "two waiters")
    lim.release()  # granted to ``first`` (not yet running) ...
    first.kill()  # ... which is interrupted before it runs: the slot goes to ``second``
    second.join(10)
    assert second.successful() and lim.in_flight == 1 and lim.waiting == 0
    lim.release()
    assert lim.in_flight == 0


def test_thread_ending_in_an_exception_releases_its_slot():
    lim = Limiter(1)
    errors = []

    def failing():
        try:
            with lim.slot():
                raise RuntimeError("boom")
        except RuntimeError as exc:
            errors.append(exc)

    assert joined([start(failing)])
    assert len(errors) == 1 and lim.in_flight == 0
    lim.acquire(timeout=0.01)
    lim.release()


def test_threads_with_hubs_progress_while_the_first_users_thread_is_blocked():
    """A limiter first used from this thread's hub keeps working while this thread blocks.

    (A gevent Semaphore belongs to the hub of the thread that first waited on it and wakes
    waiters of other threads through that hub: blocked in ``join`` here, it woke nobody and
    the other threads waited out their timeouts with every slot free.)
    """
    lim = Limiter(2)
    lim.acquire()
    lim.acquire()
    first = gevent.spawn(lim.acquire)  # a greenlet of this thread waits first
    poll(lambda: lim.waiting == 1, "a waiter")
    lim.release()
    first.join(10)
    lim.release()
    lim.release()
    done = []

    def worker(name):
        def one():
            for _ in range(30):
                lim.acquire(timeout=20)
                gevent.sleep(0)
                lim.release()

        gevent.joinall([gevent.spawn(one) for _ in range(3)], raise_error=True)
        done.append(name)

    threads = [start(worker, n) for n in range(6)]
    assert joined(threads, 60)  # this thread blocks natively, its hub does not run
    assert sorted(done) == list(range(6)) and lim.in_flight == 0 and lim.peak == 2


def test_limiter_bounds_native_threads_with_and_without_hubs():
    lim = Limiter(2)
    seen = []

    def plain():
        for _ in range(20):
            with lim.slot():
                seen.append(lim.in_flight)
                time.sleep(0.0005)

    def with_hub():
        gevent.joinall([gevent.spawn(plain) for _ in range(2)], raise_error=True)

    threads = [start(plain if n % 2 else with_hub) for n in range(6)]
    assert joined(threads, 60)
    assert len(seen) == 180 and max(seen) <= 2 and lim.in_flight == 0 and lim.waiting == 0


def test_shrinking_limit_blocks_nobody_and_growing_wakes_waiters():
    lim = Limiter(None, policy=AimdLimit(4, grow_after=1))
    for _ in range(3):
        lim.acquire()
    lim.on_overload()  # limit 2 while 3 are in flight: nobody is interrupted
    assert lim.limit == 2 and lim.in_flight == 3
    waiter = gevent.spawn(lim.acquire)
    poll(lambda: lim.waiting == 1, "a waiter")
    lim.release()
    lim.release()  # in flight 1 < limit 2: the waiter gets its slot
    waiter.join(10)
    assert waiter.successful() and lim.in_flight == 2
    lim.release()
    lim.release()
    lim.acquire()
    lim.acquire()
    late = gevent.spawn(lim.acquire)
    poll(lambda: lim.waiting == 1, "a waiter at the limit")
    lim.on_success()
    lim.on_success()  # 2 x limit successes: grows to 3, the waiter is served, no release
    late.join(10)
    assert late.successful() and lim.limit == 3 and lim.in_flight == 3


# -- Completion --------------------------------------------------------------------------------


def test_completion_wakes_a_hub_waiter_from_another_thread_and_a_plain_thread_waiter():
    hub_event, plain_event = Completion(), Completion()
    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.001)) for _ in range(1000)])
    waiter = gevent.spawn(hub_event.wait, 30)
    got = []
    thread = start(lambda: got.append(plain_event.wait(30)))
    poll(lambda: len(ticks) > 5, "the hub to run other greenlets")
    start(hub_event.set).join(10)
    plain_event.set()
    waiter.join(10)
    thread.join(30)
    assert waiter.value is True and not thread.is_alive() and got == [True]
    assert not ticker.dead  # the hub kept running while the greenlet waited
    ticker.kill()
    assert Completion().wait(0.01) is False  # on this thread's hub
    timed_out = []
    start(lambda: timed_out.append(Completion().wait(0.01))).join(30)
    assert timed_out == [False]  # on a native lock


def test_completion_refuses_a_second_waiter_instead_of_losing_the_first():
    event = Completion()
    first = gevent.spawn(event.wait, 30)
    poll(lambda: event._wake is not None, "the first waiter to wait")
    refused = []

    def second():
        try:
            event.wait(30)
        except RuntimeError as exc:
            refused.append(str(exc))

    start(second).join(30)
    assert len(refused) == 1 and "one waiter at a time" in refused[0]
    event.set()
    first.join(10)
    assert first.value is True  # the first waiter was not displaced


# -- run_parallel ----------------------------------------------------------------------------


def test_run_parallel_results_in_order_with_failures_as_values():
    def fn(x):
        gevent.sleep(0.001 * (5 - x))
        if x == 2:
            raise ValueError("two")
        return x * 10

    out = run_parallel(fn, range(5), 3)
    assert [r if not isinstance(r, Failure) else str(r.error) for r in out] == [
        0,
        10,
        "two",
        30,
        40,
    ]
    assert run_parallel(fn, [], 3) == [] and run_parallel(fn, [4], 3) == [40]


def test_run_parallel_raises_uncaught_errors_once_all_children_finished():
    finished = []

    def fn(x):
        gevent.sleep(0.001 * x)
        finished.append(x)
        if x in (1, 3):
            raise KeyError(x)
        return x

    with pytest.raises(KeyError) as info:
        run_parallel(fn, range(6), 6, catch=())
    assert info.value.args == (1,) and sorted(finished) == list(range(6))


def test_run_parallel_killed_caller_kills_and_waits_for_its_children():
    state = {"running": 0, "cleaned": 0}

    def child(_):
        state["running"] += 1
        try:
            gevent.sleep(30)
        finally:
            gevent.sleep(0.01)  # a child's cleanup may itself wait
            state["running"] -= 1
            state["cleaned"] += 1

    caller = gevent.spawn(run_parallel, child, range(10), 4)
    poll(lambda: state["running"] == 4, "four children to start")
    caller.kill()
    assert isinstance(caller.value, gevent.GreenletExit)
    # the queued six never started; the four running ones were killed and finished cleanup
    assert state == {"running": 0, "cleaned": 4}
