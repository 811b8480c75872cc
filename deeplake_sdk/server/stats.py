"""Server counters served by ``GET /_admin/stats``.

Request counters cover the data endpoints only (query, list/create/drop tables); ``/_admin``
calls are not counted, so a test's own bookkeeping never disturbs the figures it checks.
``clients`` and ``content_types`` count the requests per ``X-Deeplake-Client`` and
``Content-Type`` header value (requests without the header are not counted there), so a test
can see what a client sends without a mock.
"""

from __future__ import annotations

import resource
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from deeplake_sdk.server.faults import INJECTED_KINDS


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stats:
    """Counters of one server process; :meth:`reset` zeroes them (peaks included).

    Args:
        extra: optional callable returning more JSON fields for :meth:`snapshot`
            (e.g. the embedded PostgreSQL's CPU time), given the reset baseline dict to
            keep its own deltas in.
    """

    def __init__(self, extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._extra = extra
        self.started = time.monotonic()
        self.inflight = 0
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.requests = 0
        self.admitted = 0
        self.status_counts: Counter[int] = Counter()
        self.clients: Counter[str] = Counter()
        self.content_types: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.inflight_peak = self.inflight
        self.connections_opened = 0
        self.queries_executed = 0
        self._cpu_base = _cpu_seconds()
        self._extra_base: dict[str, Any] = {}
        if self._extra is not None:
            self._extra(self._extra_base)  # records its baseline

    def reset(self) -> None:
        """Zero every counter; ``inflight`` keeps its current value (peak restarts from it)."""
        with self._lock:
            self._reset_counters()

    # -- events ---------------------------------------------------------------------------
    def request(self, client: str | None = None, content_type: str | None = None) -> None:
        """A data request arrived.

        Args:
            client: its ``X-Deeplake-Client`` header (None when absent).
            content_type: its ``Content-Type`` header (None when absent).
        """
        self.requests += 1
        if client is not None:
            self.clients[client] += 1
        if content_type is not None:
            self.content_types[content_type] += 1

    def status(self, code: int) -> None:
        """A data request was answered with ``code``."""
        self.status_counts[code] += 1

    def inject(self, kind: str) -> None:
        """A fault of ``kind`` (one of :data:`~deeplake_sdk.server.faults.INJECTED_KINDS`)."""
        self.injected[kind] += 1

    def enter(self) -> None:
        """A request was admitted (passed capacity and rate limits)."""
        with self._lock:
            self.admitted += 1
            self.inflight += 1
            self.inflight_peak = max(self.inflight_peak, self.inflight)

    def leave(self) -> None:
        """An admitted request finished."""
        with self._lock:
            self.inflight -= 1

    def connection(self) -> None:
        """A TCP connection was accepted."""
        self.connections_opened += 1

    def executed(self, n: int = 1) -> None:
        """``n`` statements ran on PostgreSQL."""
        self.queries_executed += n

    # -- report ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The counters as a JSON-ready dict."""
        with self._lock:
            data: dict[str, Any] = {
                "requests": self.requests,
                "admitted": self.admitted,
                "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
                "injected": {kind: self.injected.get(kind, 0) for kind in INJECTED_KINDS},
                "clients": dict(sorted(self.clients.items())),
                "content_types": dict(sorted(self.content_types.items())),
                "inflight": self.inflight,
                "inflight_peak": self.inflight_peak,
                "connections_opened": self.connections_opened,
                "queries_executed": self.queries_executed,
                "cpu_seconds": round(_cpu_seconds() - self._cpu_base, 6),
                "uptime_s": round(time.monotonic() - self.started, 3),
            }
            if self._extra is not None:
                data.update(self._extra(self._extra_base))
        return data
