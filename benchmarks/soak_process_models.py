"""Soak of every process model: threads, fork and cancellation, each in a fresh process.

For each mode (``unpatched``; ``patched``: ``gevent.monkey.patch_all()``, where
``threading.Thread`` runs greenlets; ``patched-native``: patched, with real native threads
each running its own hub) it runs ``tests/proc_worker.py``:

* ``api``: 8 threads share one DeeplakeApi, each 60 rounds of ``query`` / ``query_many`` of
  statements echoing a unique value (about 800 requests per run), ``--runs`` runs;
* ``fs``: 8 threads, each with its own DeeplakeFs on the shared DeeplakeApi, 100 writes and
  100 appends, content read back and compared exactly, ``--runs`` runs;
* ``fork``: a greenlet and a native thread mid-request when the process forks, then parent
  and child each run 200 queries on the same DeeplakeApi, ``--forks`` times;
* ``cancel``: ``gevent.Timeout`` around ``query_many`` of slow statements, ``--forks`` times.

A run counts as failed on any wrong answer, error, hang (a thread not done within 60 s) or
crash (the process's exit status). The table gives runs, failures and the time per run.

Usage::

    python benchmarks/soak_process_models.py [--runs 20] [--forks 5]

It starts its own embedded server (PostgreSQL included) and stops it at the end; the workers'
journals go to a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "proc_worker.py"
MODES = ("unpatched", "patched", "patched-native")
JOURNALS = tempfile.mkdtemp(prefix="soak-journals")


def run(srv, mode: str, scenario: str, *args: str) -> dict:
    """One worker process; its JSON report, or a failure describing how it ended."""
    command = [sys.executable, str(WORKER), mode, scenario, srv.url, srv.token, srv.org]
    command += [f"soak_{uuid.uuid4().hex[:8]}", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DEEPLAKE_JOURNAL_DIR": JOURNALS}
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=1800, check=False
        )
    except subprocess.TimeoutExpired:
        return {"runs": 1, "errors": ["the process hung (killed after 1800 s)"], "seconds": []}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {"runs": 1, "errors": [f"exit status {proc.returncode}: {tail}"], "seconds": []}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="thread runs per mode")
    parser.add_argument("--forks", type=int, default=5, help="fork and cancel runs per mode")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from deeplake_sdk.server import local

    rows = []
    failures = []
    with local(faults="none") as srv:
        for mode in MODES:
            for scenario, extra in (
                ("api", ["--items", "60"]),
                ("fs", ["--items", "100"]),
            ):
                out = run(srv, mode, scenario, "--runs", str(args.runs), *extra)
                failed_runs = {e.split(":")[0] for e in out["errors"]}  # errors are "run N: ..."
                rows.append((mode, scenario, out["runs"], len(failed_runs), out["seconds"]))
                failures += [f"{mode} {scenario}: {e}" for e in out["errors"]]
            for scenario, extra in (("fork", ["--items", "200"]), ("cancel", ["--items", "20"])):
                seconds, failed = [], 0
                for _ in range(args.forks):
                    started = time.monotonic()
                    out = run(srv, mode, scenario, *extra)
                    seconds.append(time.monotonic() - started)
                    failed += bool(out["errors"])
                    failures += [f"{mode} {scenario}: {e}" for e in out["errors"]]
                rows.append((mode, scenario, args.forks, failed, seconds))
            print(f"  {mode} done", file=sys.stderr)

    print(f"\nprocess models, {os.cpu_count()} CPUs\n")
    print(f"{'mode':16} {'scenario':8} {'runs':>5} {'failed':>7} {'s/run mean':>11} {'max':>6}")
    for mode, scenario, runs, failed, seconds in rows:
        mean = statistics.fmean(seconds) if seconds else float("nan")
        top = max(seconds) if seconds else float("nan")
        print(f"{mode:16} {scenario:8} {runs:5d} {failed:7d} {mean:11.2f} {top:6.2f}")
    for line in failures[:20]:
        print("FAILED", line)
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(JOURNALS, ignore_errors=True)
