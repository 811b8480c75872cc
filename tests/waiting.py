"""Bounded waiting for a condition in tests (polls, never a bare sleep as synchronisation)."""

from __future__ import annotations

from collections.abc import Callable

import gevent


def poll(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    """Wait until ``predicate()`` is true, failing the test after ``timeout`` seconds."""
    deadline = gevent.get_hub().loop.now() + timeout
    while not predicate():
        assert gevent.get_hub().loop.now() < deadline, "condition not reached in time"
        gevent.sleep(0.02)
