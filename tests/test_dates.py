"""The dates the SDK writes in the tables (pure units)."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

from deeplake_sdk.dates import next_stamp, utc_stamp


def test_a_date_is_iso_utc_with_microseconds_and_sorts_as_time():
    early = utc_stamp(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc))
    assert early == "2026-01-02T03:04:05.000006Z"
    assert early < utc_stamp(datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=timezone.utc))


def test_the_dates_of_one_process_changes_only_increase():
    stamps = [next_stamp() for _ in range(20000)]  # many within one microsecond
    assert all(a < b for a, b in itertools.pairwise(stamps))
