import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from deeplake_sdk.errors import (
    AlreadyExistsError,
    AmbiguousWriteError,
    AuthError,
    NetworkError,
    QueryError,
    RateLimitError,
    ServerError,
)
from deeplake_sdk.http_errors import error_for_status, parse_retry_after
from deeplake_sdk.retry import RetryCall, RetryPolicy, retried


def test_parse_retry_after_forms():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    date = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(7.0)
    past = format_datetime(now - timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_backoff_schedule_and_cap():
    p = RetryPolicy(backoff_base=0.5, backoff_max=8.0, jitter=0.5)
    assert [p.backoff(k, rng=lambda: 0.0) for k in range(6)] == [0.5, 1, 2, 4, 8, 8]
    assert p.backoff(0, rng=lambda: 1.0) == 0.75
    assert p.backoff(10, rng=lambda: 1.0) == 8.0


def test_the_first_retry_of_a_transient_failure_is_quick_and_of_a_rate_refusal_is_not():
    p = RetryPolicy(backoff_base=0.5, jitter=0.0, transient_factor=0.2)
    for error in (ServerError(500, "boom"), ServerError(502, "x"), NetworkError("reset")):
        assert [p.delay(k, error) for k in range(3)] == [0.1, 1.0, 2.0]
    busy = error_for_status(503, {}, b'{"error": "too many requests in flight"}')
    assert [p.delay(k, busy) for k in range(3)] == [0.5, 1.0, 2.0]
    busy.requeue = True  # the endpoint's retry budget is nearly full
    assert [p.delay(k, busy) for k in range(3)] == [0.1, 1.0, 2.0]
    assert [p.delay(k, RateLimitError(429, "x")) for k in range(3)] == [0.5, 1.0, 2.0]


def test_a_requeued_503s_retry_after_holds_from_its_second_retry_on():
    p = RetryPolicy(backoff_base=0.5, jitter=0.0, transient_factor=0.2)
    busy = error_for_status(503, {"retry-after": "3"}, b"{}")
    assert busy.retry_after == 3.0 and not busy.requeue
    assert [p.delay(k, busy) for k in range(3)] == [3.0, 3.0, 3.0]
    busy.requeue = True
    assert [p.delay(k, busy) for k in range(3)] == [0.1, 3.0, 3.0]
    limited = error_for_status(429, {"retry-after": "3"}, b"{}")
    assert [p.delay(k, limited) for k in range(3)] == [3.0, 3.0, 3.0]
    gateway = error_for_status(502, {"retry-after": "3"}, b"{}")  # quick, but told to wait
    assert [p.delay(k, gateway) for k in range(2)] == [3.0, 3.0]


def test_retry_after_wins_when_longer_and_is_capped():
    p = RetryPolicy(backoff_base=0.5, jitter=0.0, retry_after_max=5.0)
    err = RateLimitError(429, "slow down")
    err.retry_after = 3.0
    assert p.delay(0, err) == 3.0
    err.retry_after = 0.1  # shorter than the backoff: backoff wins
    assert p.delay(0, err) == 0.5
    err.retry_after = 100.0
    assert p.delay(0, err) == 5.0


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (RateLimitError(429, "x"), True),
        (RateLimitError(503, "x"), True),
        (ServerError(500, "boom"), True),
        (ServerError(502, "bad gateway"), True),
        (ServerError(504, "timeout"), True),
        (ServerError(501, "nope"), False),
        (AlreadyExistsError(500, 'column "x" already exists'), False),
        # the service's 500 for "already exists", as the answer is classified
        (error_for_status(500, {}, b'{"error": "relation \\"i\\" ALREADY EXISTS"}'), False),
        (QueryError(400, "syntax"), False),
        (QueryError(408, "statement timeout"), False),
        (AuthError(401, "no"), False),
        (error_for_status(401, {}, b'{"error": "invalid token"}'), False),  # the service's
        (error_for_status(403, {}, b"<html><title>403 Forbidden</title></html>"), True),
        (NetworkError("reset", ambiguous=True), True),
        (NetworkError("refused"), True),
        (AmbiguousWriteError("maybe"), False),
        (ValueError("bug"), False),
    ],
)
def test_should_retry(error, retry):
    assert RetryPolicy().should_retry(error) is retry


def test_a_gateways_refusals_are_retried_only_auth_retries_times_per_call():
    gateway = error_for_status(401, {}, b"<html><body>401 Authorization Required</body></html>")
    assert gateway.gateway and "401 Authorization Required" in gateway.message
    policy = RetryPolicy(retries=5, auth_retries=2)
    assert [policy.should_retry(gateway, n) for n in range(4)] == [True, True, False, False]
    assert not RetryPolicy(auth_retries=0).should_retry(gateway)
    call = RetryCall(policy)
    assert [call._retry_on_exception(gateway) for _ in range(3)] == [True, True, False]


def test_coerce():
    assert RetryPolicy.coerce(None) == RetryPolicy()
    assert RetryPolicy.coerce(0).retries == 0
    p = RetryPolicy(retries=7)
    assert RetryPolicy.coerce(p) is p
    with pytest.raises(TypeError):
        RetryPolicy.coerce(True)
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(auth_retries=-1)


class Flaky:
    """Fails with the given errors, then returns 'ok'."""

    retry_policy = RetryPolicy(retries=3, backoff_base=0.001, backoff_max=0.002, jitter=0.0)

    def __init__(self, errors):
        self.errors = list(errors)
        self.calls = 0
        self.events = []

    def _record_retry(self, event):
        self.events.append(event)

    @retried
    def _op(self, call, value):
        assert isinstance(call, RetryCall)
        self.calls += 1
        assert call.attempt == self.calls
        if self.errors:
            raise self.errors.pop(0)
        return value


def test_retried_retries_then_succeeds(caplog):
    f = Flaky([ServerError(502, "bad"), RateLimitError(429, "slow")])
    with caplog.at_level(logging.INFO, logger="deeplake_sdk.retry"):
        assert f._op("ok") == "ok"
    assert f.calls == 3
    assert [e.status for e in f.events] == [502, 429]
    assert [e.attempt for e in f.events] == [1, 2]
    assert "attempt 1/4 failed (HTTP 502: bad)" in caplog.text


def test_retried_stops_after_budget_and_raises_last():
    f = Flaky([ServerError(500, f"e{i}") for i in range(10)])
    with pytest.raises(ServerError, match="e3"):
        f._op("ok")
    assert f.calls == 4


def test_no_retry_for_fast_failures():
    for err in (QueryError(400, "bad sql"), AlreadyExistsError(500, "already exists")):
        f = Flaky([err])
        with pytest.raises(type(err)):
            f._op("ok")
        assert f.calls == 1 and not f.events


def test_retries_zero_means_one_attempt():
    f = Flaky([ServerError(503, "busy")])
    f.retry_policy = RetryPolicy(retries=0)
    with pytest.raises(ServerError):
        f._op("ok")
    assert f.calls == 1


def test_deadline_prevents_a_sleep_crossing_it():
    f = Flaky([RateLimitError(429, "slow")] * 3)
    err = f.errors[0]
    err.retry_after = 10.0
    f.retry_policy = RetryPolicy(retries=5, deadline=1.0, retry_after_max=30.0)
    with pytest.raises(RateLimitError):
        f._op("ok")
    assert f.calls == 1 and not f.events  # gave up instead of sleeping 10 s


def test_base_exceptions_pass_through():
    class Stop(BaseException):
        pass

    f = Flaky([Stop()])
    with pytest.raises(Stop):
        f._op("ok")
    assert f.calls == 1
