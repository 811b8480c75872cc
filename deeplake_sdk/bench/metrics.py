"""Aggregation of session records into the figures of one benchmark run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, by linear interpolation (0 if none)."""
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    if low == high:
        return float(sorted_values[low])
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low))


def summary(values: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99 of latencies in milliseconds, rounded to 0.1 ms."""
    ordered = sorted(values)
    return {f"p{int(q * 100)}": round(percentile(ordered, q), 1) for q in (0.5, 0.95, 0.99)}


def aggregate(records: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """Totals, rates and latency percentiles over the sessions of one run."""
    by_op: dict[str, list[float]] = {}
    op_errors: dict[str, int] = {}
    for record in records:
        for op, values in record["latencies"].items():
            by_op.setdefault(op, []).extend(values)
        for op, n in record["op_errors"].items():
            op_errors[op] = op_errors.get(op, 0) + n
    queries = sum(r["queries"] for r in records)
    errors = sum(r["errors"] for r in records)
    operations = sum(len(v) for v in by_op.values())
    visible = sum(op_errors.values())
    duration_s = max(duration_s, 1e-9)
    return {
        "durationMs": round(duration_s * 1000, 1),
        "totalQueries": queries,
        "totalErrors": errors,
        "errorRate": round(errors / queries, 6) if queries else 0.0,
        "throughputQps": round(queries / duration_s, 1),
        "goodputQps": round((queries - errors) / duration_s, 1),
        "totalOperations": operations,
        "sessionVisibleErrors": visible,
        "sessionErrorRate": round(visible / operations, 6) if operations else 0.0,
        "completedSessions": sum(1 for r in records if r["completed"]),
        "cleanSessions": sum(
            1 for r in records if r["completed"] and not any(r["op_errors"].values())
        ),
        "crashedSessions": sum(1 for r in records if r["crashed"]),
        "crashReasons": _top_reasons(r["error"] for r in records if r["crashed"]),
        "visibleErrorReasons": _top_reasons(
            (e for r in records for e in r.get("step_errors", ())), counted="steps"
        ),
        "overall": summary(v for values in by_op.values() for v in values),
        "byOperation": {
            op: {"count": len(values), "errors": op_errors.get(op, 0), **summary(values)}
            for op, values in sorted(by_op.items())
        },
    }


def _top_reasons(
    errors: Iterable[str], limit: int = 3, counted: str = "sessions"
) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for error in errors:
        key = error.split(" (request id")[0][:160]
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
    return [{"error": e, counted: n} for e, n in ranked]


def server_capacity_qps(faults: dict[str, Any]) -> float | None:
    """Requests per second the fault profile lets the server admit, if it sets any limit.

    The lower of the per-org rate limit and ``max_inflight`` divided by the mean added latency
    (log-normal mean ``median * exp(sigma^2 / 2)`` plus the fixed part).
    """
    limits = []
    rate = float(faults.get("rate_per_s") or 0)
    if rate > 0:
        limits.append(rate)
    inflight = int(faults.get("max_inflight") or 0)
    median = float(faults.get("latency_median_ms") or 0)
    sigma = float(faults.get("latency_sigma") or 0)
    mean_ms = float(faults.get("latency_fixed_ms") or 0) + median * math.exp(sigma * sigma / 2)
    if inflight > 0 and mean_ms > 0:
        limits.append(inflight / (mean_ms / 1000))
    return round(min(limits), 1) if limits else None


def cpu_per_request_ms(run: dict[str, Any]) -> float | None:
    """Milliseconds of worker CPU per request the server saw, in one run (None if unknown).

    The CPU the worker processes spent while their sessions ran (``clientCpuSeconds``, summed
    over the processes) over the requests the server received (``server.requests``, the
    journal's included). Where this is well above the server's own CPU per request, the
    client's CPU, not the service, bounds the run: compare runs on one machine only.
    """
    requests = (run.get("server") or {}).get("requests") or 0
    cpu = run.get("clientCpuSeconds")
    if not requests or not cpu:
        return None
    return round(sum(cpu) * 1000 / requests, 2)
