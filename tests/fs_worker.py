"""A separate process using DeeplakeFs, driven by the cross-process tests.

Usage: python fs_worker.py URL TOKEN ORG WORKSPACE CACHE_DIR OP [ARGS...]; prints one JSON line.
OP: read PATH | append PATH TEXT | write_many GO_FILE CONTENT PATH... (waits for GO_FILE first).
"""

from __future__ import annotations

import json
import os
import sys
import time

import requests

from deeplake_sdk import DeeplakeApi, DeeplakeFs
from deeplake_sdk.cache import ContentCache


def executed(url: str, token: str) -> int:
    stats = requests.get(
        f"{url}/_admin/stats", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    return stats["queries_executed"]


def main() -> None:
    url, token, org, workspace, cache_dir, op, *args = sys.argv[1:]
    api = DeeplakeApi(token, org, workspace, url)
    cache = ContentCache(cache_dir) if cache_dir != "-" else False
    with DeeplakeFs(api, cache=cache) as fs:
        if op == "read":
            fs.exists(args[0])  # the metadata (the cache entry's current version) first
            before = executed(url, token)
            text = fs.read_text(args[0])
            out = {"text": text, "queries": executed(url, token) - before}
        elif op == "append":
            fs.append_text(args[0], args[1])
            out = {"ok": True}
        elif op == "write_many":
            go, content, *paths = args
            deadline = time.monotonic() + 60
            while not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.005)
            for p in paths:
                fs.write_text(p, content)
            fs.flush()
            out = {"ok": True}
        else:
            raise SystemExit(f"unknown op {op}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
