"""Bounded waiting for a condition in tests (polls, never a bare sleep as synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent

from deeplake_sdk._coop import hub_if_exists


def poll(
    predicate: Callable[[], object],
    what: str = "the condition",
    timeout: float = 60.0,
    interval: float = 0.02,
) -> None:
    """Wait until ``predicate()`` is true, failing the test after ``timeout`` seconds.

    Sleeps cooperatively (``gevent.sleep``) in a thread that has a gevent hub, so that the
    greenlets it waits for run; plainly (``time.sleep``) in other threads.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        if hub_if_exists() is not None:
            gevent.sleep(interval)
        else:
            time.sleep(interval)
