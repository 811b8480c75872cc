"""A separate process writing through DeeplakeFs, driven by the journal tests.

Usage: python journal_worker.py URL TOKEN ORG WORKSPACE JOURNAL PATCH OP [ARGS...]

JOURNAL is a journal directory, ``-`` for the default one, or ``null``. PATCH is ``patched``
(gevent.monkey.patch_all() first) or ``plain``. Prints one JSON line when done.

OP:
  append_many GO PATH TAG N   wait for file GO, append N lines "TAG i" to PATH, close
  write_many GO PATH TAG N    wait for file GO, write PATH N times ("TAG i"), close
  write_then_sleep N DELAY    print "ready", wait for a line on stdin, write N files /k/<i>.md,
                              print "written", sleep (to be killed)
  change_then_sleep KIND DELAY
                              write /k/0.md and flush it (the journal learns its row), print
                              "ready", wait for a line, write it again (KIND ``rewrite``),
                              append to it (``append``) or delete it (``delete``), print
                              "changed", sleep
  write_delete_then_sleep DELAY
                              print "ready", wait for a line, write /k/0.md, print "written",
                              wait for a line, delete it, print "deleted", sleep
  event_then_sleep DELAY      learn a 0.2 s window from one write, print "ready", wait for a
                              line on stdin, log one session event, print its id, sleep
"""

from __future__ import annotations

import sys

if sys.argv[6] == "patched":
    from gevent import monkey

    monkey.patch_all()

import json
import os
import time

from consistency import SHORT_WINDOW

from deeplake_sdk import DeeplakeApi, DeeplakeFs, SessionLog


def wait_for(go: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.005)  # a file created by the test starts every worker at once


def main() -> None:
    url, token, org, workspace, journal, _patch, op, *args = sys.argv[1:]
    api = DeeplakeApi(token, org, workspace, url)
    where: bool | str | None = {"-": None, "null": False}.get(journal, journal)
    policy = SHORT_WINDOW if op == "event_then_sleep" else None
    fs = DeeplakeFs(api, cache=False, journal=where, consistency=policy)
    if op == "append_many":
        go, path, tag, n = args
        wait_for(go)
        for i in range(int(n)):
            fs.append_text(path, f"{tag} {i}\n")
        fs.close()
    elif op == "write_many":
        go, path, tag, n = args
        wait_for(go)
        for i in range(int(n)):
            fs.write_text(path, f"{tag} {i}")
        fs.close()
    elif op == "write_then_sleep":
        n, delay = args
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(int(n)):
            fs.write_text(f"/k/{i}.md", f"file {i}\n")
        print("written", flush=True)
        time.sleep(float(delay))  # the test kills this process while it sleeps
    elif op == "change_then_sleep":
        kind, delay = args
        fs.write_text("/k/0.md", "first\n")
        fs.flush()
        print("ready", flush=True)
        sys.stdin.readline()
        if kind == "rewrite":
            fs.write_text("/k/0.md", "second\n")
        elif kind == "append":
            fs.append_text("/k/0.md", "more\n")
        else:
            fs.rm("/k/0.md")
        print("changed", flush=True)
        time.sleep(float(delay))  # the test kills this process while it sleeps
    elif op == "write_delete_then_sleep":
        (delay,) = args
        print("ready", flush=True)
        sys.stdin.readline()
        fs.write_text("/k/0.md", "file 0\n")
        print("written", flush=True)
        sys.stdin.readline()
        fs.rm("/k/0.md")
        print("deleted", flush=True)
        time.sleep(float(delay))  # the test kills this process while it sleeps
    elif op == "event_then_sleep":
        (delay,) = args
        fs.write_text("/warm.md", "warm")
        fs.flush()
        log = SessionLog(api, "s1", user="u", project="p", journal=where)
        print("ready", flush=True)
        sys.stdin.readline()
        print(log.log({"type": "prompt", "text": "hello"}), flush=True)
        time.sleep(float(delay))  # the test kills this process while it sleeps
    else:
        raise SystemExit(f"unknown op {op}")
    print(json.dumps({"ok": True}), flush=True)


if __name__ == "__main__":
    main()
