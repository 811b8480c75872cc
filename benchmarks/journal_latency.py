"""Caller-visible latency of journaled writes vs a synchronous round trip, and call-to-server.

Run: .venv/bin/python benchmarks/journal_latency.py [--calls 300] [--latency-ms 25] [--rate 50]

Against the embedded local server with ``--latency-ms`` of added latency per request, in a plain
script (no monkey-patching), one caller:

* **round trip**: one guarded ``INSERT`` of a session event sent synchronously, as
  ``SessionLog.log`` did before the journal (what a caller waits for when each write is a
  request);
* **journaled**: ``DeeplakeFs.write_text`` (a new file each call), ``append_text`` (to 10 files)
  and ``SessionLog.log``, each returning once durable in the local journal (fsync);
* **call to server**: for the journaled calls, the time from the call to the confirmation of
  its entry by the flusher (stored and verified in the table), calls paced at ``--rate`` per
  second like an agent's events.

Prints p50/p99 of each and the ratio round trip / journaled (caller-visible), all measured in
this one run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable

from deeplake_sdk import DeeplakeApi, DeeplakeFs, SessionLog
from deeplake_sdk.server import local


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed(calls: int, rate: float, op: Callable[[int], object]) -> list[float]:
    """Caller-visible seconds of ``calls`` calls of ``op``, paced at ``rate`` per second."""
    out = []
    start = time.perf_counter()
    for i in range(calls):
        due = start + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)  # pacing of the workload, not synchronisation
        t0 = time.perf_counter()
        op(i)
        out.append(time.perf_counter() - t0)
    return out


def line(name: str, values: list[float]) -> str:
    p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
    return f"  {name:<34} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--rate", type=float, default=50.0, help="calls per second")
    args = parser.parse_args()
    journal_dir = tempfile.mkdtemp(prefix="dljournal-bench")
    with local(latency_fixed_ms=args.latency_ms) as srv:
        api = DeeplakeApi(srv.token, srv.org, f"lat_{uuid.uuid4().hex[:8]}", srv.url)
        api.ensure_tables()
        sql = (
            "INSERT INTO sessions (id, path, filename, message, size_bytes) "
            "SELECT $1, '/sessions/bench.jsonl', 'bench.jsonl', $2::jsonb, 10 "
            "WHERE NOT EXISTS (SELECT 1 FROM sessions WHERE id = $1)"
        )
        sync = timed(
            args.calls,
            args.rate,
            lambda i: api.execute(sql, [uuid.uuid4().hex, f'{{"i":{i}}}'], idempotent=True),
        )
        results = {"round trip (synchronous insert)": sync}
        with DeeplakeFs(api, cache=False, journal=journal_dir) as fs:
            log = SessionLog(api, "bench", user="ada", journal=journal_dir)
            journal = fs.journal
            confirm: dict[str, list[float]] = {}
            ops: dict[str, Callable[[int], object]] = {
                "write_text": lambda i: fs.write_text(f"/w/{i}.md", f"note {i}\n" * 5),
                "append_text": lambda i: fs.append_text(f"/a/{i % 10}.log", f"line {i}\n"),
                "SessionLog.log": lambda i: log.log({"type": "user_message", "content": str(i)}),
            }
            for name, op in ops.items():
                journal.confirm_seconds.clear()
                results[name] = timed(args.calls, args.rate, op)
                fs.flush()
                confirm[name] = list(journal.confirm_seconds)
    print(
        f"{args.calls} calls each, {args.rate:g}/s, server latency {args.latency_ms:g} ms, "
        "plain script (no monkey-patching)\n\ncaller-visible:"
    )
    for name, values in results.items():
        print(line(name, values))
    print("\ncall to server (journaled until stored and verified):")
    for name, values in confirm.items():
        print(line(name, values))
    base50 = percentile(sync, 50)
    base99 = percentile(sync, 99)
    print("\nround trip / journaled call (caller-visible):")
    for name in ops:
        values = results[name]
        print(
            f"  {name:<34} p50 {base50 / percentile(values, 50):6.1f}x   "
            f"p99 {base99 / percentile(values, 99):6.1f}x"
        )
    print(f"\nmedian round trip {statistics.median(sync) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
