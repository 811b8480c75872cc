"""A benchmark worker process: runs its share of a run's sessions concurrently, on greenlets.

Started by the runner with gevent patched before anything else is imported (see
:data:`BOOT_CODE`). It reads its job (JSON) from stdin, writes one ``{"done": n}`` line per
finished session (progress), writes its result (JSON) to the job's ``result_path`` and finally
one ``{"result_file": path}`` line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from typing import Any

#: ``python -c`` code starting a worker: gevent patches first, then the SDK is imported.
BOOT_CODE = (
    "from gevent import monkey; monkey.patch_all()\n"
    "from deeplake_sdk.bench.worker import main; main()\n"
)


def run_job(job: dict[str, Any], emit: Any) -> dict[str, Any]:
    """Run every session of ``job`` at once; returns the records and the wall time."""
    import gevent

    # The HTTP stack, which clients import at their first request, is imported before the
    # clock starts, as the rest of the SDK is: the run measures sessions, not imports.
    import deeplake_sdk.transport  # noqa: F401
    from deeplake_sdk.bench.workload import MODES, Target, run_session
    from deeplake_sdk.journal.core import flush_all

    mode = MODES[job["mode"]]
    if mode.name == "optimized":
        mode = dataclasses.replace(
            mode, max_concurrency=job["max_concurrency"], adaptive=job["adaptive"]
        )
    with (
        tempfile.TemporaryDirectory(prefix="dlbench-cache") as cache_dir,
        tempfile.TemporaryDirectory(prefix="dlbench-journal") as journal_dir,
    ):
        target = Target(
            job["url"], job["token"], job["org"], job["workspace"], cache_dir, journal_dir
        )

        def one(user: str, session: str) -> dict[str, Any]:
            record = run_session(target, mode, user, session, job["rounds"])
            emit({"done": 1, "crashed": record.crashed})
            return record.to_json()

        start, cpu_start = time.perf_counter(), time.process_time()
        greenlets = [gevent.spawn(one, u, s) for u, s in job["sessions"]]
        limits: list[list[float]] = []
        sampler = gevent.spawn(_sample_limit, job["url"], start, limits)
        gevent.joinall(greenlets, raise_error=True)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        sampler.kill()
        # what sessions left journaled, before checking
        left = flush_all(600.0, native=False, while_reachable=False)
        drained = time.perf_counter() - start
        if left:
            emit({"warning": "; ".join(left)})
    return {
        "records": [g.value for g in greenlets],
        "duration_s": wall,
        "drained_s": drained,
        "cpu_s": cpu,
        "limits": limits,
    }


def _sample_limit(url: str, start: float, out: list[list[float]], every: float = 0.25) -> None:
    """Record ``[seconds, limit, in flight, waiting, pace, granted]`` of the origin's limiter.

    The pace is in attempts per second (0: not paced); ``granted`` counts the attempts started
    since the process began (its differences are the attempt rate).
    """
    import gevent

    from deeplake_sdk.http_errors import origin
    from deeplake_sdk.transport import origin_limiter

    limiter = origin_limiter(origin(url))
    while True:
        stats = limiter.stats()
        out.append(
            [
                round(time.perf_counter() - start, 2),
                stats["limit"],
                stats["in_flight"],
                stats["waiting"],
                round(stats["rate"], 1),
                stats["granted"],
            ]
        )
        gevent.sleep(every)


def main() -> None:
    """Entry point of the worker process."""
    # Retries and skipped tables are expected under a fault profile; only errors are shown.
    logging.getLogger("deeplake_sdk").setLevel(logging.ERROR)
    job = json.load(sys.stdin)
    out = sys.stdout

    def emit(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    result = run_job(job, emit)
    path = job["result_path"]  # a file, not a line: results of 1,000 sessions are megabytes
    with open(path + ".part", "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(path + ".part", path)
    emit({"result_file": path})
