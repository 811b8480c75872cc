"""The users x sessions matrix: runs every point in every mode and measures it.

For each point and mode the runner takes a fresh workspace, seeds a few notes per user, sets
the server's fault profile (same profile and seed for both modes), starts worker processes
that run all the sessions of the run at once, then reads the database to count lost and
duplicated writes. The runner itself does no gevent patching; the workers do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from deeplake_sdk.api import DeeplakeApi
from deeplake_sdk.bench.metrics import aggregate, cpu_per_request_ms, server_capacity_qps
from deeplake_sdk.bench.verify import verify_writes
from deeplake_sdk.bench.worker import BOOT_CODE
from deeplake_sdk.bench.workload import MODES, seed_notes
from deeplake_sdk.limiter import DEFAULT_MAX_CONCURRENCY

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int, int], None]


@dataclass
class BenchConfig:
    """What to run.

    Attributes:
        users: Numbers of users (matrix rows).
        sessions: Sessions per user (matrix columns).
        rounds: QA rounds per session.
        modes: ``baseline`` and/or ``optimized``.
        profile: Fault profile of the server.
        seed: Fault seed (the same for every run).
        processes: Worker processes sharing a run's sessions.
        url: Use this server instead of starting one (its token/org from ``token``/``org``).
        token: Token for ``url``.
        org: Org for ``url``.
        fault_overrides: Extra fault fields on top of the profile.
        max_concurrency: Cap of the optimized mode's clients (default: the ceiling of the
            origin's adaptive limit, i.e. no cap of their own).
        adaptive: Adaptive cap in the optimized mode.
    """

    users: list[int]
    sessions: list[int]
    rounds: int = 5
    modes: list[str] = field(default_factory=lambda: ["baseline", "optimized"])
    profile: str = "beta"
    seed: int = 7
    processes: int = 1
    url: str | None = None
    token: str | None = None
    org: str | None = None
    fault_overrides: dict[str, Any] = field(default_factory=dict)
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    adaptive: bool = True

    def __post_init__(self) -> None:
        unknown = [m for m in self.modes if m not in MODES]
        if unknown:
            raise ValueError(f"unknown mode(s) {unknown}; choose from {sorted(MODES)}")
        if not self.users or not self.sessions or min(self.users + self.sessions) < 1:
            raise ValueError("--users and --sessions need positive integers")
        if self.rounds < 1 or self.processes < 1:
            raise ValueError("--rounds and --processes must be at least 1")


class AdminClient:
    """Fault and stats control of a server given by URL (no-ops when it has no /_admin)."""

    def __init__(self, url: str, token: str, org: str) -> None:
        self.url, self.token, self.org = url.rstrip("/"), token, org
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            resp = self.session.request(method, self.url + path, json=body, timeout=30)
        except requests.RequestException:
            return {}
        return resp.json() if resp.ok else {}

    def stats(self) -> dict[str, Any]:  # noqa: D102
        return self._call("GET", "/_admin/stats")

    def reset_stats(self) -> dict[str, Any]:  # noqa: D102
        return self._call("POST", "/_admin/stats/reset")

    def faults(self) -> dict[str, Any]:  # noqa: D102
        return self._call("GET", "/_admin/faults")

    def set_faults(self, profile: str | None = None, seed: int | None = None, **kw: Any) -> Any:  # noqa: D102
        body = {k: v for k, v in {"profile": profile, "seed": seed, **kw}.items() if v is not None}
        return self._call("PUT", "/_admin/faults", body)


@contextlib.contextmanager
def bench_server(cfg: BenchConfig) -> Iterator[Any]:
    """The server under test: the one at ``cfg.url``, or a fresh embedded one."""
    if cfg.url:
        if not cfg.token or not cfg.org:
            raise ValueError("--url needs a token and an org (--token/--org or the environment)")
        yield AdminClient(cfg.url, cfg.token, cfg.org)
        return
    from deeplake_sdk.server import local

    # Unsafe (no fsync) PostgreSQL storage: the figures measure the client, not the disk.
    with local(durable=False) as srv:
        yield srv


def run_matrix(cfg: BenchConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run every (users, sessions) point in every mode; returns the results document."""
    runs = []
    started = time.time()
    with bench_server(cfg) as srv:
        for users in cfg.users:
            for per_user in cfg.sessions:
                for mode in cfg.modes:
                    runs.append(run_point(srv, cfg, users, per_user, mode, progress=progress))
    return {
        "config": asdict(cfg),
        "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": _machine(),
        "runs": runs,
    }


def run_point(
    srv: Any,
    cfg: BenchConfig,
    users: int,
    per_user: int,
    mode: str,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """One run: ``users x per_user`` concurrent sessions in ``mode``, measured and verified."""
    workspace = f"bench_{mode}_{users}x{per_user}_{uuid.uuid4().hex[:6]}"
    setup = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    srv.set_faults(profile="none")
    user_names = [f"user{u:03d}" for u in range(users)]
    seed_notes(setup, user_names)
    sessions = [(u, f"s{s}") for u in user_names for s in range(per_user)]
    srv.set_faults(profile=cfg.profile, seed=cfg.seed, **cfg.fault_overrides)
    faults = srv.faults()
    srv.reset_stats()
    label = f"{mode} {users}u x {per_user}s"
    records, (duration, drained), series, cpu = _run_workers(
        srv, cfg, workspace, mode, sessions, label=label, progress=progress
    )
    server_stats = srv.stats()
    srv.set_faults(profile="none")
    result: dict[str, Any] = {
        "experiment": f"{users} users x {per_user} sessions",
        "mode": mode,
        "numUsers": users,
        "sessionsPerUser": per_user,
        "totalSessions": len(sessions),
        **aggregate(records, duration),
        **verify_writes(setup, records),
    }
    capacity = server_capacity_qps(faults)
    admitted = server_stats.get("admitted")
    refused = server_stats.get("injected", {})
    result["overloadAnswers"] = sum(
        refused.get(k, 0) for k in ("rate_429", "capacity_503", "error_429", "error_503")
    )
    served = (server_stats.get("status_counts") or {}).get("200")
    if served is not None:  # the service's count: the journal's statements included
        result["goodputQps"] = round(served / max(drained, 1e-9), 1)
        result["drainedMs"] = round(drained * 1000, 1)
    requests_seen = server_stats.get("requests") or 0
    result["overloadRate"] = (
        round(result["overloadAnswers"] / requests_seen, 5) if requests_seen else 0.0
    )
    result["sessionsPerSecond"] = round(result["completedSessions"] / max(duration, 1e-9), 2)
    result["cleanSessionsPerSecond"] = round(result["cleanSessions"] / max(duration, 1e-9), 2)
    result["limitSeries"] = series
    result["clientCpuSeconds"] = [round(c, 2) for c in cpu]
    result["server"] = server_stats
    result["faults"] = faults
    result["clientCpuMsPerRequest"] = cpu_per_request_ms(result)
    if admitted is not None:
        result["admittedQps"] = round(admitted / max(duration, 1e-9), 1)
    if capacity and admitted is not None:
        result["serverCapacityQps"] = capacity
        result["capacityFraction"] = round(result["admittedQps"] / capacity, 3)
        result["goodputFraction"] = round(result["goodputQps"] / capacity, 3)
    setup.close()
    log.info(
        "%s: %s",
        label,
        {k: result[k] for k in ("totalQueries", "totalErrors", "throughputQps", "crashedSessions")},
    )
    return result


def _run_workers(
    srv: Any,
    cfg: BenchConfig,
    workspace: str,
    mode: str,
    sessions: list[tuple[str, str]],
    *,
    label: str,
    progress: Progress | None,
) -> tuple[list[dict[str, Any]], tuple[float, float], list[list[Any]], list[float]]:
    shares = [sessions[i :: cfg.processes] for i in range(cfg.processes)]
    job = {
        "url": srv.url,
        "token": srv.token,
        "org": srv.org,
        "workspace": workspace,
        "mode": mode,
        "rounds": cfg.rounds,
        "max_concurrency": cfg.max_concurrency,
        "adaptive": cfg.adaptive,
    }
    with tempfile.TemporaryDirectory(prefix="dlbench-results") as results:
        procs = [
            _start_worker({**job, "sessions": share, "result_path": f"{results}/{n}.json"})
            for n, share in enumerate(shares)
            if share
        ]
        return _collect(procs, len(sessions), label, progress)


def _start_worker(job: dict[str, Any]) -> subprocess.Popen[str]:
    """A worker process running ``job`` (its result goes to ``job["result_path"]``)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", BOOT_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(job))
    proc.stdin.close()
    return proc


def _collect(
    procs: list[subprocess.Popen[str]], total: int, label: str, progress: Progress | None
) -> tuple[list[dict[str, Any]], tuple[float, float], list[list[Any]], list[float]]:
    """Follow the workers' progress lines until they end; gather their results.

    Raises:
        RuntimeError: A worker failed or wrote something that is not a message.
    """
    messages: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def pump(proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                messages.put(json.loads(line))
        except ValueError as exc:  # never leave the reader waiting for this worker
            messages.put({"error": f"worker {proc.pid} wrote an unreadable line: {exc}"})
        finally:
            messages.put(None)

    for proc in procs:
        threading.Thread(target=pump, args=(proc,), daemon=True).start()
    done = crashed = finished = 0
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    while finished < len(procs):
        message = messages.get()
        if message is None:
            finished += 1
        elif "done" in message:
            done += 1
            crashed += bool(message.get("crashed"))
            if progress:
                progress(label, done, total, crashed)
        elif "result_file" in message:
            with open(message["result_file"], encoding="utf-8") as f:
                results.append(json.load(f))
        elif "error" in message:
            errors.append(message["error"])
    for proc in procs:
        if proc.wait() != 0:
            errors.append(f"benchmark worker failed with exit code {proc.returncode}")
    if errors:
        raise RuntimeError("; ".join(errors))
    duration = max(r["duration_s"] for r in results)
    drained = max(r.get("drained_s", 0.0) for r in results)
    return (
        [record for r in results for record in r["records"]],
        (duration, max(duration, drained)),
        [r.get("limits", []) for r in results],
        [r.get("cpu_s", 0.0) for r in results],
    )


def _machine() -> dict[str, Any]:
    import os
    import platform

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
