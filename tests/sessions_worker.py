"""Many agent sessions in one process, reporting every write as it is made and acknowledged.

Usage: python sessions_worker.py URL TOKEN ORG WORKSPACE JOURNAL run SESSIONS SEED
       python sessions_worker.py URL TOKEN ORG WORKSPACE JOURNAL resume

``run`` (gevent-patched, sessions on greenlets): each session writes, appends to and logs events
for its own files, in a seeded random order, forever; before each call it prints
``{"intent": op}`` and after it returns ``{"acked": op}`` (one JSON line each, flushed), so a
test that kills the process knows which writes were acknowledged and which one per session may
have been journaled without being acknowledged.

``resume``: opens the workspace (which replays what the killed process left in the journal),
waits until the journal is empty, and prints ``{"resumed": n}``.
"""

from __future__ import annotations

import os
import sys

if sys.argv[6] == "run" and os.environ.get("SESSIONS_WORKER_PATCH", "1") == "1":
    from gevent import monkey

    monkey.patch_all()

import json
import random
import threading

import gevent

from deeplake_sdk import DeeplakeApi, DeeplakeFs, SessionLog

_out = threading.Lock()


def emit(obj: dict) -> None:
    with _out:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def session(fs: DeeplakeFs, api: DeeplakeApi, journal: str, n: int, seed: int) -> None:
    rng = random.Random(seed * 1000 + n)
    log = SessionLog(api, f"s{n}", user=f"u{n}", ensure=False, journal=journal)
    for step in range(10**6):
        kind = rng.choice(("write", "append", "append", "event"))
        path = f"/s{n}/f{rng.randrange(4)}.md"
        op: dict = {"s": n, "step": step, "kind": kind}
        if kind == "write":
            op.update(path=path, text=f"s{n} write {step}\n")
            emit({"intent": op})
            fs.write_text(path, op["text"])
        elif kind == "append":
            op.update(path=path, text=f"s{n} append {step}\n")
            emit({"intent": op})
            fs.append_text(path, op["text"])
        else:
            emit({"intent": op})
            op["id"] = log.log({"type": "user_message", "content": f"s{n} event {step}"})
            op["path"] = log.path
        emit({"acked": op})
        gevent.sleep(rng.uniform(0.02, 0.1))  # the agent's pace between two writes


def main() -> None:
    url, token, org, workspace, journal, op, *args = sys.argv[1:]
    api = DeeplakeApi(token, org, workspace, url)
    if op == "run":
        sessions, seed = int(args[0]), int(args[1])
        fs = DeeplakeFs(api, cache=False, journal=journal)
        emit({"ready": True})
        gevent.joinall([gevent.spawn(session, fs, api, journal, n, seed) for n in range(sessions)])
    elif op == "resume":
        import logging  # what the drain did, for a test that waits too long

        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
        )
        logging.getLogger("deeplake_sdk.journal").setLevel(logging.DEBUG)
        fs = DeeplakeFs(api, cache=False, journal=journal, recover_timeout=300)
        left = fs.journal.wait_for(fs.journal.overlay.seqs(), 300)
        emit({"resumed": True, "left": len(left)})
    else:
        raise SystemExit(f"unknown op {op}")


if __name__ == "__main__":
    main()
