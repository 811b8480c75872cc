"""The adaptive limit as a pure value, the retry budget, and what the limiter does with them:
nested caps under an origin's limit, ``Retry-After`` pauses, the host-wide share (with a real
second process), and the retry budget against the real server.

Policies are fed sequences of samples and their chosen limits are compared: no clock, no
timing thresholds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import gevent
import pytest

from deeplake_sdk.api import DeeplakeApi
from deeplake_sdk.errors import NetworkError, RateLimitError
from deeplake_sdk.hostshare import HostShare, share_dir
from deeplake_sdk.limiter import (
    DEFAULT_MAX_CONCURRENCY,
    ERROR,
    OK,
    OVERLOAD,
    AimdLimit,
    FixedLimit,
    GradientLimit,
    GradientState,
    Limiter,
    RetryBudget,
    Sample,
    policy_for,
)
from deeplake_sdk.retry import RetryPolicy
from deeplake_sdk.transport import Endpoint, get_endpoint, origin_limiter


def ok(rtt=0.03, in_flight=100):
    return Sample(OK, rtt, in_flight)


def over(in_flight=0, retry_after=None):
    return Sample(OVERLOAD, 0.001, in_flight, retry_after)


# -- the delay-based policy ----------------------------------------------------------------------


def test_gradient_grows_while_in_use_and_delay_is_flat_up_to_its_ceiling():
    policy = GradientLimit(max_limit=40, initial_limit=16)
    limits = policy.limits([ok()] * 100)
    assert limits[0] == 16 and limits[10] > limits[5] > 16  # grows by the queue allowance
    assert max(limits) == 40 and limits[-1] == 40  # never above the ceiling
    assert limits == sorted(limits)


def test_gradient_does_not_grow_when_the_limit_is_not_in_use():
    policy = GradientLimit(initial_limit=16)
    # 3 in flight out of 16: the application, not the service, is the bound
    assert set(policy.limits([ok(in_flight=3)] * 50)) == {16}


def test_gradient_grows_only_as_far_as_the_demand_fills_it():
    policy = GradientLimit(initial_limit=16, in_use=0.9)
    # 30 attempts at a time, each answer seeing the 29 others: the limit follows the demand
    # up to where 30 fill 90% of it, and no further (a burst of 60 must not meet a limit of 60)
    limits = policy.limits([ok(in_flight=29)] * 300)
    assert limits[-1] == max(limits) == 33
    # half of the limit in flight grows it only while attempts wait for a slot
    assert set(policy.limits([ok(in_flight=7)] * 50)) == {16}
    # 10 in flight and more waiting: up to twice the number in flight
    waiting = Sample(OK, 0.03, 9, waiting=3)
    assert policy.limits([waiting] * 50)[-1] == 20


def test_gradient_grows_by_one_queue_allowance_per_round_trip():
    """The first refusal takes a round trip to come back: a limit grown by every answer
    meanwhile would overshoot the service's capacity by a round trip's growth."""
    policy = GradientLimit(initial_limit=16, delivery_gain=0)
    rtt = 0.03
    within = [Sample(OK, rtt, 100, at=1.0 + i * 0.001) for i in range(30)]  # one round trip
    assert policy.limits(within)[-1] == 16 + 4  # one allowance: sqrt(16)
    apart = [Sample(OK, rtt, 100, at=1.0 + i * rtt) for i in range(30)]  # 30 round trips
    assert policy.limits(apart)[-1] > 30  # an allowance (smoothed) each
    assert policy.limits([ok()] * 30)[-1] > 30  # no time known: each answer its own


def test_gradient_shrinks_when_the_delay_passes_the_tolerance_and_keeps_a_floor():
    policy = GradientLimit(initial_limit=32, min_limit=4, tolerance=2.0)
    flat = [ok(0.03)] * 20
    slow = [ok(0.3)] * 200  # ten times the idle delay: the service queues our requests
    limits = policy.limits(flat + slow)
    assert limits[19] >= 32
    assert limits[60] < limits[19] and min(limits[20:]) >= 4
    # twice as slow is within the tolerance: no decrease
    limits = policy.limits(flat + [ok(0.055)] * 20)
    assert min(limits[20:]) >= limits[19]


def test_gradient_shrinks_for_delay_once_per_round_trip():
    policy = GradientLimit(initial_limit=32, min_limit=4, tolerance=2.0)
    flat = [Sample(OK, 0.03, 100, at=0.05 * i) for i in range(1, 21)]
    # the answers of 20 attempts sent at t=9 arrive together at t=10, ten times late
    late = [Sample(OK, 1.0, 100, at=10.0 + 0.001 * i) for i in range(20)]
    # then attempts sent after the first cut come back late too
    later = [Sample(OK, 0.3, 100, at=10.4 + 0.001 * i) for i in range(5)]
    limits = policy.limits(flat + late + later)
    before = limits[19]
    assert limits[20] < before  # the first late answer shrinks the limit...
    assert limits[39] == limits[20]  # ...the others of the same round trip do not
    assert limits[40] < limits[39]  # an attempt sent after the cut does
    # the same answers without times: each one shrinks it (down to the floor)
    untimed = [replace(x, at=0.0) for x in flat + late]
    assert policy.limits(untimed)[39] < limits[39]


def test_gradient_backs_off_once_per_burst_and_then_probes_slowly_near_the_hint():
    policy = GradientLimit(initial_limit=20, backoff=0.8, probe=4, near_hint=0.9)
    first = policy.update(policy.initial(), over(in_flight=5))
    assert (first.limit, first.hint, first.refused, first.window) == (16, 20.0, 1, 6)
    # a lone refusal: quick recovery to 90% of the hint (18), then one slot per 4 x limit
    state, limits = first, []
    for _ in range(200):
        state = policy.update(state, ok(in_flight=30))
        limits.append(state.limit)
    recovered = limits.index(18)
    assert recovered <= 5  # a few successes
    # about 4 x 18 = 72 successes for one more slot, about 4 x 19 for the next
    assert 70 <= limits.index(19) - recovered <= 76
    assert 74 <= limits.index(20) - limits.index(19) <= 80 and limits[-1] == 20
    # refusals of the attempts that were already in flight: 3 of those 6 were refused, so the
    # service admitted about half of the 20: limit 20 x 0.5 x 0.95 = 9.5, but not below half
    # of 20 in one burst however many refusals come back; the hint becomes that half
    state = first
    for _ in range(2):
        state = policy.update(state, over())
    assert (state.limit, state.hint, state.refused, state.pause) == (10, 10.0, 3, 0.0)
    assert policy.update(state, over()).limit == 10
    limits = []
    for _ in range(100):
        state = policy.update(state, ok(in_flight=30))
        limits.append(state.limit)
    assert 38 <= limits.index(11) <= 42 and limits[-1] == 12  # probing from the start


def test_probing_slows_while_bursts_keep_beginning_at_the_same_limit():
    policy = GradientLimit(initial_limit=20, probe=4, near_hint=0.9, plateau_max=4)

    def successes_to_grow(state):
        limit, n = state.limit, 0
        while state.limit == limit:
            state, n = policy.update(state, ok(in_flight=40)), n + 1
        return state, n

    state = policy.update(policy.initial(), over(in_flight=0))  # hint 20, limit 16
    state, _ = successes_to_grow(state)  # quick recovery towards 90% of the hint
    while state.limit < 20:
        state, _ = successes_to_grow(state)
    assert state.plateau == 0
    steps = []
    for _ in range(3):  # refused again at the same limit, three times
        state = policy.update(state, over(in_flight=0))
        while state.limit < 19:
            state, _ = successes_to_grow(state)
        state, n = successes_to_grow(state)
        steps.append(n)
    assert state.plateau == 3
    assert steps[1] == pytest.approx(2 * steps[0], rel=0.1)
    assert steps[2] == pytest.approx(2 * steps[1], rel=0.1)
    # a burst of 429s (a rate, the pace's to answer) is no sign of the capacity in flight
    rate_refused = Sample(OVERLOAD, 0.001, 0, None, 0.0, rate_limited=True)
    assert policy.update(state, rate_refused).plateau == 0


def test_retry_after_pauses_only_when_the_overload_persists():
    policy = GradientLimit(initial_limit=20, pause_max=5.0, pause_after=3)
    state = policy.update(policy.initial(), over(retry_after=2.0))
    assert state.pause == 0.0  # a single refusal: shrink, no pause
    state = policy.update(state, over(retry_after=9.0))  # a new burst right away
    assert state.pause == 0.0 and state.bursts == 2
    state = policy.update(state, over(retry_after=9.0))  # and a third: it persists
    assert state.pause == 5.0  # capped at pause_max
    state = policy.update(state, ok())
    assert state.pause == 0.0
    # three bursts within a fraction of a second: the pace and the limit have not acted yet
    state = policy.initial()
    for at in (1.0, 1.1, 1.2):
        state = policy.update(state, Sample(OVERLOAD, 0.001, 0, 2.0, at))
    assert state.bursts == 3 and state.pause == 0.0
    assert policy.update(state, Sample(OVERLOAD, 0.001, 0, 2.0, 2.1)).pause == 2.0
    # a burst long after the previous one: no pause
    state = policy.update(policy.initial(), over(retry_after=2.0))
    for _ in range(100):
        state = policy.update(state, ok())
    assert policy.update(state, over(retry_after=2.0)).pause == 0.0


# -- pacing: the rate a service admits, learned from its 429s ------------------------------------


def timed(outcome, at, rate_limited=False, in_flight=20):
    return Sample(outcome, 0.03, in_flight, None, at, rate_limited)  # no Retry-After: no pause


def run_at(policy, state, rate, seconds, start, outcome=OK, rate_limited=False):
    """Feed ``rate`` samples per second for ``seconds``; returns the state and the end time."""
    n = int(rate * seconds)
    for i in range(n):
        state = policy.update(state, timed(outcome, start + i / rate, rate_limited))
    return state, start + n / rate


def test_a_burst_of_429s_sets_a_pace_below_what_the_service_admitted():
    policy = GradientLimit(rate_window=0.5, rate_samples=32, rate_margin=0.95)
    state, t = run_at(policy, policy.initial(), 500, 1.2, 1.0)
    assert state.rate == 0.0 and 490 <= state.admitted <= 510  # measured, not paced yet
    state = policy.update(state, timed(OVERLOAD, t, rate_limited=True))
    assert state.rate == pytest.approx(state.admitted * 0.95)  # paced at once
    # refusals go on while 400/s are admitted: the window that saw them lowers the pace
    first = state.rate
    for i in range(45):  # 0.075 s: one window in this regime (1/16 s with refusals)
        at = t + i / 600
        state = policy.update(state, timed(OK if i % 3 else OVERLOAD, at, rate_limited=True))
    # (one answer more or less in 1/16 s is 16/s)
    assert 0.7 * first <= state.rate < first and 385 <= state.admitted <= 415


def test_the_first_rate_refusal_begins_a_window_that_measures_the_rate_alone():
    # 600/s admitted for 1.2 s (the service's burst allowance), then 400/s with refusals: the
    # first window after the first 429 measures 400/s, not a mix of both
    policy = GradientLimit(rate_window=0.5, rate_samples=32, rate_margin=0.95)
    state, t = run_at(policy, policy.initial(), 600, 1.2, 1.0)
    state = policy.update(state, timed(OVERLOAD, t, rate_limited=True))
    assert state.window_at == t and state.window_ok == 0
    first = state.rate
    # 0.067 s at 600 answers/s, one in three refused: a window with refusals ends after
    # 1/16 s (and 32 answers), so the pace follows the rate within a few round trips
    for i in range(40):
        at = t + (i + 1) / 600
        state = policy.update(state, timed(OK if i % 3 else OVERLOAD, at, rate_limited=True))
    assert 390 <= state.admitted <= 410
    assert state.rate == pytest.approx(max(400 * 0.95, first * 0.7), rel=0.02)
    # the same answers without refusals end no window: it lasts rate_window (0.5 s)
    state = replace(state, window_ok=0, window_over=0)
    admitted, start = state.admitted, state.window_at
    for i in range(40):
        state = policy.update(state, timed(OK, start + (i + 1) / 600))
    assert (state.window_at, state.window_ok, state.admitted) == (start, 40, admitted)
    with pytest.raises(ValueError):
        GradientLimit(rate_window=0.5, refused_window=0.6)


def test_the_limit_grows_no_further_than_a_multiple_of_what_the_service_delivers():
    # 400 successes a second at 40 ms: 16 in flight are what the service delivers; with attempts
    # always waiting, the limit stops at 1.5 x 16 = 24 instead of growing into refusals
    policy = GradientLimit(initial_limit=16, delivery_gain=1.5)
    state = policy.initial()
    for i in range(2000):
        sample = Sample(OK, 0.04, state.limit - 1, at=1.0 + i / 400, waiting=50)
        state = policy.update(state, sample)
    assert 390 <= state.admitted <= 410 and state.limit == 24
    # a process that sends a quarter of the host's attempts measures a quarter of the rate:
    # the bound is the host's all the same
    state = policy.initial()
    for i in range(2000):
        sample = Sample(OK, 0.04, state.limit - 1, at=1.0 + i / 100, waiting=50, share=0.25)
        state = policy.update(state, sample)
    assert 99 <= state.admitted <= 101 and state.limit == 24
    # without the bound it grows to the ceiling
    unbounded = GradientLimit(initial_limit=16, delivery_gain=0)
    state = unbounded.initial()
    for i in range(2000):
        state = unbounded.update(state, Sample(OK, 0.04, state.limit - 1, at=1.0 + i / 400))
    assert state.limit == unbounded.max_limit


def test_refusals_of_the_number_in_flight_set_no_pace():
    policy = GradientLimit()
    state, t = run_at(policy, policy.initial(), 500, 1.2, 1.0)
    for i in range(50):
        state = policy.update(state, timed(OVERLOAD, t + i / 500, rate_limited=False))
    assert state.rate == 0.0 and state.limit < 16


def test_one_window_cuts_the_pace_by_30_percent_at_most():
    policy = GradientLimit(rate_window=0.5, rate_samples=32, rate_margin=0.95)
    state, t = run_at(policy, policy.initial(), 500, 1.2, 1.0)
    state = policy.update(state, timed(OVERLOAD, t, rate_limited=True))
    paced = state.rate
    # a stalled client: 40 answers a second, most of them refusals, for a second (the window
    # begun at the first refusal ends once: 32 answers, 0.8 s)
    for i in range(40):
        state = policy.update(state, timed(OVERLOAD if i % 4 else OK, t + i / 40, True))
    assert state.rate == pytest.approx(0.7 * paced, rel=0.02)


def test_the_pace_grows_per_success_and_faster_while_it_is_used_without_refusal():
    policy = GradientLimit(rate_window=0.5, rate_samples=32, rate_growth=0.02)
    state, t = run_at(policy, policy.initial(), 500, 1.2, 1.0)
    state = policy.update(state, timed(OVERLOAD, t, rate_limited=True))
    paced = state.rate
    state = policy.update(state, timed(OK, t + 0.001))
    assert state.rate == pytest.approx(paced + 0.02)  # one success: one step
    # a second at the pace, no refusal: each window that used the pace speeds the growth
    state, t = run_at(policy, state, paced, 1.0, t + 0.002)
    assert state.clean >= 1
    step, clean = state.rate, state.clean
    state = policy.update(state, timed(OK, t))
    assert state.rate - step == pytest.approx(0.02 * min(1 + clean, 4))
    # answers during a pause measure nothing
    paused = replace(state, window_at=t + 10.0)
    assert policy.update(paused, timed(OVERLOAD, t + 1.0, True)).window_over == 0


def test_gradient_ignores_errors_and_is_a_value():
    policy = GradientLimit()
    state = policy.initial()
    assert state == GradientState(16, 16.0) and policy.update(state, Sample(ERROR)) is state
    assert policy.update(state, over()).limit == 12 and state.limit == 16
    with pytest.raises(ValueError):
        GradientLimit(min_limit=8, initial_limit=4)
    with pytest.raises(ValueError):
        GradientLimit(backoff=1.0)


def test_policy_for_chooses_by_settings():
    assert isinstance(policy_for(DEFAULT_MAX_CONCURRENCY, True), GradientLimit)
    assert policy_for(8, True) == AimdLimit(8)
    assert policy_for(8, False) == FixedLimit(8) and policy_for(None, True) == FixedLimit(None)


def test_retry_budget_throttles_retries_under_overload_and_refills_on_success():
    budget = RetryBudget(max_tokens=10, ratio=0.5)
    tokens = budget.max_tokens
    allowed = []
    for _ in range(8):
        tokens = budget.update(tokens, ok=False)
        allowed.append(budget.allows(tokens))
    assert allowed == [True] * 4 + [False] * 4  # not more than half of the tokens spent
    for _ in range(4):
        tokens = budget.update(tokens, ok=True)
    assert tokens == 4.0 and not budget.allows(5.0) and budget.allows(5.5)
    assert budget.update(0.0, False) == 0.0 and budget.update(10.0, True) == 10.0


# -- the mechanism -----------------------------------------------------------------------------


def test_caps_of_several_clients_do_not_add_up_under_their_parent():
    parent = Limiter(None, policy=FixedLimit(3))
    caps = [Limiter(2, parent=parent), Limiter(2, parent=parent)]
    seen = []

    def work(lim):
        with lim.slot():
            seen.append((parent.in_flight, lim.in_flight))
            gevent.sleep(0.001)

    gevent.joinall([gevent.spawn(work, caps[i % 2]) for i in range(30)], raise_error=True)
    assert max(p for p, _ in seen) == 3 and max(c for _, c in seen) <= 2
    assert parent.in_flight == 0 and all(c.in_flight == 0 for c in caps)
    # a cap whose parent has no slot to give in time takes nothing
    with parent.slot(), parent.slot(), parent.slot():
        with pytest.raises(NetworkError, match="not sent"):
            caps[0].acquire(timeout=0.01)
        assert caps[0].in_flight == 0 and parent.waiting == 0


def test_a_persistent_overload_pauses_every_new_attempt():
    lim = Limiter(None, policy=GradientLimit(pause_max=60.0))
    for at in (100.0, 100.6, 101.2):  # three bursts in a row over a second: pause 30 s
        lim.acquire()
        lim.release(Sample(OVERLOAD, 0.001, 0, 30.0, at))
    assert lim.stats()["pauses"] == 1 and lim.stats()["paused_for_s"] > 20
    with pytest.raises(NetworkError, match="Retry-After"):
        lim.acquire(timeout=1.0)  # would have to wait past its timeout: not sent
    assert lim.in_flight == 0


def test_the_retry_budget_is_the_parents():
    parent = Limiter(None, policy=FixedLimit(4), budget=RetryBudget(max_tokens=4, ratio=1))
    cap = Limiter(2, parent=parent)
    for _ in range(2):
        cap.acquire()
        cap.release(over())
    assert not cap.allow_retry() and parent.stats()["retries_denied"] == 1
    cap.acquire()
    cap.release(ok())
    assert cap.allow_retry() and cap.retry_tokens == 3.0


def test_endpoints_of_one_origin_share_its_limiter():
    url = "http://127.0.0.1:9"  # nothing is sent
    shared = origin_limiter("http://127.0.0.1:9")
    assert get_endpoint(url).limiter is shared
    capped = get_endpoint(url, 5)
    fixed = get_endpoint(url + "/", 3, adaptive=False)
    assert capped.limiter.parent is shared and fixed.limiter.parent is shared
    assert isinstance(fixed.limiter.policy, FixedLimit) and fixed.limiter.max_limit == 3
    assert Endpoint("HTTP://127.0.0.1:9/x", 7).limiter.parent is shared
    assert get_endpoint("http://localhost:80").limiter is get_endpoint("http://LOCALHOST").limiter
    unbounded = Endpoint(url, None, adaptive=False)  # the one way out of every bound
    assert unbounded.limiter.parent is None and unbounded.limiter.limit is None


# -- the host-wide share, with a real second process ---------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from deeplake_sdk.hostshare import HostShare
    share = HostShare(Path(sys.argv[1]), refresh=0.0)
    for line in sys.stdin:  # "IN_FLIGHT DEMAND": publish them, say so
        share.exchange(*map(int, line.split()), 16)
        print("published", flush=True)
    """
)


def publish(holder, in_flight, demand):
    holder.stdin.write(f"{in_flight} {demand}\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "published"


def test_processes_of_a_host_split_the_limit_by_demand(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPLAKE_LIMIT_DIR", str(tmp_path))
    assert share_dir() == tmp_path
    path = tmp_path / "origin.json"
    lim = Limiter(None, policy=FixedLimit(16), share=HostShare(path, refresh=0.0))
    for _ in range(3):
        lim.acquire()
    assert lim.limit == 16  # alone on the host
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        publish(holder, 8, 8)
        lim.release()  # exchanges: 2 in flight here, 8 there
        assert lim.limit == 16 * 2 // (2 + 8)
        assert lim.stats()["host_in_flight_others"] == 8
        publish(holder, 0, 0)  # the other process is idle: it claims nothing
        lim.release()
        assert lim.limit == 16 and lim.stats()["host_in_flight_others"] == 0
        lim.release()
    finally:
        holder.stdin.close()
        holder.wait(30)
    lim.acquire()
    lim.release()  # the holder ended: its entry is dropped
    assert lim.limit == 16 and lim.stats()["host_in_flight_others"] == 0
    lim._share.leave()  # the last process leaves no file behind
    assert not path.exists() and not tmp_path.exists()
    monkeypatch.setenv("DEEPLAKE_LIMIT_DIR", "off")
    assert share_dir() is None


def test_a_process_that_goes_idle_says_so_at_once(tmp_path):
    path = tmp_path / "origin.json"
    share = HostShare(path, refresh=0.0)
    lim = Limiter(None, policy=FixedLimit(16), share=share)
    for _ in range(3):
        lim.acquire()  # each publishes (``refresh`` is 0)
    share.refresh = 3600.0
    lim.release()  # publishes 2 in flight, then waits ``refresh`` before the next exchange

    def published():
        return json.loads(path.read_text())[str(os.getpid())][:2]

    assert published() == [2, 2]
    lim.release()
    assert published() == [2, 2]  # busy: within ``refresh`` of the last exchange
    lim.release()
    assert published() == [0, 0]  # idle: at once, the others need not wait for it
    lim.acquire()
    lim.release()
    assert published() == [0, 0]


def test_an_unusable_share_file_leaves_the_whole_limit(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    share = HostShare(blocker / "sub" / "origin.json", refresh=0.0)  # parent is a file
    assert share.exchange(1, 1, 4) is None
    lim = Limiter(None, policy=FixedLimit(4), share=share)
    lim.acquire()
    lim.release()
    assert lim.limit == 4


# -- the retry budget against the real server ----------------------------------------------------


def test_retries_stop_when_the_origins_budget_is_spent(srv, workspace):
    api = DeeplakeApi(
        srv.token, srv.org, workspace, srv.url, retries=RetryPolicy(3, backoff_base=0.001)
    )
    srv.set_faults(p_503=1.0, retry_after_s=0)
    sent = []
    for _ in range(40):
        before = srv.stats()["requests"]
        with pytest.raises(RateLimitError):
            api.query("SELECT 1")
        sent.append(srv.stats()["requests"] - before)
    assert sent[0] == 4  # a healthy budget: every retry
    assert sent[-1] == 1  # spent: the refusal is raised at once, nothing more is sent
    stats = api.endpoint.limiter.stats()
    assert stats["retries_denied"] > 0 and stats["retry_tokens"] <= 100
    # a 500 says nothing about load: it is retried, spent budget or not
    srv.set_faults(profile="none", p_500=1.0, max_faults=1)
    assert api.query("SELECT 1 AS a") == [{"a": 1}]
    assert srv.stats()["injected"]["error_500"] == 1
    srv.set_faults(profile="none")
    assert api.query("SELECT 1 AS a") == [{"a": 1}]  # plain requests still go


def test_503s_are_requeued_at_once_only_while_the_budget_is_nearly_full(srv, workspace):
    quick, full = 0.01, 0.2
    api = DeeplakeApi(
        srv.token,
        srv.org,
        workspace,
        srv.url,
        retries=RetryPolicy(1, backoff_base=full, jitter=0.0, transient_factor=quick / full),
    )
    srv.set_faults(p_503=1.0, retry_after_s=1)
    delays = []
    for _ in range(30):
        with pytest.raises(RateLimitError):
            api.query("SELECT 1")
        delays.append(api.stats.retry_events[-1].delay)
        if delays[-1] != quick:
            break
    srv.set_faults(profile="none")
    tokens = RetryBudget().max_tokens
    # 2 refusals per call: quick while 90 % of the 200 tokens are left, then Retry-After
    assert delays[0] == quick and delays[-1] == 1.0
    assert 2 * (len(delays) - 1) == pytest.approx(tokens * 0.1, abs=2)


def test_a_light_client_is_not_paced_below_what_a_few_attempts_in_flight_send():
    """A client sending little measures its own demand: a 429 must not throttle it to that."""
    policy = GradientLimit(min_limit=4, rate_window=0.5, rate_samples=32)
    state, t = run_at(policy, policy.initial(), 2, 40.0, 1.0)  # 2 answers/s, 30 ms each
    assert 1.5 <= state.admitted <= 2.5
    state = policy.update(state, timed(OVERLOAD, t, rate_limited=True))
    assert state.rate == pytest.approx(4 / state.short_rtt)  # 133/s, not 1.9/s
