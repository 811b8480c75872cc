"""Concurrency limiter: slots for HTTP attempts, handed out FIFO, sized by a limit policy.

Two parts, as in Netflix's concurrency-limits:

* the **slot mechanism**, :class:`Limiter`: at most ``limit`` attempts in flight; callers that
  find no free slot queue in FIFO order and each is handed its slot directly by the attempt
  that frees it (no stampede, no overtaking). It is safe across native threads, each with or
  without its own gevent hub, patched or not: its state is guarded by one native lock, and a
  waiter is woken on its own hub (a thread-safe ``async`` watcher) or, without a hub, on a
  native lock (:class:`~deeplake_sdk._coop.Completion`). A waiter that gives up (timeout,
  ``gevent.Timeout``, ``kill``, ``KeyboardInterrupt``, its thread ending in an exception)
  leaves the queue, or passes on the slot it was handed meanwhile: no slot is ever leaked.
* the **limit policy**, a value consulted by the mechanism: :class:`FixedLimit` or
  :class:`AimdLimit`. A policy is an immutable description; its state is an immutable value
  too, and ``policy.update(state, sample)`` returns the next state from one
  :class:`Sample` (the outcome, round-trip time and concurrency of a finished attempt). The
  limiter calls it under its lock, so a policy needs no locking and can be tested as a pure
  function (a sequence of samples in, the limits it chooses out).

A slot is held for exactly one HTTP attempt: never across the sleep between retries.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from deeplake_sdk._coop import Completion, allocate_lock, cooperative_sleep
from deeplake_sdk.api_types import DEFAULT_MAX_CONCURRENCY
from deeplake_sdk.errors import NetworkError

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "ERROR",
    "OK",
    "OVERLOAD",
    "AimdLimit",
    "AimdState",
    "FixedLimit",
    "GradientLimit",
    "GradientState",
    "LimitPolicy",
    "LimitState",
    "Limiter",
    "RetryBudget",
    "Sample",
    "policy_for",
]

logger = logging.getLogger(__name__)

#: Outcome of an attempt the service answered below 500 (4xx included: it was served).
OK = "ok"
#: Outcome of an attempt the service refused for load (429 or 503).
OVERLOAD = "overload"
#: Any other outcome (other 5xx, no answer): says nothing about the service's capacity.
ERROR = "error"

#: Adaptive mode grows the limit by one after ``GROW_AFTER x limit`` consecutive successes.
GROW_AFTER = 4


@dataclass(frozen=True)
class Sample:
    """What one finished attempt tells a limit policy.

    Attributes:
        outcome: :data:`OK`, :data:`OVERLOAD` or :data:`ERROR`.
        rtt: Seconds from sending to the answer (or the failure).
        in_flight: Other attempts still in flight when this one finished (host-wide when
            processes share a budget, see :mod:`deeplake_sdk.hostshare`).
        retry_after: The service's ``Retry-After`` in seconds, on an :data:`OVERLOAD`.
        at: When the attempt finished, in seconds of a monotonic clock (0: unknown; a policy
            that measures rates ignores such samples for its rate).
        rate_limited: An :data:`OVERLOAD` that refused the rate of requests (HTTP 429), not
            their number in flight (503).
        waiting: Attempts of this process waiting for a slot when this one finished.
        share: This process's part of the host's attempts in flight (1.0 when processes do
            not share a budget): a rate it measures from its own answers, divided by it, is
            the host's.
    """

    outcome: str
    rtt: float = 0.0
    in_flight: int = 0
    retry_after: float | None = None
    at: float = 0.0
    rate_limited: bool = False
    waiting: int = 0
    share: float = 1.0


@dataclass(frozen=True)
class LimitState:
    """A policy's state; the limiter only reads :attr:`limit` (``None``: unbounded)."""

    limit: int | None


class LimitPolicy:
    """How many attempts may be in flight: an immutable value, with immutable states.

    Subclasses implement :meth:`initial` and :meth:`update`; both are pure, and set
    ``max_limit``, the highest limit the policy may choose (``None``: unbounded).
    """

    max_limit: int | None = None

    def initial(self) -> LimitState:
        """The state before any sample."""
        raise NotImplementedError

    def update(self, state: LimitState, sample: Sample) -> LimitState:
        """The state after ``sample`` (``state`` itself when nothing changes)."""
        raise NotImplementedError

    def limits(self, samples: list[Sample]) -> list[int | None]:
        """The limit chosen after each of ``samples``, from the initial state (for tests)."""
        state = self.initial()
        out = []
        for sample in samples:
            state = self.update(state, sample)
            out.append(state.limit)
        return out


@dataclass(frozen=True)
class FixedLimit(LimitPolicy):
    """A constant limit (``None``: unbounded, attempts are only counted)."""

    max_limit: int | None = 5

    def __post_init__(self) -> None:
        if self.max_limit is not None and self.max_limit < 1:
            raise ValueError("max_concurrency must be >= 1 (or None for unbounded)")

    def initial(self) -> LimitState:
        """The state before any sample."""
        return LimitState(self.max_limit)

    def update(self, state: LimitState, sample: Sample) -> LimitState:
        """The same state: samples do not move a fixed limit."""
        return state


@dataclass(frozen=True)
class AimdState(LimitState):
    """State of :class:`AimdLimit`.

    Attributes:
        streak: Consecutive :data:`OK` samples since the last change.
        completed: Samples of :data:`OK` or :data:`OVERLOAD` so far.
        quiet_until: Overloads up to this ``completed`` count belong to the last burst.
    """

    streak: int = 0
    completed: int = 0
    quiet_until: int = 0


@dataclass(frozen=True)
class AimdLimit(LimitPolicy):
    """Additive increase, multiplicative decrease, learning from 429/503 only.

    Starts at ``max_limit``; halves on an :data:`OVERLOAD` (once per burst: the attempts
    already in flight when it halved were sent under the old limit, and their overloads do
    not halve it again); grows by one after ``grow_after x limit`` consecutive :data:`OK`
    samples (a slow probe: each probe past the service's capacity costs a rejection); stays
    within ``[1, max_limit]``. :data:`ERROR` samples are ignored.

    Attributes:
        max_limit: The ceiling, and the starting limit.
        grow_after: Successes per unit of limit before it grows by one.
    """

    max_limit: int = 5
    grow_after: int = GROW_AFTER

    def __post_init__(self) -> None:
        if self.max_limit < 1 or self.grow_after < 1:
            raise ValueError("max_limit and grow_after must be >= 1")

    def initial(self) -> AimdState:
        """The state before any sample: the ceiling."""
        return AimdState(self.max_limit)

    def update(self, state: LimitState, sample: Sample) -> AimdState:
        """The state after one sample."""
        assert isinstance(state, AimdState) and state.limit is not None
        if sample.outcome == OK:
            completed, streak = state.completed + 1, state.streak + 1
            if state.limit < self.max_limit and streak >= self.grow_after * state.limit:
                return AimdState(state.limit + 1, 0, completed, state.quiet_until)
            return AimdState(state.limit, streak, completed, state.quiet_until)
        if sample.outcome == OVERLOAD:
            completed = state.completed + 1
            if completed <= state.quiet_until or state.limit <= 1:
                return AimdState(state.limit, 0, completed, state.quiet_until)
            return AimdState(max(1, state.limit // 2), 0, completed, completed + sample.in_flight)
        return state


@dataclass(frozen=True)
class GradientState(LimitState):
    """State of :class:`GradientLimit`.

    Attributes:
        estimate: The limit before rounding down (``limit`` is ``int(estimate)``).
        short_rtt: Fast moving average of the round-trip times (the current delay).
        long_rtt: Slow moving average, biased to the lowest delays (the delay without load).
        samples: :data:`OK` samples seen.
        completed: Samples of :data:`OK` or :data:`OVERLOAD` seen.
        quiet_until: Overloads up to this ``completed`` count belong to the last burst.
        burst_at: ``completed`` count at the start of the last burst of overloads (-1: none).
        hint: What the service admitted in the last burst of overloads: the limit when it
            began, less the share of attempts refused (0: no burst yet).
        burst_limit: The limit when the last burst began.
        refused: Overloads in the last burst.
        window: Attempts in flight when the last burst began, itself included.
        pause: Seconds every new attempt must wait, decided by this update (0: none).
        rate: Attempts per second the limiter lets start (0: not paced).
        admitted: Successes per second in the last complete measurement window.
        window_at: Start of the current measurement window (``Sample.at``; 0: none yet; after
            a pause, its end: answers before it are not measured).
        window_ok: Successes in the current measurement window.
        window_over: Rate refusals (429) in the current measurement window.
        bursts: Bursts of overloads in a row, each soon after the previous one.
        streak_at: When the first of those bursts began (``Sample.at``).
        clean: Measurement windows in a row that used the whole pace without a refusal.
        plateau: Bursts in a row that began near the previous burst's ``hint`` (the
            service's capacity, confirmed): each doubles the successes a probe needs.
        cut_at: When the limit last shrank for delay (``Sample.at``; 0: never): attempts sent
            before then do not shrink it again.
        grow_from: The estimate when the round trip of growth in progress began.
        grow_at: When that round trip began (``Sample.at``; 0: none yet).
    """

    estimate: float = 0.0
    short_rtt: float = 0.0
    long_rtt: float = 0.0
    samples: int = 0
    completed: int = 0
    quiet_until: int = 0
    burst_at: int = -1
    hint: float = 0.0
    burst_limit: float = 0.0
    refused: int = 0
    window: int = 1
    pause: float = 0.0
    rate: float = 0.0
    admitted: float = 0.0
    window_at: float = 0.0
    window_ok: int = 0
    window_over: int = 0
    bursts: int = 0
    streak_at: float = 0.0
    clean: int = 0
    plateau: int = 0
    cut_at: float = 0.0
    grow_from: float = 0.0
    grow_at: float = 0.0


@dataclass(frozen=True)
class GradientLimit(LimitPolicy):
    """The default policy: grows from low latency and success, backs off on delay and overload.

    In the family of Vegas and Netflix's Gradient2. Each :data:`OK` sample updates two moving
    averages of the round-trip time, a fast one (the current delay) and a slow one biased to the
    lowest values (the delay of an idle service). Their ratio, with a tolerance, is the
    *gradient* (at most 1):

    * gradient < 1 (the service queues our requests): the limit shrinks towards
      ``limit x gradient``, once per round trip (as Vegas adjusts its window once per RTT):
      the answers of attempts sent before the last such decrease do not shrink it again. A
      client that could not read its answers for a moment (a busy CPU, a garbage collection)
      sees them all late at once; that is one round trip's worth of news, not twenty;
    * gradient = 1, the limit is in use (at least ``in_use`` of it in flight, or half of it
      with attempts waiting: it grows only while it bounds the demand, as TCP validates its
      window) and below ``delivery_gain`` times what the service delivers in flight (its
      rate of successes x the round-trip time, as BBR bounds its window): it grows by a
      bounded queue allowance (``sqrt(limit)``, at most ``queue_max``) per sample, smoothed,
      and by at most one such allowance per round trip (the first refusal takes a round trip
      to come back: a limit that grew with every answer meanwhile, as TCP's slow start, had
      overshot the service's capacity by the growth of a whole round trip, 16 slots at 200
      sessions on ``beta``, and that many attempts were refused at once);
      once it nears the limit at which the service last refused requests (``hint``), it only
      probes, one more slot per ``probe x limit`` successes, so that refusals stay rare
      (twice as many successes per slot for each burst of 503s in a row that begins near the
      last hint at a limit of at least ``2 x min_limit``, up to ``2 ** plateau_max`` times: the
      capacity, found again and again; growing two slots past it without a refusal ends
      this plateau);
    * an :data:`OVERLOAD` (429/503) multiplies it by ``backoff`` once per burst and records
      the limit as ``hint``; refusals of the attempts already in flight then do not shrink
      it again by a factor, but by what they tell: with ``r`` of those ``w`` attempts
      refused, it is at most ``hint x (1 - r / w)`` (what the service admitted) x 0.95, but
      not below half of it in one burst (refusals come back fast and may outnumber ``w``),
      and ``hint`` becomes that admitted share, without the ``0.95``;
    * a ``Retry-After`` becomes an endpoint-wide pause when the overload persists:
      ``pause_after`` bursts in a row, each starting within ``2 x limit`` completions of the
      previous one, over at least two measurement windows (neither the decreases nor the pace
      relieved the service). A refusal at the
      edge of capacity only shrinks the limit and sets the pace: an attempt refused with a 429
      waits its ``Retry-After`` anyway before it is retried, one refused with a 503 is
      requeued (it waits for a slot under the reduced limit) while the retry budget is nearly
      full (see :class:`RetryBudget`).

    A service that limits *requests per second* (a 429 once its token bucket is empty) is not
    held below its rate by a concurrency limit alone: the rate of ``limit`` attempts in flight
    moves with every round-trip time, and each excursion past the rate costs a burst of
    refusals. So the policy also paces attempts, learning the rate from the refusals:

    * it measures the successes per second (``admitted``) over windows of at least
      ``rate_window`` seconds and ``rate_samples`` answers (from :attr:`Sample.at`), or
      ``refused_window`` seconds once the window saw rate refusals: a service that refuses
      for rate admits exactly its rate, so a short window measures it, and the sooner the
      pace follows it the fewer attempts are refused;
    * at the first burst of rate refusals (429), and at the end of each window that saw
      some, it sets a pace (``rate``) of ``rate_margin`` times the lower of that measure and the
      current pace, so that the next attempts start below what the service admitted (one
      window cuts the pace by 30% at most, and it never goes below what ``min_limit``
      attempts in flight send at the current round-trip time: a light client measures its
      own demand, not the service);
    * each success adds ``rate_growth`` attempts per second to the pace (a pace in use grows by
      ``rate_growth`` of itself per second, probing for more), up to four times faster after
      windows that used the whole pace without a refusal.

    Refusals of the number in flight (503) do not set a pace: the concurrency limit answers
    them.

    :data:`ERROR` samples (other 5xx, no answer) say nothing about capacity and are ignored.
    The limit stays within ``[min_limit, max_limit]`` (overloads may take it down to 1).

    Attributes:
        max_limit: The ceiling.
        initial_limit: The limit before any sample.
        min_limit: The floor of decreases caused by delay.
        tolerance: How much slower than the idle delay the current delay may be before the
            limit shrinks (2.0: twice).
        smoothing: Weight of one update in the new limit (0..1).
        queue_max: Largest queue allowance added per update.
        backoff: Factor applied to the limit on a burst of overloads.
        probe: Successes per unit of limit needed to grow by one near ``hint``.
        near_hint: Fraction of ``hint`` above which growth is by probing only.
        plateau_max: Most doublings of the probing interval when bursts keep beginning at
            the same limit (the service's capacity, found again and again).
        delivery_gain: The limit grows only while it is below this multiple of what the
            service delivers in flight (successes per second x round-trip time); 0: no bound.
        in_use: Fraction of the limit in flight (this attempt included) for a success to
            grow it. Below it, the application's demand, not the service, is the bound, and a
            limit grown then would let the next burst of demand past the service's capacity.
        pause_max: Longest endpoint-wide pause, in seconds, whatever ``Retry-After`` says.
        pause_after: Bursts in a row, each soon after the previous one, before a
            ``Retry-After`` pauses the endpoint.
        rate_window: Shortest window, in seconds, over which the admitted rate is measured.
        refused_window: Shortest window, in seconds, once it saw rate refusals (429).
        rate_samples: Fewest answers in such a window (a slow service needs longer ones).
        rate_margin: Fraction of the admitted rate the pace is set to on a burst (0: no pacing).
        rate_growth: Attempts per second added to the pace by each success.
    """

    max_limit: int = DEFAULT_MAX_CONCURRENCY
    initial_limit: int = 16
    min_limit: int = 4
    tolerance: float = 2.0
    smoothing: float = 0.2
    queue_max: float = 4.0
    backoff: float = 0.8
    probe: int = 4
    near_hint: float = 0.9
    in_use: float = 0.9
    plateau_max: int = 4
    delivery_gain: float = 1.5
    pause_max: float = 30.0
    pause_after: int = 3
    rate_window: float = 0.5
    refused_window: float = 0.0625
    rate_samples: int = 32
    rate_margin: float = 0.95
    rate_growth: float = 0.02

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError("need 1 <= min_limit <= initial_limit <= max_limit")
        if self.tolerance < 1 or not 0 < self.smoothing <= 1 or not 0 < self.backoff < 1:
            raise ValueError("need tolerance >= 1, 0 < smoothing <= 1 and 0 < backoff < 1")
        if not 0 < self.in_use <= 1 or self.delivery_gain < 0:
            raise ValueError("need 0 < in_use <= 1 and delivery_gain >= 0")
        if self.queue_max < 1 or self.probe < 1 or self.pause_max < 0 or self.pause_after < 1:
            raise ValueError("need queue_max, probe, pause_after >= 1 and pause_max >= 0")
        if self.rate_window <= 0 or self.rate_samples < 1 or self.rate_growth < 0:
            raise ValueError("need rate_window > 0, rate_samples >= 1 and rate_growth >= 0")
        if not 0 < self.refused_window <= self.rate_window:
            raise ValueError("need 0 < refused_window <= rate_window")
        if not 0 <= self.rate_margin < 1:
            raise ValueError("need 0 <= rate_margin < 1")

    def initial(self) -> GradientState:
        """The state before any sample."""
        return GradientState(self.initial_limit, float(self.initial_limit))

    def update(self, state: LimitState, sample: Sample) -> GradientState:
        """The state after one sample."""
        assert isinstance(state, GradientState)
        if sample.outcome == OK:
            return self._on_ok(state, sample)
        if sample.outcome == OVERLOAD:
            return self._on_overload(state, sample)
        return replace(state, pause=0.0) if state.pause else state

    def _on_ok(self, s: GradientState, sample: Sample) -> GradientState:
        rtt = max(sample.rtt, 1e-6)
        if s.samples == 0:
            short = long = rtt
        else:
            short = s.short_rtt + (rtt - s.short_rtt) * 0.1
            # slow to rise (600-sample average), quick to follow a lower delay
            alpha = 2 / 601 if short >= s.long_rtt else 0.05
            long = s.long_rtt + (short - s.long_rtt) * alpha
        gradient = min(1.0, self.tolerance * long / short)
        estimate, cut_at = s.estimate, s.cut_at
        grow_from, grow_at = s.grow_from, s.grow_at
        if gradient < 1.0:
            if not (sample.at and cut_at) or sample.at - rtt >= cut_at:  # sent after the cut
                estimate += (estimate * gradient - estimate) * self.smoothing
                estimate = max(estimate, float(min(self.min_limit, s.limit)))
                cut_at = sample.at
        elif self._in_use(sample, estimate) and not self._past_delivery(s, sample, estimate):
            estimate, grow_from, grow_at = self._grown(s, sample, short)
        estimate = min(estimate, float(self.max_limit))
        return replace(
            self._measured(s, sample),
            limit=max(1, int(estimate)),
            estimate=estimate,
            short_rtt=short,
            long_rtt=long,
            samples=s.samples + 1,
            completed=s.completed + 1,
            pause=0.0,
            plateau=0 if estimate > s.hint / self.near_hint + 2 else s.plateau,
            cut_at=cut_at,
            grow_from=grow_from,
            grow_at=grow_at,
        )

    def _grown(self, s: GradientState, sample: Sample, short: float) -> tuple[float, float, float]:
        """The estimate after a success that may grow it, with the round trip of growth.

        Near the last ``hint`` it probes (a fraction of a slot per success); elsewhere it grows
        by the queue allowance, smoothed, and by one allowance at most within a round trip
        (``short``, from ``grow_at``; a sample without a time begins a round trip of its own),
        never past ``near_hint`` of the hint in one step.

        Returns:
            ``(estimate, grow_from, grow_at)``.
        """
        estimate, grow_from, grow_at = s.estimate, s.grow_from, s.grow_at
        if s.hint and estimate >= s.hint * self.near_hint:
            return estimate + 1.0 / (self.probe * 2**s.plateau * estimate), grow_from, grow_at
        queue = min(self.queue_max, math.sqrt(estimate))
        if not sample.at or sample.at - grow_at >= short:
            grow_from, grow_at = estimate, sample.at
        estimate = min(estimate + queue * self.smoothing, grow_from + queue)
        if s.hint:
            estimate = min(estimate, max(s.hint * self.near_hint, s.estimate))
        return estimate, grow_from, grow_at

    def _past_delivery(self, s: GradientState, sample: Sample, estimate: float) -> bool:
        """Whether the limit is already ``delivery_gain`` times what the service delivers.

        What the service delivers in flight is its rate of successes times the round-trip
        time (Little's law, the bandwidth-delay product of BBR). A limit above a multiple of
        it adds no throughput: only attempts the service will refuse (a 503 for too many in
        flight, a 429 for too many per second). The multiple leaves room to probe: more
        delivered raises it. The rate is the last window's, or before the first window ends,
        the rate so far (from ``min_limit`` successes on); when processes share the limit, it
        is scaled to the host's by this process's share of the attempts in flight.
        """
        if not self.delivery_gain or not s.short_rtt:
            return False
        rate = s.admitted
        if not rate and s.window_at and s.window_ok >= self.min_limit:
            rate = s.window_ok / max(sample.at - s.window_at, 1e-3)
        if not rate:
            return False
        rate /= max(sample.share, 1e-3)
        return estimate >= max(self.min_limit, self.delivery_gain * rate * s.short_rtt)

    def _in_use(self, sample: Sample, estimate: float) -> bool:
        """Whether the limit bounds the demand.

        ``in_use`` of it in flight, or half of it with attempts waiting (answers handled in a
        batch leave fewer in flight for a moment).
        """
        in_flight = sample.in_flight + 1
        return in_flight >= estimate * self.in_use or (
            sample.waiting > 0 and in_flight >= estimate / 2
        )

    def _measured(self, s: GradientState, sample: Sample) -> GradientState:
        """``s`` with ``sample`` counted in the measurement window, and the pace updated.

        A window that saw rate refusals (429) sets the pace below what it admitted; a success
        otherwise grows the pace by ``rate_growth``, faster after windows that used the whole
        pace without a refusal (up to ``4 x rate_growth``).
        """
        if sample.at <= 0 or not self.rate_margin:
            return s
        ok, over = sample.outcome == OK, int(sample.rate_limited)
        if sample.at < s.window_at:  # during a pause: its answers measure nothing
            return s
        if not s.window_at:
            return replace(s, window_at=sample.at, window_ok=int(ok), window_over=over)
        rate = s.rate + self.rate_growth * min(1 + s.clean, 4) if s.rate and ok else s.rate
        window_ok, window_over = s.window_ok + ok, s.window_over + over
        # a window with refusals ends sooner: the pace is too high, the sooner it is measured
        # the fewer refusals (each window still cuts it by 30% at most)
        least = self.refused_window if window_over else self.rate_window
        short = sample.at - s.window_at < least
        if short or window_ok + window_over < self.rate_samples:
            return replace(s, rate=rate, window_ok=window_ok, window_over=window_over)
        admitted = window_ok / (sample.at - s.window_at)
        clean = 0
        if window_over:
            rate = self._paced(replace(s, rate=rate, admitted=admitted))
        elif rate and admitted >= 0.9 * rate:
            clean = s.clean + 1
        return replace(
            s,
            rate=rate,
            admitted=admitted,
            window_at=sample.at,
            window_ok=0,
            window_over=0,
            clean=clean,
        )

    def _on_overload(self, s: GradientState, sample: Sample) -> GradientState:
        completed = s.completed + 1
        measured = self._measured(s, sample)
        if completed <= s.quiet_until:  # part of the burst already acted on
            refused = s.refused + 1
            share = max(0.5, 1.0 - refused / s.window)
            estimate = max(1.0, min(s.estimate, s.burst_limit * max(0.5, share * 0.95)))
            return replace(
                measured,
                limit=max(1, int(estimate)),
                estimate=estimate,
                completed=completed,
                hint=min(s.hint, s.burst_limit * share),
                refused=refused,
                pause=0.0,
            )
        persistent = s.burst_at >= 0 and completed - s.burst_at <= 2 * s.limit
        bursts = s.bursts + 1 if persistent else 1
        streak_at = s.streak_at if persistent else sample.at
        lasted = sample.at - streak_at >= 2 * self.rate_window if sample.at else True
        pause = 0.0
        if bursts >= self.pause_after and lasted and sample.retry_after:
            pause = min(sample.retry_after, self.pause_max)
        estimate = max(1.0, s.estimate * self.backoff)
        # the first rate refusal sets a pace, unless the window it ended has just set one
        rate = measured.rate or (self._paced(measured) if sample.rate_limited else 0.0)
        # refused again for the number in flight where it was before (not while still falling
        # from a burst; a rate refusal is the pace's to answer)
        near = (
            not sample.rate_limited
            and s.hint
            and 2 * self.min_limit <= s.limit <= s.hint / self.near_hint + 1
        )
        return replace(
            measured,
            plateau=min(s.plateau + 1, self.plateau_max) if near else 0,
            rate=rate,
            limit=max(1, int(estimate)),
            estimate=estimate,
            completed=completed,
            quiet_until=completed + sample.in_flight,
            burst_at=completed,
            hint=float(s.limit),
            burst_limit=float(s.limit),
            refused=1,
            window=max(1, sample.in_flight + 1),
            pause=pause,
            bursts=bursts,
            streak_at=streak_at,
            **self._fresh_window(s, sample, pause),
        )

    def _fresh_window(self, s: GradientState, sample: Sample, pause: float) -> dict[str, Any]:
        """A measurement window that starts now, if this overload begins one (else nothing).

        After an endpoint-wide pause: the pause's answers measure nothing. At the first rate
        refusal: the window in progress mixes the service's burst allowance, spent before it,
        with its rate; a window begun at the refusal measures the rate alone (answers come at
        the rate the service refills while it refuses), so the pace it sets is right at once.
        """
        if pause:
            return {"window_at": sample.at + pause, "window_ok": 0, "window_over": 0}
        if sample.rate_limited and not s.rate and sample.at:
            return {"window_at": sample.at, "window_ok": 0, "window_over": 0}
        return {}

    def _paced(self, s: GradientState) -> float:
        """The pace after rate refusals: below the admitted rate, but at most a cut of 30%.

        (A client that stalled, then sent its queue at once, admits little in a window that
        ends with refusals: one such window must not throttle it for long.) Never below what
        ``min_limit`` attempts in flight send at the current round-trip time: a light client
        (a few statements, a backoff between them) measures its own demand, not the service.
        """
        if not s.admitted or not self.rate_margin:
            return s.rate
        if not s.rate:
            paced = s.admitted * self.rate_margin
        else:
            paced = max(min(s.rate, s.admitted) * self.rate_margin, s.rate * 0.7)
        return max(paced, self.min_limit / s.short_rtt) if s.short_rtt else paced


@dataclass(frozen=True)
class RetryBudget:
    """Retries are spent from a token bucket, as in gRPC's retry throttling.

    Every attempt refused for load (429/503) takes one token, every success gives ``ratio``
    back, up to ``max_tokens``; a retry of such a refusal is allowed only while more than half
    of the tokens are left. A healthy endpoint never runs out; against an overloaded one,
    retries settle at about ``ratio`` per success instead of multiplying the load. Other
    failures (5xx, no answer) do not touch the budget, and their retries are not refused by it:
    they say nothing about load, and each call's retries and deadline bound them.

    A refusal of the number in flight (503) is requeued at once (see
    :class:`~deeplake_sdk.retry.RetryPolicy`) only while at least ``requeue_share`` of the
    tokens are left: a few refusals at the edge of capacity cost a requeue each, a burst of
    them backs off in full, so that quick retries never spend the budget real retries need.

    Attributes:
        max_tokens: Size of the bucket (and the start).
        ratio: Tokens given back per success.
        requeue_share: Share of the tokens that must be left for a quick requeue.
    """

    max_tokens: float = 200.0
    ratio: float = 0.1
    requeue_share: float = 0.9

    def __post_init__(self) -> None:
        if self.max_tokens < 2 or not 0 <= self.ratio <= self.max_tokens:
            raise ValueError("need max_tokens >= 2 and 0 <= ratio <= max_tokens")
        if not 0 <= self.requeue_share <= 1:
            raise ValueError("need 0 <= requeue_share <= 1")

    def update(self, tokens: float, ok: bool) -> float:
        """The tokens left after one attempt (``ok``: it succeeded)."""
        if ok:
            return min(self.max_tokens, tokens + self.ratio)
        return max(0.0, tokens - 1.0)

    def allows(self, tokens: float) -> bool:
        """Whether a retry may be sent with ``tokens`` left."""
        return tokens > self.max_tokens / 2

    def allows_requeue(self, tokens: float) -> bool:
        """Whether a refusal of the number in flight may be retried at once, ``tokens`` left."""
        return tokens >= self.max_tokens * self.requeue_share


def policy_for(limit: int | None, adaptive: bool) -> LimitPolicy:
    """The policy for a ``max_concurrency`` and ``adaptive`` setting.

    Adaptive with the default ceiling (or more): :class:`GradientLimit`; adaptive with a lower
    one: :class:`AimdLimit` (it starts at that ceiling); not adaptive: :class:`FixedLimit`.
    """
    if not adaptive or not limit:
        return FixedLimit(limit)
    if limit >= DEFAULT_MAX_CONCURRENCY:
        return GradientLimit(max_limit=limit)
    return AimdLimit(limit)


class Limiter:
    """Bound the number of concurrent HTTP attempts; FIFO among those who wait.

    Args:
        limit: Maximum attempts in flight; ``None`` means unbounded (only counted).
        adaptive: Adapt the effective limit (see :func:`policy_for`).
        policy: A :class:`LimitPolicy` to use instead (``limit`` and ``adaptive`` are then
            ignored).
        parent: A limiter whose slot is also taken, after this one's, for every attempt (the
            origin's shared bound under a client's own cap). Samples feed both; the retry
            budget and pauses are the parent's.
        budget: The retry budget (of a limiter without parent).
        share: The host-wide budget this limiter's limit is shared through (a
            :class:`~deeplake_sdk.hostshare.HostShare`), or ``None``.
        name: What the DEBUG log calls this limiter (the origin).
    """

    def __init__(
        self,
        limit: int | None,
        *,
        adaptive: bool = False,
        policy: LimitPolicy | None = None,
        parent: Limiter | None = None,
        budget: RetryBudget | None = None,
        share: Any = None,
        name: str = "",
    ):
        self.policy = policy or policy_for(limit, adaptive)
        self.parent = parent
        self.name = name
        self.budget = budget or RetryBudget()
        self._tokens = self.budget.max_tokens
        self._state = self.policy.initial()
        self._lock = allocate_lock()
        self._waiters: deque[Completion] = deque()
        self._urgent: deque[Completion] = deque()  # served before ``_waiters``
        self._in_flight = 0
        self._peak = 0
        self._paused_until = 0.0
        self._next_start = 0.0  # when the next attempt may start, while the policy paces
        self._share = share
        self._share_limit: int | None = None  # this process's part of the host budget
        self._others_in_flight = 0
        self._next_share = 0.0
        self._sharing = False
        self._shared_busy = False  # what the host last read of this process: busy or idle
        self.decreases = 0
        self.increases = 0
        self.pauses = 0
        self.retries_denied = 0
        self.granted = 0
        self.queued = 0
        self.wait_total = 0.0
        self.wait_max = 0.0

    def __repr__(self) -> str:
        return (
            f"<Limiter {self.name} limit={self.limit} in_flight={self._in_flight} "
            f"waiting={self._queued()} {self.policy}>"
        )

    def fresh(self, parent: Limiter | None = None) -> Limiter:
        """A new limiter with the same policy and no state (a forked child's).

        Args:
            parent: The new limiter's parent (a forked child's origin limiter).
        """
        return Limiter(None, policy=self.policy, parent=parent, budget=self.budget, name=self.name)

    # -- introspection -----------------------------------------------------------------------
    @property
    def max_limit(self) -> int | None:
        """The policy's ceiling."""
        return self.policy.max_limit

    @property
    def adaptive(self) -> bool:
        """Whether the limit moves with the samples."""
        return not isinstance(self.policy, FixedLimit)

    @property
    def in_flight(self) -> int:
        """Attempts currently holding a slot."""
        return self._in_flight

    @property
    def peak(self) -> int:
        """Highest number of attempts ever in flight at once."""
        return self._peak

    @property
    def waiting(self) -> int:
        """Callers queued for a slot."""
        return self._queued()

    @property
    def limit(self) -> int | None:
        """Current effective limit (``None``: unbounded).

        The policy's, or this process's part of it when processes of the host share it.
        """
        return self._effective()

    @property
    def state(self) -> LimitState:
        """The policy's current state."""
        return self._state

    @property
    def retry_tokens(self) -> float:
        """Tokens left in the retry budget (the parent's when there is one)."""
        return self.parent.retry_tokens if self.parent is not None else self._tokens

    def stats(self) -> dict[str, Any]:
        """A snapshot: limit, in flight, queue, waits, changes, pauses and retry budget.

        ``wait_mean_s`` and ``wait_max_s`` cover the attempts that had to queue
        (``queued`` of ``granted``).
        """
        with self._lock:
            out: dict[str, Any] = {
                "limit": self._effective(),
                "policy_limit": self._state.limit,
                "max_limit": self.policy.max_limit,
                "in_flight": self._in_flight,
                "waiting": self._queued(),
                "peak": self._peak,
                "granted": self.granted,
                "queued": self.queued,
                "wait_mean_s": self.wait_total / self.queued if self.queued else 0.0,
                "wait_max_s": self.wait_max,
                "increases": self.increases,
                "decreases": self.decreases,
                "pauses": self.pauses,
                "paused_for_s": max(0.0, self._paused_until - time.monotonic()),
                "rate": getattr(self._state, "rate", 0.0),
                "retry_tokens": self._tokens,
                "retries_denied": self.retries_denied,
                "host_in_flight_others": self._others_in_flight,
            }
        if self.parent is not None:
            out["origin"] = self.parent.stats()
        return out

    def reset_peak(self) -> None:
        """Reset :attr:`peak` to the current in-flight count."""
        with self._lock:
            self._peak = self._in_flight

    # -- retry budget --------------------------------------------------------------------------
    def allow_retry(self) -> bool:
        """Whether the retry budget allows one more retry now (see :class:`RetryBudget`)."""
        if self.parent is not None:
            return self.parent.allow_retry()
        with self._lock:
            allowed = self.budget.allows(self._tokens)
            if not allowed:
                self.retries_denied += 1
        return allowed

    def allows_requeue(self) -> bool:
        """Whether a 503's first retry may be a quick requeue (see :class:`RetryBudget`)."""
        if self.parent is not None:
            return self.parent.allows_requeue()
        with self._lock:
            return self.budget.allows_requeue(self._tokens)

    # -- slots -------------------------------------------------------------------------------
    def acquire(self, timeout: float | None = None, *, urgent: bool = False) -> None:
        """Take a slot, waiting (cooperatively, in FIFO order) up to ``timeout`` seconds.

        ``urgent`` attempts wait in a queue of their own, served first (FIFO among them): the
        journal's drain, whose every statement carries the writes of many callers waiting for
        it, uses it. It sends one statement at a time, so it cannot starve the others.

        With a parent, the parent's slot is taken next (within what is left of ``timeout``).
        During an endpoint-wide pause (a ``Retry-After``), the slot is held until the pause
        ends, so that the order of the queue is kept and nothing is sent meanwhile; while the
        policy paces attempts (a ``rate`` in its state), each also waits for its turn.

        Raises:
            NetworkError: No slot became free in time (the request was not sent).
        """
        started = time.monotonic()
        self._acquire_own(timeout, urgent)
        try:
            if self.parent is not None:
                left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
                self.parent.acquire(left, urgent=urgent)
            else:
                self._wait_turn(timeout, started)
        except BaseException:
            self._release_own(None)
            raise

    def _acquire_own(self, timeout: float | None, urgent: bool = False) -> None:
        self._maybe_share()
        with self._lock:
            limit = self._effective()
            ahead = self._urgent if urgent else self._urgent or self._waiters
            if not ahead and (limit is None or self._in_flight < limit):
                self._take()
                return
            ticket = Completion()
            (self._urgent if urgent else self._waiters).append(ticket)
        queued_at = time.monotonic()
        try:
            granted = ticket.wait(timeout)
        except BaseException:
            if not self._abandon(ticket):
                self._release_own(None)  # granted meanwhile: hand it on
            raise
        if granted or not self._abandon(ticket):
            waited = time.monotonic() - queued_at
            with self._lock:
                self.queued += 1
                self.wait_total += waited
                self.wait_max = max(self.wait_max, waited)
            return
        wait = "" if timeout is None else f" within {timeout:.1f}s"
        raise NetworkError(
            f"no free connection slot{wait} ({self._in_flight} requests in flight, "
            f"limit {self.limit}, {self._queued()} waiting); the request was not sent"
        )

    def _wait_turn(self, timeout: float | None, started: float) -> None:
        """Wait for the end of an endpoint-wide pause and for this attempt's turn in the pace."""
        with self._lock:
            now = time.monotonic()
            start_at = max(now, self._paused_until)
            rate = getattr(self._state, "rate", 0.0)
            if rate:
                start_at = max(start_at, self._next_start)
                self._next_start = start_at + 1.0 / rate
        wait = start_at - now
        if wait <= 0:
            return
        if timeout is not None and now - started + wait > timeout:
            raise NetworkError(
                f"the service asked every client to wait {wait:.1f}s (Retry-After, or the pace "
                "its refusals set), longer than this call may still wait; the request was not sent"
            )
        cooperative_sleep(wait)

    def release(self, sample: Sample | None = None) -> None:
        """Give a slot back, to the longest waiter if any, after feeding ``sample`` to the policy.

        Args:
            sample: What the attempt that held the slot tells the policy (``None``: nothing).

        Raises:
            RuntimeError: No slot is held (a release without its acquire).
        """
        if self.parent is not None:
            self.parent.release(sample)
        self._release_own(sample)

    def _release_own(self, sample: Sample | None) -> None:
        with self._lock:
            if self._in_flight <= 0:
                raise RuntimeError("Limiter.release() without a slot held")
            self._in_flight -= 1
            if sample is not None:
                self._observe(sample)
            self._grant()
        self._maybe_share()

    @contextmanager
    def slot(self, timeout: float | None = None) -> Iterator[None]:
        """Hold a slot for the body of a ``with`` block."""
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()

    # -- feedback without a slot (kept for callers of the previous interface) ----------------
    def on_success(self) -> None:
        """Feed an :data:`OK` sample."""
        self.observe(Sample(OK))

    def on_overload(self) -> None:
        """Feed an :data:`OVERLOAD` sample."""
        self.observe(Sample(OVERLOAD))

    def observe(self, sample: Sample) -> None:
        """Feed ``sample`` to the policy (its ``in_flight`` is taken from the limiter)."""
        with self._lock:
            self._observe(sample)
            self._grant()

    # -- host-wide budget ----------------------------------------------------------------------
    def _maybe_share(self) -> None:
        """Publish this process's use and read the others', every ``share.refresh`` seconds.

        A process that goes idle says so at once: until it does, the others keep their limit
        shared with a demand that no longer exists (for up to ``share.stale`` seconds if it
        stays idle), and count its last requests as still in flight.
        """
        share = self._share
        if share is None or self._sharing:
            return
        if time.monotonic() < self._next_share and not self._went_idle():
            return
        with self._lock:
            if self._sharing:
                return
            self._sharing = True
            demand = self._in_flight + self._queued()
            in_flight, limit = self._in_flight, self._state.limit
            self._shared_busy = demand > 0
        try:
            others = share.exchange(in_flight, demand, limit)
        finally:
            with self._lock:
                self._sharing = False
                self._next_share = time.monotonic() + share.refresh
        if others is None:  # sharing unavailable: the process keeps the whole limit
            self._share = None
            others = (0, 0)
        with self._lock:
            self._others_in_flight, others_demand = others
            self._share_limit = None
            if limit is not None and others_demand > 0:
                mine = max(1, demand)
                self._share_limit = max(1, limit * mine // (mine + others_demand))
            self._grant()

    def _went_idle(self) -> bool:
        """Whether nothing is in flight or queued here since the host last read "busy"."""
        return self._shared_busy and not self._in_flight and not self._queued()

    # -- under self._lock ----------------------------------------------------------------------
    def _effective(self) -> int | None:
        limit = self._state.limit
        if limit is None or self._share_limit is None:
            return limit
        return min(limit, self._share_limit)

    def _take(self) -> None:
        self._in_flight += 1
        self.granted += 1
        self._peak = max(self._peak, self._in_flight)

    def _observe(self, sample: Sample) -> None:
        if self.parent is None and sample.outcome != ERROR:
            self._tokens = self.budget.update(self._tokens, sample.outcome == OK)
        host = Sample(
            sample.outcome,
            sample.rtt,
            self._in_flight + self._others_in_flight,
            sample.retry_after,
            sample.at or time.monotonic(),
            sample.rate_limited,
            self._queued(),
            (self._in_flight + 1) / (self._in_flight + self._others_in_flight + 1),
        )
        old = self._state
        new = self.policy.update(old, host)
        if new is old:
            return
        self._state = new
        pause = getattr(new, "pause", 0.0)
        if pause:
            self._paused_until = max(self._paused_until, time.monotonic() + pause)
            self.pauses += 1
            logger.debug("%s: overload persists, every attempt waits %.1fs", self.name, pause)
        if old.limit is not None and new.limit is not None and new.limit != old.limit:
            if new.limit < old.limit:
                self.decreases += 1
            else:
                self.increases += 1
            logger.debug(
                "%s: limit %d -> %d (%s, %d in flight, %d waiting)",
                self.name,
                old.limit,
                new.limit,
                sample.outcome,
                self._in_flight,
                self._queued(),
            )

    def _queued(self) -> int:
        return len(self._waiters) + len(self._urgent)

    def _grant(self) -> None:
        """Hand free slots to the longest waiters (each woken on its own hub or lock)."""
        limit = self._effective()
        while (self._urgent or self._waiters) and (limit is None or self._in_flight < limit):
            self._take()
            (self._urgent or self._waiters).popleft().set()

    def _abandon(self, ticket: Completion) -> bool:
        """A waiter gives up: leave the queue; returns False if it had been granted a slot.

        A waiter granted a slot meanwhile owns it: it keeps it (its timeout raced with the
        grant) or releases it (it was interrupted), see :meth:`acquire`.
        """
        with self._lock:
            if not ticket.is_set():
                (self._urgent if ticket in self._urgent else self._waiters).remove(ticket)
                return True
        return False
