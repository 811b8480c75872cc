"""Parallel flush: 100 new files stored one by one, in parallel, and in multi-row batches.

Run it with no arguments (see quickstart.py for where it connects). An embedded server gets
20 ms of added latency per request, like a nearby cloud region, so the difference shows.
It uses its own tables (``example_flush_*``), dropped at the end.

Round trips are counted on the client (``api.endpoint.requests_sent``).
"""

import time

from deeplake_sdk import DeeplakeFs
from deeplake_sdk.server import connect

FILES = 100
STRATEGIES = [
    ("one statement per file, one at a time", {"parallel": False, "batch_rows": 1}),
    ("one statement per file, in parallel", {"parallel": True, "batch_rows": 1}),
    ("multi-row statements, in parallel (default)", {}),
]

with connect(server_options={"latency_fixed_ms": 20}) as api:
    print(
        f"flushing {FILES} new files to {api.credentials.api_url}, "
        f"at most {api.max_concurrency} requests in flight\n"
    )
    results = []
    for i, (name, options) in enumerate(STRATEGIES):
        table = f"example_flush_{i}"
        api.drop_table(table, missing_ok=True)
        with DeeplakeFs.open(
            api, table, sessions_table=None, cache=False, max_pending=FILES + 1, **options
        ) as fs:
            for n in range(FILES):
                fs.write_text(f"/notes/{n:03d}.md", f"note {n}\n" * 10)
            before = api.endpoint.requests_sent
            started = time.perf_counter()
            stored = fs.flush()
            wall = time.perf_counter() - started
            trips = api.endpoint.requests_sent - before
            assert stored == FILES and len(fs.ls("/notes")) == FILES
        api.drop_table(table)
        results.append((name, wall, trips))
        print(f"  {name:<45} {wall * 1000:7.0f} ms  {trips:4d} round trips")

    _, base_wall, base_trips = results[0]
    print()
    for name, wall, trips in results[1:]:
        print(
            f"  {name:<45} {base_wall / wall:5.1f}x faster, "
            f"{base_trips / trips:5.1f}x fewer round trips"
        )
    print("\ndone")
