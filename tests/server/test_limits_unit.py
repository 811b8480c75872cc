"""Pure units of the limits policy and the row encoder."""

from __future__ import annotations

import json

import pytest

from deeplake_sdk.server.limits import Limits, ResultTooLarge, RowEncoder


def test_statement_timeout_defaults_and_caps():
    limits = Limits(statement_timeout_ms=30_000, max_statement_timeout_ms=300_000)
    assert limits.statement_timeout(None) == 30_000
    assert limits.statement_timeout(0) == 30_000
    assert limits.statement_timeout(0.5) == 1
    assert limits.statement_timeout(5_000) == 5_000
    assert limits.statement_timeout(10**12) == 300_000
    assert Limits(statement_timeout_ms=0).statement_timeout(None) == 300_000


def test_org_cap_is_three_quarters_of_the_pool_unless_set():
    assert Limits().org_cap(150) == 112
    assert Limits().org_cap(2) == 1
    assert Limits(org_connections=5).org_cap(10) == 5
    assert Limits(org_connections=50).org_cap(10) == 10


@pytest.mark.parametrize(
    "bad",
    [
        {"max_body_bytes": 0},
        {"statement_timeout_ms": -1},
        {"statement_timeout_ms": 10, "max_statement_timeout_ms": 5},
        {"connection_wait_s": 0},
        {"org_connections": -1},
    ],
)
def test_bad_limits_are_refused(bad):
    with pytest.raises(ValueError):
        Limits(**bad)


def test_row_encoder_output_is_the_json_of_the_rows():
    rows = [[i, "é" * (i % 3), None, b"\x00"] for i in range(1234)]
    encoder = RowEncoder(10**9, lambda v: "\\x" + v.hex(), chunk=100)
    encoded = encoder.extend(rows)
    assert encoded.count == 1234
    text = b"[" + b"".join(encoded.parts) + b"]"
    assert json.loads(text) == [[i, "é" * (i % 3), None, "\\x00"] for i in range(1234)]
    assert encoded.size == len(text) - 2


def test_row_encoder_stops_at_the_limit():
    encoder = RowEncoder(1000, str, chunk=10)
    with pytest.raises(ResultTooLarge, match="1000-byte limit"):
        encoder.extend(["x" * 50] for _ in range(100))
