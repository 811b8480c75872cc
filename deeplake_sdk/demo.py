"""``python -m deeplake_sdk.demo``: a short tour of the local server with plain HTTP.

Starts :func:`deeplake_sdk.server.local` on a temporary embedded PostgreSQL, creates a table,
writes and reads a few rows through the Deeplake wire API, prints the server's counters and
stops everything (no PostgreSQL process is left behind).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import requests

from deeplake_sdk.server import local


def _show(title: str, value: Any) -> None:
    print(f"\n== {title}")
    if isinstance(value, dict) and "columns" in value and value["columns"]:
        cells = [[json.dumps(c, ensure_ascii=False) for c in row] for row in value["rows"]]
        widths = [
            max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(value["columns"])
        ]
        print("  " + " | ".join(h.ljust(w) for h, w in zip(value["columns"], widths, strict=True)))
        print("  " + "-+-".join("-" * w for w in widths))
        for row in cells:
            print("  " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        print(f"  ({value['row_count']} rows)")
    else:
        print("  " + json.dumps(value, ensure_ascii=False))


def main() -> int:
    """Run the demo; returns the exit status."""
    started = time.monotonic()
    with local() as srv:
        print(
            f"local server on {srv.url} (pid {srv.pid}, token {srv.token!r}, org {srv.org!r}), "
            f"up in {time.monotonic() - started:.2f} s"
        )
        http = requests.Session()
        http.headers.update(srv.headers)
        base = f"{srv.url}/workspaces/demo"

        def query(sql: str, *params: Any) -> dict[str, Any]:
            body: dict[str, Any] = {"query": sql}
            if params:
                body["params"] = list(params)
            resp = http.post(f"{base}/tables/query", json=body, timeout=30)
            resp.raise_for_status()
            return resp.json()

        created = http.post(
            f"{base}/tables",
            json={
                "table_name": "memory",
                "table_schema": {
                    "path": "TEXT NOT NULL",
                    "content": "BYTEA NOT NULL DEFAULT ''::bytea",
                    "summary": "TEXT NOT NULL DEFAULT ''",
                    "size_bytes": "BIGINT NOT NULL DEFAULT 0",
                },
            },
            timeout=30,
        )
        created.raise_for_status()
        _show("tables", http.get(f"{base}/tables", timeout=30).json())
        notes = {
            "/notes/hello.md": "Hello from the local Deeplake server.",
            "/notes/unicode.md": "naïve café — 日本語 😀",
            "/notes/todo.md": "buy milk\nwrite tests\n",
        }
        for path, text in notes.items():
            data = text.encode()
            query(
                "INSERT INTO memory (path, content, summary, size_bytes) "
                "VALUES ($1, $2::bytea, $3, $4)",
                path,
                "\\x" + data.hex(),
                text,
                len(data),
            )
        _show("SELECT path, size_bytes", query("SELECT path, size_bytes FROM memory ORDER BY path"))
        _show(
            "append with || then read back",
            query(
                "UPDATE memory SET summary = summary || $1 WHERE path = $2 RETURNING path, summary",
                "call mom\n",
                "/notes/todo.md",
            ),
        )
        _show(
            "ILIKE search",
            query("SELECT path FROM memory WHERE summary ILIKE $1 ORDER BY path", "%CAFÉ%"),
        )
        _show(
            "bm25-style score (<#>)",
            query("SELECT path, summary <#> 'local server' AS score FROM memory ORDER BY 2 DESC"),
        )
        stats = srv.stats()
        _show(
            "server stats",
            {
                k: stats[k]
                for k in (
                    "requests",
                    "status_counts",
                    "connections_opened",
                    "queries_executed",
                    "inflight_peak",
                    "cpu_seconds",
                )
            },
        )
    print(f"\nserver and PostgreSQL stopped; demo took {time.monotonic() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
