"""The benchmark: metrics, durability verification and a small end-to-end matrix."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from deeplake_sdk.bench.metrics import (
    aggregate,
    cpu_per_request_ms,
    percentile,
    server_capacity_qps,
)
from deeplake_sdk.bench.report import attempt_rate, markdown, restructuredtext, table_rows
from deeplake_sdk.bench.runner import _collect
from deeplake_sdk.bench.verify import verify_writes
from deeplake_sdk.bench.workload import digest


def test_percentile_interpolates():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0.5) == 25.0
    assert percentile(values, 0.0) == 10.0 and percentile(values, 1.0) == 40.0
    assert percentile([], 0.9) == 0.0


def test_capacity_from_fault_profile():
    beta = {"rate_per_s": 400, "max_inflight": 32, "latency_median_ms": 25, "latency_sigma": 0.8}
    assert server_capacity_qps(beta) == 400.0  # the rate limit is the tighter one
    assert server_capacity_qps({"max_inflight": 10, "latency_fixed_ms": 100}) == 100.0
    assert server_capacity_qps({}) is None


def _record(**kw):
    base = {
        "completed": True,
        "crashed": False,
        "error": "",
        "queries": 10,
        "errors": 0,
        "latencies": {"grep": [1.0, 3.0]},
        "op_errors": {},
        "acked_files": {},
        "acked_events": [],
    }
    return {**base, **kw}


def test_attempt_rate_sums_the_processes_per_second():
    # [seconds, limit, in flight, waiting, pace, granted]
    one = [[0.0, 16, 0, 0, 0, 0], [0.5, 16, 8, 0, 0, 100], [1.5, 16, 8, 0, 0, 300]]
    two = [[0.0, 16, 0, 0, 0, 0], [1.2, 16, 8, 0, 0, 50]]
    t, rate = attempt_rate([one, two])
    assert t == [0.5, 1.5] and rate == [100.0, 250.0]


def test_client_cpu_per_request_sums_the_processes_over_what_the_server_saw():
    run = {"clientCpuSeconds": [0.5, 0.25], "server": {"requests": 300}}
    assert cpu_per_request_ms(run) == 2.5
    assert cpu_per_request_ms({**run, "server": {"requests": 0}}) is None
    assert cpu_per_request_ms({"server": {"requests": 300}}) is None  # a run before the figure


def test_a_completed_session_that_saw_an_error_is_not_error_free():
    records = [
        _record(op_errors={"grep": 0}),
        _record(op_errors={"read": 1}),
        _record(completed=False, crashed=True),
    ]
    out = aggregate(records, duration_s=1.0)
    assert (out["completedSessions"], out["cleanSessions"]) == (2, 1)


def test_aggregate_counts_crashes_and_errors():
    records = [
        _record(),
        _record(
            completed=False,
            crashed=True,
            error="RateLimitError: busy",
            errors=2,
            op_errors={"grep": 1},
            step_errors=["grep: ServerError: HTTP 502 (request id r1)"],
            latencies={"grep": [5.0]},
        ),
    ]
    out = aggregate(records, duration_s=2.0)
    assert out["totalQueries"] == 20 and out["totalErrors"] == 2
    assert out["errorRate"] == 0.1 and out["throughputQps"] == 10.0
    assert out["crashedSessions"] == 1 and out["completedSessions"] == 1
    assert out["byOperation"]["grep"] == {
        "count": 3,
        "errors": 1,
        "p50": 3.0,
        "p95": 4.8,
        "p99": 5.0,
    }
    assert out["crashReasons"] == [{"error": "RateLimitError: busy", "sessions": 1}]
    assert out["visibleErrorReasons"] == [{"error": "grep: ServerError: HTTP 502", "steps": 1}]


def test_verify_detects_lost_and_duplicated_writes(api):
    api.ensure_table("memory")
    api.ensure_sessions_table("sessions")
    api.insert_row("memory", {"path": "/kept.md", "summary": "ok"})
    api.insert_row("memory", {"path": "/dup.md", "summary": "x"})
    api.insert_row("memory", {"path": "/dup.md", "summary": "x"})
    api.insert_row("memory", {"path": "/changed.md", "summary": "other"})
    event = api.insert_row(
        "sessions", {"path": "/s.jsonl", "message": "{}"}, casts={"message": "jsonb"}
    )
    records = [
        _record(
            acked_files={
                "/kept.md": digest(b"ok"),
                "/missing.md": digest(b"m"),
                "/changed.md": digest(b"mine"),
            },
            acked_events=[event, "never-stored"],
        )
    ]
    out = verify_writes(api, records)
    assert out["lostFiles"] == 2 and out["lostEvents"] == 1 and out["lostWrites"] == 3
    assert out["duplicateFiles"] == 1 and out["duplicateWrites"] == 1


def test_report_tables_pair_modes_per_experiment():
    run = {
        "numUsers": 2,
        "sessionsPerUser": 1,
        "totalQueries": 40,
        "totalErrors": 0,
        "errorRate": 0.0,
        "crashedSessions": 0,
        "completedSessions": 2,
        "throughputQps": 20.0,
        "goodputQps": 20.0,
        "lostWrites": 0,
        "duplicateWrites": 0,
        "experiment": "2 users x 1 sessions",
        "overall": {"p50": 1, "p95": 2, "p99": 3},
        "sessionErrorRate": 0.0,
        "totalSessions": 2,
    }
    doc = {
        "config": {"profile": "none", "seed": 1, "rounds": 1, "processes": 1},
        "machine": {"cpus": 2, "python": "3.11"},
        "startedAt": "now",
        "runs": [
            {**run, "mode": "baseline", "throughputQps": 10.0, "goodputQps": 5.0},
            {**run, "mode": "optimized"},
        ],
    }
    (row,) = table_rows(doc)
    assert row[0] == "2 users x 1 sessions"
    assert row[-3:] == ("2.00x", "4.00x", "0 / 0")  # QPS ratio, goodput ratio, lost / dup
    assert "| 2 users x 1 sessions |" in markdown(doc)
    assert ".. list-table::" in restructuredtext(doc)


@pytest.mark.slow
def test_bench_cli_small_matrix(srv, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deeplake_sdk.cli",
            "bench",
            "--users",
            "2,4",
            "--sessions",
            "1",
            "--rounds",
            "2",
            "--profile",
            "flaky",
            "--seed",
            "3",
            "--url",
            srv.url,
            "--token",
            srv.token,
            "--org",
            srv.org,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "results.json").read_text())
    assert [(r["numUsers"], r["mode"]) for r in doc["runs"]] == [
        (2, "baseline"),
        (2, "optimized"),
        (4, "baseline"),
        (4, "optimized"),
    ]
    for run in doc["runs"]:
        assert run["totalSessions"] == run["numUsers"]
        assert run["totalQueries"] > 0 and run["server"]["requests"] > 0
        assert set(run["overall"]) == {"p50", "p95", "p99"}
        assert run["clientCpuMsPerRequest"] > 0
    optimized = [r for r in doc["runs"] if r["mode"] == "optimized"]
    assert all(
        r["crashedSessions"] == 0
        and r["lostWrites"] == 0
        and r["duplicateWrites"] == 0
        and r["completedSessions"] == r["totalSessions"]
        for r in optimized
    )
    assert {p.name for p in out.iterdir()} >= {
        "results.json",
        "results.md",
        "results.rst",
        "results.png",
    }
    assert "2 users x 1 sessions" in proc.stdout


def test_a_worker_that_writes_an_unreadable_line_fails_the_run_instead_of_hanging_it():
    worker = subprocess.Popen(
        [sys.executable, "-c", "print('{\"done\": 1}'); print('{\"result\": [1, 2')"],
        stdout=subprocess.PIPE,
        text=True,
    )
    outcome: dict = {}

    def collect():
        try:
            _collect([worker], 1, "run", None)
        except RuntimeError as exc:
            outcome["error"] = str(exc)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    reader.join(60)
    assert not reader.is_alive(), "the runner waited forever for the broken worker"
    assert "unreadable line" in outcome["error"]
