"""Resilience: a local server that fails on purpose, and a client that loses and doubles nothing.

Run it with no arguments. Faults can only be injected into the local server, so this example
always starts one (on a temporary embedded PostgreSQL), whatever credentials are configured.
The log (INFO) shows every retry: which attempt failed, why, and how long the client waits.

1. A plain INSERT whose answer is lost after it committed: the client cannot know whether it
   ran, so it raises AmbiguousWriteError instead of re-sending it (which could insert twice).
2. A memory-agent workload on a server injecting 429/500/502/503/504, connection resets and
   lost answers after commit: the database ends up with exactly the expected content.
"""

import logging
import sys

from deeplake_sdk import AmbiguousWriteError, DeeplakeApi, DeeplakeFs, RetryPolicy, SessionLog
from deeplake_sdk.server import local

logging.basicConfig(
    level=logging.INFO,
    stream=sys.stdout,  # interleaved with the prints
    format="   %(levelname)-7s %(name)s: %(message)s",
)
# Short backoff so the example runs in seconds; the defaults are 0.5 s doubling to 8 s.
POLICY = RetryPolicy(retries=6, backoff_base=0.05, backoff_max=0.5, retry_after_max=0.5)
FAULTS = {
    "p_429": 0.03,
    "p_503": 0.03,
    "p_500": 0.03,
    "p_502": 0.03,
    "p_504": 0.02,
    "p_reset": 0.03,
    "p_commit_fail": 0.08,
    "retry_after_s": 1,
}
FILES, EVENTS = 20, 10

with local(seed=7) as srv:
    api = DeeplakeApi(srv.token, srv.org, "resilience", srv.url, retries=POLICY)

    print("\n== 1. an INSERT whose answer is lost after it committed")
    api.execute("CREATE TABLE IF NOT EXISTS ledger (note TEXT) USING deeplake")
    srv.set_faults(p_commit_fail=1.0)
    try:
        api.execute("INSERT INTO ledger VALUES ('paid invoice 17')")
    except AmbiguousWriteError as exc:
        print(f"   AmbiguousWriteError: {str(exc)[:110]}...")
    srv.set_faults(profile="none")
    rows = api.query("SELECT COUNT(*) AS n FROM ledger")[0]["n"]
    print(f"   rows in ledger: {rows} (it had committed; a blind retry would have made 2)")
    print("   insert_row(), idempotent=True or confirm= make such writes safe to resend")

    print(
        f"\n== 2. {FILES} files written and appended, {EVENTS} session events, "
        f"~{sum(v for k, v in FAULTS.items() if k.startswith('p_')):.0%} of requests failing"
    )
    srv.set_faults(seed=7, **FAULTS)
    with DeeplakeFs(api, cache=False) as fs:
        for i in range(FILES):
            fs.write_text(f"/notes/{i:02d}.md", f"note {i}\n")
        fs.flush()
        for i in range(FILES):
            fs.append_text(f"/notes/{i:02d}.md", "appended once\n")
    log = SessionLog(api, "s-1", user="ada")
    for i in range(EVENTS):
        log.log({"type": "prompt", "n": i})
    srv.set_faults(profile="none")

    print("\n== 3. checked with direct SQL after the run")
    stats = srv.stats()
    injected = {k: v for k, v in stats["injected"].items() if v}
    print(f"   server: {stats['requests']} requests, injected {injected}")
    print(f"   client: {api.stats.retries} retries")
    rows = api.query("SELECT path, summary FROM memory ORDER BY path")
    wrong = [r["path"] for i, r in enumerate(rows) if r["summary"] != f"note {i}\nappended once\n"]
    events = [e["n"] for e in log.read()]
    print(f"   memory rows: {len(rows)} (expected {FILES}), wrong content: {len(wrong)}")
    print(
        f"   session events: {events == list(range(EVENTS)) and EVENTS} in order, "
        f"no duplicates: {len(events) == EVENTS}"
    )
    assert len(rows) == FILES and not wrong and events == list(range(EVENTS))
    print("\ndone: nothing lost, nothing doubled")
