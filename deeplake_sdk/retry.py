"""Retry policy, built on the ``retrying`` package.

What is retried (DESIGN section 4): HTTP 429/500/502/503/504 and network errors (connect
errors, resets, read timeouts), and a few times per call a 401/403 that a gateway sent (a page
that is not the service's JSON: DESIGN section 10). Never retried: other 4xx, the service's own
401/403, answers saying "already exists" (the
real service sends 500 for those on ALTER/CREATE INDEX), ambiguous writes the caller has not
made safe (:class:`~deeplake_sdk.errors.AmbiguousWriteError`), and anything that is not an SDK
error (a bug should surface, not be repeated).

Delays: ``backoff_base * 2**k`` for the k-th retry (0.5, 1, 2, 4 s by default) plus up to
``jitter`` of it at random, capped at ``backoff_max``; a ``Retry-After`` (seconds or an HTTP
date) replaces it when longer, capped at ``retry_after_max``; the first retry of a 500, 502,
504, lost connection or requeued 503 is quicker (``transient_factor``). A call stops when its
retries are spent or when the next sleep would cross its total ``deadline``; the last error is
raised.

``retrying`` itself sleeps with :func:`time.sleep`, which would freeze every greenlet of an
unpatched process, so the sleeping happens here with :func:`gevent.sleep` where greenlets may
be waiting (plain threads without a gevent hub use ``time.sleep``) and ``retrying`` is told to
wait 0 ms.
A fresh ``Retrying`` is built per call because its state (deadline, last error) is per call.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from retrying import Retrying

from deeplake_sdk._coop import cooperative_sleep
from deeplake_sdk.errors import (
    AlreadyExistsError,
    AmbiguousWriteError,
    ApiError,
    AuthError,
    ConnectError,
    NetworkError,
)
from deeplake_sdk.http_errors import is_overload

__all__ = [
    "RETRY_STATUSES",
    "RetryCall",
    "RetryEvent",
    "RetryPolicy",
    "retried",
]

logger = logging.getLogger(__name__)

# retrying logs every failed attempt with its traceback at WARNING; our own messages say what
# matters, so its records go to a silent logger of ours (the library's global one is untouched).
_retrying_logger = logging.getLogger(f"{__name__}.retrying")
_retrying_logger.addHandler(logging.NullHandler())
_retrying_logger.propagate = False
_retrying_logger.disabled = True
# retrying < 1.3.5 has no logger argument (nor any logging).
_RETRYING_KWARGS: dict[str, Any] = (
    {"logger": _retrying_logger}
    if "logger" in inspect.signature(Retrying.__init__).parameters
    else {}
)

F = TypeVar("F", bound=Callable[..., Any])

#: HTTP statuses that are retried.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried.

    Attributes:
        retries: Retries after the first attempt (``0`` disables retrying).
        backoff_base: Delay before the first retry, in seconds; doubles per retry.
        backoff_max: Cap of one backoff delay, in seconds.
        jitter: Random extra delay, as a fraction of the backoff delay (0.5 = up to +50%).
        transient_factor: The first retry of a failure that says nothing about load (500,
            502, 504, no answer) waits this fraction of ``backoff_base``: alone, such a
            failure is usually transient, and a whole second lost on it is what the caller
            notices. So does the first retry of a 503 (too many requests in flight: not
            executed) marked ``requeue`` by the endpoint (its retry budget is nearly full: see
            :class:`~deeplake_sdk.limiter.RetryBudget`), whatever its ``Retry-After``: the
            endpoint's limit has just shrunk, and the retry waits for a slot under it (and for
            the endpoint-wide pause the limiter sets from ``Retry-After`` when refusals
            persist), as a requeue of a rejected request. Later retries, other 503s and 429s
            (too many per second: the service's own time to refill) back off in full and
            honour ``Retry-After``.
        retry_after_max: Cap applied to a server's ``Retry-After``, in seconds.
        auth_retries: Retries, within ``retries``, of a 401/403 that a gateway sent instead of
            the service (:attr:`AuthError.gateway <deeplake_sdk.errors.AuthError>`: transient);
            ``0`` raises it at once, like the service's own 401/403.
        deadline: Total time budget of one call (attempts and sleeps), in seconds; ``None``
            for no budget beyond ``retries``. No sleep is started that would cross it.
        retry_connect: Whether a request whose connection could not be made
            (:class:`~deeplake_sdk.errors.ConnectError`: refused, name not resolved, connect
            timeout) is retried. ``False`` where something else takes over while the service
            cannot be reached, instead of waiting out an outage whose end nobody knows: the
            journal's drain (its flusher tries again later), and the probes of the tables when
            a filesystem or a session log opens (writes are journaled meanwhile; reads ask
            again, with retries).
        connect_cooldown: With ``retry_connect=False``: for this many seconds after a
            connection to the origin hung until its connect timeout (in this process), a
            request is not sent at all: it fails at once with a
            :class:`~deeplake_sdk.errors.ConnectError`, as the attempt would after its
            timeout. A refused connection fails at once anyway and sets no cooldown; any
            answer of the origin ends it. So a program whose network drops packets pays one
            connect timeout, not one per step (its open, its writes' checks, its exit drain).
    """

    retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.5
    transient_factor: float = 0.2
    retry_after_max: float = 30.0
    auth_retries: int = 2
    deadline: float | None = 120.0
    retry_connect: bool = True
    connect_cooldown: float = 5.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.auth_retries < 0:
            raise ValueError("retries and auth_retries must be >= 0")
        if self.connect_cooldown < 0:
            raise ValueError("connect_cooldown must be >= 0")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.jitter < 0:
            raise ValueError("backoff_base, backoff_max and jitter must be >= 0")
        if not 0 <= self.transient_factor <= 1:
            raise ValueError("transient_factor must be within [0, 1]")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be > 0 (or None)")

    @classmethod
    def coerce(cls, value: RetryPolicy | int | None) -> RetryPolicy:
        """Build a policy from ``None`` (defaults), an int (number of retries) or a policy."""
        if value is None:
            return cls()
        if isinstance(value, RetryPolicy):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"retries must be an int or a RetryPolicy, got {value!r}")
        return cls(retries=value)

    def should_retry(self, error: BaseException, gateway_refusals: int = 0) -> bool:
        """Tell whether ``error`` may be retried (``budget_spent``: the endpoint refused).

        Args:
            error: The failure.
            gateway_refusals: Gateway 401/403 answers the call has already retried.
        """
        if isinstance(error, AmbiguousWriteError) or getattr(error, "budget_spent", False):
            return False
        if isinstance(error, ConnectError):
            return self.retry_connect
        if isinstance(error, NetworkError):
            return True
        if isinstance(error, AuthError):
            return error.gateway and gateway_refusals < self.auth_retries
        if isinstance(error, ApiError):
            return error.status in RETRY_STATUSES and not isinstance(error, AlreadyExistsError)
        return False

    def skips_connect(self, hung_for: float | None) -> bool:
        """Whether a request is not sent, its origin's last connection having hung.

        Args:
            hung_for: Seconds since a connection to the origin last hung until its connect
                timeout, or ``None`` (none did since the origin last answered).
        """
        return not self.retry_connect and hung_for is not None and hung_for < self.connect_cooldown

    def backoff(self, retry_index: int, rng: Callable[[], float] = random.random) -> float:
        """Backoff before retry number ``retry_index`` (0-based), jitter included, capped."""
        base = self.backoff_base * (2 ** min(retry_index, 30))
        return min(self.backoff_max, base * (1.0 + self.jitter * rng()))

    def delay(
        self, retry_index: int, error: BaseException, rng: Callable[[], float] = random.random
    ) -> float:
        """Seconds to sleep before retry number ``retry_index`` after ``error``.

        A ``Retry-After`` longer than the backoff wins (capped at ``retry_after_max``) and gets
        a little jitter on top so that clients told the same time do not return together. The
        first retry of a failure that is not a refusal of load is quicker, and so is that of a
        503 to requeue, whose ``Retry-After`` the limiter answers (see ``transient_factor``).
        """
        backoff = self.backoff(retry_index, rng)
        if retry_index == 0 and getattr(error, "requeue", False):
            return backoff * self.transient_factor
        if retry_index == 0 and not is_overload(error):
            backoff *= self.transient_factor
        retry_after = getattr(error, "retry_after", None)
        if retry_after is None:
            return backoff
        told = min(float(retry_after), self.retry_after_max)
        if told <= backoff:
            return backoff
        return told + self.jitter * self.backoff_base * rng() * 0.5


@dataclass(frozen=True)
class RetryEvent:
    """One retry decision, as recorded by observers (tests, benchmarks, logs).

    Attributes:
        label: What was retried (the operation's name).
        attempt: Number of the attempt that failed (1-based).
        delay: Seconds slept before the next attempt.
        status: HTTP status of the failure, or ``None`` for a network error.
        retry_after: The server's ``Retry-After`` in seconds, when it sent one.
        error: The failure.
    """

    label: str
    attempt: int
    delay: float
    status: int | None
    retry_after: float | None
    error: BaseException = field(repr=False)


class RetryCall:
    """Per-call retry state: attempt number, last error, deadline. Build one per call.

    Args:
        policy: The policy to apply.
        label: Name of the operation, for logs and events.
        observer: Called with a :class:`RetryEvent` before each sleep.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        label: str = "call",
        observer: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        self.policy = policy
        self.label = label
        self.observer = observer
        self.started = time.monotonic()
        self.attempt = 0
        self.last_error: BaseException | None = None
        self.delays: list[float] = []
        self.gateway_refusals = 0
        self._next_delay = 0.0

    def remaining(self) -> float | None:
        """Seconds left of the call's deadline (``None`` when it has none)."""
        if self.policy.deadline is None:
            return None
        return max(0.0, self.policy.deadline - (time.monotonic() - self.started))

    # -- hooks given to retrying ------------------------------------------------------------
    def _retry_on_exception(self, error: BaseException) -> bool:
        self.last_error = error
        retry = self.policy.should_retry(error, self.gateway_refusals)
        if retry and isinstance(error, AuthError):
            self.gateway_refusals += 1
        return retry

    def _stop(self, attempt_number: int, _delay_ms: int) -> bool:
        error = self.last_error
        if attempt_number > self.policy.retries or error is None:
            return True
        delay = self.policy.delay(attempt_number - 1, error)
        remaining = self.remaining()
        if remaining is not None and delay >= remaining:
            logger.warning(
                "%s: giving up after attempt %d, next retry in %.2fs would pass the %.1fs "
                "deadline: %s",
                self.label,
                attempt_number,
                delay,
                self.policy.deadline,
                error,
            )
            return True
        self._next_delay = delay
        return False

    def _wait(self, attempt_number: int, _delay_ms: int) -> int:
        error = self.last_error
        delay = self._next_delay
        status = getattr(error, "status", None)
        event = RetryEvent(
            self.label,
            attempt_number,
            delay,
            status,
            getattr(error, "retry_after", None),
            error,  # type: ignore[arg-type]
        )
        self.delays.append(delay)
        logger.info(
            "%s: attempt %d/%d failed (%s), retrying in %.2fs",
            self.label,
            attempt_number,
            self.policy.retries + 1,
            _describe(error),
            delay,
        )
        if self.observer is not None:
            self.observer(event)
        cooperative_sleep(delay)
        return 0

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` under the policy; return its result or raise its error."""

        def attempt() -> Any:
            self.attempt += 1
            return fn(*args, **kwargs)

        retrying = Retrying(
            retry_on_exception=self._retry_on_exception,
            stop_func=self._stop,
            wait_func=self._wait,
            **_RETRYING_KWARGS,
        )
        return retrying.call(attempt)


def _describe(error: BaseException | None) -> str:
    if isinstance(error, ApiError):
        return f"HTTP {error.status}: {error.message[:200]}"
    return f"{type(error).__name__}: {error}"


def retried(method: F) -> F:
    """Decorate a client method ``m(self, call: RetryCall, ...)`` so each call is retried.

    The wrapper builds a fresh :class:`RetryCall` from ``self.retry_policy`` (and
    ``self._record_retry`` as observer when present) and passes it as the first argument after
    ``self``, so the attempt can read ``call.attempt``, ``call.last_error`` and
    ``call.remaining()``.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = RetryCall(
            self.retry_policy,
            label=method.__name__.lstrip("_"),
            observer=getattr(self, "_record_retry", None),
        )
        return call.run(method, self, call, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
