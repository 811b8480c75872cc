"""Dates as the SDK writes them in the tables: ISO-8601 UTC text with microseconds.

Text in this form sorts as the time it names, so the tables' ``last_update_date`` column can
be compared in SQL (``<=``) and in Python alike.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

__all__ = ["next_stamp", "utc_stamp"]

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_lock = threading.Lock()
_last: datetime | None = None


def utc_stamp(when: datetime | None = None) -> str:
    """``when`` (a UTC datetime; default: now) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return (datetime.now(timezone.utc) if when is None else when).strftime(_FORMAT)


def next_stamp() -> str:
    """The date of a change made now: :func:`utc_stamp`, after every one this process made.

    Two changes of one process are ordered by their dates even when they fall in the same
    microsecond or the clock steps back between them.
    """
    global _last
    now = datetime.now(timezone.utc)
    with _lock:
        if _last is not None and now <= _last:
            now = _last + timedelta(microseconds=1)
        _last = now
    return utc_stamp(now)
