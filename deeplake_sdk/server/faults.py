"""Fault injection: latency, limits, error statuses, resets, lost commits, service quirks.

The service's quirks are its consistency faults: read lag, coalesced UPDATEs, the ALTER window.

A :class:`FaultConfig` describes what to inject; :data:`PROFILES` holds the named ones. The
:class:`FaultInjector` turns a config into per-request :class:`FaultDecision` s. The decision for
the n-th fault-eligible request (counted since the faults were last set or the sequence reset)
comes from a random generator seeded with ``(seed, n)`` only, so one seed always yields the same
sequence of faults for a sequential client, whatever the timing.

At most one of the random faults hits a request: ``p_reset``, the ``p_4xx/5xx`` statuses,
``p_402``, ``p_auth_html`` and ``p_commit_fail`` partition one uniform draw. ``max_faults`` caps
how many requests get one of those (or a pattern fault) before the server heals, so a test can
script "fail twice, then answer". ``p_slow`` and ``p_coalesce`` have draws of their own (from
generators seeded with ``(seed, n, name)``), so turning them on leaves the other faults of a
seed where they were; ``read_lag_ms`` and ``alter_window_s`` apply to every eligible request.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Kinds counted in the server stats under ``injected``.
INJECTED_KINDS = (
    "capacity_503",
    "rate_429",
    "error_429",
    "error_503",
    "error_500",
    "error_502",
    "error_504",
    "reset",
    "commit_502",
    "commit_drop",
    "pattern",
    "error_402",
    "auth_html_401",
    "auth_html_403",
    "slow",
    "read_lag",
    "coalesce",
    "alter_window",
)

# Integer fields that must be >= 0, and optional text fields.
_COUNTS = ("max_inflight", "burst", "retry_after_s", "max_faults")
_TEXTS = ("fail_pattern", "fail_message")

# Random pre-execution faults in draw order: (config field, injected kind, HTTP status or None).
_RANDOM_FAULTS = (
    ("p_reset", "reset", None),
    ("p_429", "error_429", 429),
    ("p_503", "error_503", 503),
    ("p_500", "error_500", 500),
    ("p_502", "error_502", 502),
    ("p_504", "error_504", 504),
    ("p_402", "error_402", 402),
    ("p_auth_html", "auth_html", None),  # 401 or 403, a second draw decides
)


@dataclass
class FaultConfig:
    """What the server injects into data requests (never into ``/_admin``).

    Attributes:
        latency_fixed_ms: constant delay added to every admitted request.
        latency_median_ms: median of an added log-normal delay (0 = none).
        latency_sigma: log-normal shape; 0 makes the random part a constant median.
        max_inflight: admitted requests allowed at once (0 = unlimited); beyond -> 503.
        rate_per_s: per-org token bucket refill rate (0 = unlimited); empty -> 429.
        burst: token bucket size (0 = ``max(1, rate_per_s)``).
        retry_after_s: ``Retry-After`` seconds sent with injected 503 and 429 errors.
        p_429: probability of an injected 429 (not executed).
        p_503: probability of an injected 503 (not executed).
        p_500: probability of an injected 500 (not executed).
        p_502: probability of an injected 502 (not executed).
        p_504: probability of an injected 504 (not executed).
        p_reset: probability of a connection reset before execution (no response).
        p_commit_fail: probability that a successful statement's answer is lost: the client
            gets a 502 or a dropped connection (50/50) although the statement committed.
        fail_pattern: regex; queries whose SQL matches get ``fail_status`` without executing.
        fail_status: status for ``fail_pattern`` matches.
        fail_message: error message of ``fail_pattern`` answers (None = ``injected fault:
            <status> <reason>``), e.g. the service's "already exists" sent with a 500.
        max_faults: requests that get a random or pattern fault, at most, counted since the
            faults were set or the sequence reset (0 = no limit); later requests run normally.
            A lost commit counts when decided, even if its statement then fails. Capacity and
            rate limits, slow queries, read lag, coalescing and the ALTER window are not
            counted nor capped.
        p_402: probability of the service's 402 ``{"balance_cents": 0, "error": "insufficient
            balance, please top up"}`` (not executed).
        p_auth_html: probability of a transient 401 or 403 (50/50) with a gateway's HTML body
            (not executed).
        slow_query_ms: delay of a slow query (added to the latency).
        p_slow: probability that a query is slow.
        read_lag_ms: a write (INSERT/UPDATE/DELETE) is answered before it commits, and commits
            this long after: other requests see it only then (0 = off).
        alter_window_s: after a successful ``ALTER TABLE t ADD COLUMN``, INSERTs into ``t``
            fail with the service's 500 ``Failed to insert tuple: vector::at out of range``
            for this long, without running (0 = off).
        p_coalesce: probability that an UPDATE touching a row updated within the last
            ``coalesce_window_ms`` is answered 200 (with its row count) but rolled back
            (0 = off).
        coalesce_window_ms: how recent an earlier update of a row must be for an UPDATE of it
            to be coalesced (50 ms, as on the service; tests widen it to be independent of
            timing).
        seed: seed of the fault sequence (None = random, reported by ``GET /_admin/faults``).
        profile: name of the profile the config started from (informational).
    """

    latency_fixed_ms: float = 0.0
    latency_median_ms: float = 0.0
    latency_sigma: float = 0.0
    max_inflight: int = 0
    rate_per_s: float = 0.0
    burst: int = 0
    retry_after_s: int = 1
    p_429: float = 0.0
    p_503: float = 0.0
    p_500: float = 0.0
    p_502: float = 0.0
    p_504: float = 0.0
    p_reset: float = 0.0
    p_commit_fail: float = 0.0
    fail_pattern: str | None = None
    fail_status: int = 500
    fail_message: str | None = None
    max_faults: int = 0
    p_402: float = 0.0
    p_auth_html: float = 0.0
    slow_query_ms: float = 0.0
    p_slow: float = 0.0
    read_lag_ms: float = 0.0
    alter_window_s: float = 0.0
    p_coalesce: float = 0.0
    coalesce_window_ms: float = 50.0
    seed: int | None = None
    profile: str = field(default="none")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check ranges and types; raises ValueError with the offending field."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_") and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{f.name} must be a probability in [0, 1], got {value!r}")
            nonnegative = (
                "latency_fixed_ms",
                "latency_median_ms",
                "latency_sigma",
                "rate_per_s",
                "slow_query_ms",
                "read_lag_ms",
                "alter_window_s",
                "coalesce_window_ms",
            )
            if f.name in nonnegative and float(value) < 0:
                raise ValueError(f"{f.name} must be >= 0, got {value!r}")
            if f.name in _COUNTS and int(value) < 0:
                raise ValueError(f"{f.name} must be >= 0, got {value!r}")
        total = (
            sum(float(getattr(self, name)) for name, _, _ in _RANDOM_FAULTS) + self.p_commit_fail
        )
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities add up to {total:.3f} > 1")
        if not 100 <= int(self.fail_status) <= 599:
            raise ValueError(f"fail_status must be an HTTP status, got {self.fail_status!r}")
        if self.fail_pattern is not None:
            try:
                re.compile(self.fail_pattern)
            except re.error as exc:
                raise ValueError(f"fail_pattern is not a valid regex: {exc}") from exc
        if self.fail_message is not None and not self.fail_message.strip():
            raise ValueError("fail_message must be a non-empty text (or null for the default)")

    @classmethod
    def from_profile(cls, name: str = "none", **overrides: Any) -> FaultConfig:
        """A named profile with field overrides applied (unknown names raise ValueError)."""
        if "profile" in overrides:
            raise ValueError(
                "the fault profile is the name given to from_profile "
                "(faults= for local() and LocalServer.start), not a field override"
            )
        try:
            base = PROFILES[name]
        except KeyError:
            raise ValueError(
                f"unknown fault profile {name!r}; choose one of {', '.join(PROFILES)}"
            ) from None
        return base.replace(profile=name, **overrides)

    def replace(self, **overrides: Any) -> FaultConfig:
        """A copy with fields replaced (values coerced to the field types)."""
        known = {f.name: f for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in known:
                raise ValueError(f"unknown fault setting {key!r}; known: {', '.join(known)}")
            clean[key] = _coerce(key, value)
        return dataclasses.replace(self, **clean)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _coerce(key: str, value: Any) -> Any:
    if value is None:
        if key in ("seed", *_TEXTS):
            return None
        raise ValueError(f"{key} cannot be null")
    if key in (*_TEXTS, "profile"):
        return str(value)
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number, got {value!r}")
    if key in (*_COUNTS, "fail_status", "seed"):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return int(value)
    return float(value)


#: Named profiles. ``flaky`` injects ~7% faults (1% of each kind); ``beta`` mimics a busy cloud
#: beta: long-tailed latency, capacity and per-org rate limits, <= 1% injected errors;
#: ``service`` is ``beta`` plus the service's consistency quirks (docs/server.rst says why
#: these values).
PROFILES: dict[str, FaultConfig] = {
    "none": FaultConfig(profile="none"),
    "flaky": FaultConfig(
        latency_fixed_ms=1.0,
        p_429=0.01,
        p_503=0.01,
        p_500=0.01,
        p_502=0.01,
        p_504=0.01,
        p_reset=0.01,
        p_commit_fail=0.01,
        profile="flaky",
    ),
    "beta": FaultConfig(
        latency_median_ms=25.0,
        latency_sigma=0.8,
        max_inflight=32,
        rate_per_s=400.0,
        burst=200,
        p_500=0.002,
        p_502=0.002,
        p_504=0.002,
        p_reset=0.002,
        p_commit_fail=0.002,
        profile="beta",
    ),
}
#: ``seed``: the service as the reference client described it (1.7-6.2 QPS): latency in the
#: hundreds of ms (log-normal, median 250 ms, mean ~300 ms) and a low capacity (6 in flight,
#: 20 requests/s per org, so ~20 requests/s), with ``beta``'s rare injected errors. Kinder than
#: the reference's measurements; docs/server.rst gives the variant fitted to them.
PROFILES["seed"] = PROFILES["beta"].replace(
    latency_median_ms=250.0,
    latency_sigma=0.6,
    max_inflight=6,
    rate_per_s=20.0,
    burst=20,
    profile="seed",
)
PROFILES["service"] = PROFILES["beta"].replace(
    read_lag_ms=200.0,
    alter_window_s=30.0,
    p_coalesce=0.5,
    p_auth_html=0.001,
    profile="service",
)


@dataclass(frozen=True)
class FaultDecision:
    """What happens to one request, decided before it runs.

    Attributes:
        n: index of the request in the fault sequence.
        kind: injected kind applied before execution (``reset``, ``error_500``, ``pattern``...)
            or None.
        status: HTTP status for a pre-execution error, None for a reset or no fault.
        latency_s: delay to add once admitted.
        commit_fail: ``commit_502`` or ``commit_drop`` when the answer of a successful
            statement is to be lost, else None.
        message: error message of a ``pattern`` answer (None = the default one).
        slow_s: extra delay of a slow query (0 = not slow).
        read_lag_s: delay between the answer to a write and its commit.
        alter_window_s: INSERT refusal window opened by an ``ADD COLUMN``.
        track_updates: UPDATEs record the rows they touch (coalescing is on).
        coalesce: an UPDATE of a recently updated row is dropped.
        coalesce_window_s: how recent "recently" is.
    """

    n: int
    kind: str | None = None
    status: int | None = None
    latency_s: float = 0.0
    commit_fail: str | None = None
    message: str | None = None
    slow_s: float = 0.0
    read_lag_s: float = 0.0
    alter_window_s: float = 0.0
    track_updates: bool = False
    coalesce: bool = False
    coalesce_window_s: float = 0.05


def _own_draw(cfg: FaultConfig, n: int, name: str) -> float:
    """A uniform draw of its own for fault ``name`` of request ``n`` (seeded, repeatable)."""
    return random.Random(f"{cfg.seed}/{n}/{name}").random()


class _TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst or max(1.0, rate))
        self.tokens = self.capacity
        self.last = time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class FaultInjector:
    """Applies a :class:`FaultConfig`: per-request decisions, per-org rate limiting.

    Args:
        config: the initial configuration (a missing seed is replaced by a random one).
    """

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.config = FaultConfig()
        self._pattern: re.Pattern[str] | None = None
        self._random = False
        self._n = 0
        self._faults = 0
        self._buckets: dict[str, _TokenBucket] = {}
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Install ``config`` and restart the fault sequence and the rate limiters."""
        if config.seed is None:
            config = config.replace(seed=random.SystemRandom().randrange(1, 2**31))
        with self._lock:
            self.config = config
            self._pattern = re.compile(config.fail_pattern) if config.fail_pattern else None
            # whether decisions need the random generator (it costs ~30 us per request)
            self._random = (
                config.latency_sigma > 0
                or any(getattr(config, name) > 0 for name, _, _ in _RANDOM_FAULTS)
                or config.p_commit_fail > 0
            )
            self._n = 0
            self._faults = 0
            self._buckets = {}

    def reset_sequence(self) -> None:
        """Restart the fault sequence at request 0 (same seed) and the ``max_faults`` count."""
        with self._lock:
            self._n = 0
            self._faults = 0

    def decide(self, sql: str | None = None) -> FaultDecision:
        """Decide the faults of the next fault-eligible request.

        Args:
            sql: the request's SQL (query endpoint) for ``fail_pattern``; None for other routes.
        """
        with self._lock:
            n = self._n
            self._n += 1
            cfg = self.config
            pattern = self._pattern
        decision = self._draw(n, cfg, pattern, sql)
        if decision.kind is None and decision.commit_fail is None:
            return decision
        with self._lock:
            if cfg.max_faults and self._faults >= cfg.max_faults:
                return dataclasses.replace(
                    decision, kind=None, status=None, commit_fail=None, message=None
                )
            self._faults += 1
        return decision

    def _draw(
        self, n: int, cfg: FaultConfig, pattern: re.Pattern[str] | None, sql: str | None
    ) -> FaultDecision:
        """The faults of request ``n`` under ``cfg``, before the ``max_faults`` cap."""
        decision = self._draw_main(n, cfg, pattern, sql)
        slow = sql is not None and cfg.p_slow > 0 and _own_draw(cfg, n, "slow") < cfg.p_slow
        return dataclasses.replace(
            decision,
            slow_s=cfg.slow_query_ms / 1000.0 if slow else 0.0,
            read_lag_s=cfg.read_lag_ms / 1000.0,
            alter_window_s=cfg.alter_window_s,
            track_updates=cfg.p_coalesce > 0,
            coalesce=cfg.p_coalesce > 0 and _own_draw(cfg, n, "coalesce") < cfg.p_coalesce,
            coalesce_window_s=cfg.coalesce_window_ms / 1000.0,
        )

    def _draw_main(
        self, n: int, cfg: FaultConfig, pattern: re.Pattern[str] | None, sql: str | None
    ) -> FaultDecision:
        rng = random.Random(f"{cfg.seed}/{n}") if self._random else None
        u = rng.random() if rng is not None else 1.0
        latency = cfg.latency_fixed_ms + (cfg.latency_median_ms if rng is None else 0.0)
        if rng is not None and cfg.latency_median_ms > 0:
            z = rng.gauss(0.0, 1.0) if cfg.latency_sigma > 0 else 0.0
            latency += cfg.latency_median_ms * math.exp(cfg.latency_sigma * z)
        latency_s = latency / 1000.0
        if pattern is not None and sql is not None and pattern.search(sql):
            return FaultDecision(n, "pattern", cfg.fail_status, latency_s, None, cfg.fail_message)
        if rng is None:
            return FaultDecision(n, None, None, latency_s)
        acc = 0.0
        for name, kind, status in _RANDOM_FAULTS:
            acc += getattr(cfg, name)
            if u < acc:
                if kind == "auth_html":
                    auth = 401 if rng.random() < 0.5 else 403
                    return FaultDecision(n, f"auth_html_{auth}", auth, latency_s)
                return FaultDecision(n, kind, status, latency_s)
        if u < acc + cfg.p_commit_fail:
            kind = "commit_502" if rng.random() < 0.5 else "commit_drop"
            return FaultDecision(n, None, None, latency_s, kind)
        return FaultDecision(n, None, None, latency_s)

    def take_token(self, org: str) -> int:
        """Take a token from ``org``'s bucket.

        Returns:
            0 when admitted, else the ``Retry-After`` seconds (ceil, at least 1).
        """
        cfg = self.config
        if cfg.rate_per_s <= 0:
            return 0
        with self._lock:
            bucket = self._buckets.get(org)
            if bucket is None:
                bucket = self._buckets[org] = _TokenBucket(cfg.rate_per_s, cfg.burst)
            wait = bucket.take()
        return 0 if wait <= 0 else max(1, math.ceil(wait))
