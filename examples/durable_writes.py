"""Durable writes: each call returns once journaled, and a killed process loses none of them.

Run it with no arguments (see quickstart.py for where it connects; an embedded server gets
20 ms of latency per request, like a nearby cloud region). It uses its own table
(``example_durable``), dropped first, and a journal in a temporary directory.

1. 100 writes: each call returns once the write is durable in the local journal (an fsync),
   without waiting for the service (a call is shorter than one round trip to it); the
   journal's flusher stores them in a few round trips.
2. A child process makes 5 writes and is killed with SIGKILL right after the last one returned.
   Reopening the workspace with the same journal stores them: none is lost, none is doubled.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from deeplake_sdk import DeeplakeFs
from deeplake_sdk.server import connect

TABLE = "example_durable"
CHILD = """
import sys, time
from deeplake_sdk import DeeplakeApi, DeeplakeFs
journal, table = sys.argv[1:]
fs = DeeplakeFs(DeeplakeApi(), table, sessions_table=None, cache=False, journal=journal)
for i in range(5):
    fs.write_text(f"/killed/{i}.md", f"written just before the kill ({i})\\n")
print("written", flush=True)
time.sleep(60)
"""

with (
    tempfile.TemporaryDirectory(prefix="example-journal") as journal,
    connect(server_options={"latency_fixed_ms": 20}) as api,
):
    api.drop_table(TABLE, missing_ok=True)
    with DeeplakeFs(api, TABLE, sessions_table=None, cache=False, journal=journal) as fs:
        calls = []
        for n in range(100):
            started = time.perf_counter()
            fs.write_text(f"/notes/{n:03d}.md", f"note {n}\n" * 10)
            calls.append(time.perf_counter() - started)
        before = api.stats.requests_sent
        started = time.perf_counter()
        waiting = fs.flush()
        wall = time.perf_counter() - started
        trips = []
        for _ in range(5):
            started = time.perf_counter()
            api.query("SELECT 1")
            trips.append(time.perf_counter() - started)
        print(
            f"100 writes: median call {statistics.median(calls) * 1000:.2f} ms, "
            f"slowest {max(calls) * 1000:.2f} ms (journaled, not sent); "
            f"a round trip to the service: {statistics.median(trips) * 1000:.2f} ms"
        )
        print(
            f"flush: all 100 writes stored {wall * 1000:.0f} ms later ({waiting} were still "
            f"being sent, {api.stats.requests_sent - before} round trips waited for)"
        )
        assert len(fs.ls("/notes")) == 100

    creds = api.credentials
    env = dict(
        os.environ,
        DEEPLAKE_API_URL=creds.api_url,
        DEEPLAKE_TOKEN=creds.token,
        DEEPLAKE_ORG_ID=creds.org_id,
        DEEPLAKE_WORKSPACE_ID=creds.workspace_id,
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, journal, TABLE], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "written"
    child.kill()
    child.wait()
    print("\nchild killed with SIGKILL right after its 5 writes returned")
    with DeeplakeFs(api, TABLE, sessions_table=None, cache=False, journal=journal) as fs:
        names = fs.ls("/killed")
        print(f"reopened with the same journal: /killed holds {names}")
        rows = api.query(f"SELECT path FROM {TABLE} WHERE path LIKE '/killed/%'")
        print(f"rows in the table: {len(rows)} (one per file)")
    api.drop_table(TABLE)
    print("\ndone")
