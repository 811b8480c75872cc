"""Durability check after a run: compare what sessions were told with what the database holds."""

from __future__ import annotations

from typing import Any

from deeplake_sdk.api import DeeplakeApi
from deeplake_sdk.bench.workload import digest
from deeplake_sdk.sql import quote_ident


def verify_writes(
    api: DeeplakeApi,
    records: list[dict[str, Any]],
    memory: str = "memory",
    sessions: str = "sessions",
) -> dict[str, int]:
    """Count lost and duplicated writes of one run, reading the tables directly.

    * a memory file is **lost** when a session was told it was stored and the table has no row
      for its path, or a row with other content; every row beyond the first of a path is a
      **duplicate**;
    * a session event is **lost** when its acknowledged id has no row; every row beyond the
      first of an id is a **duplicate** (whether or not the session was told it succeeded).
    """
    acked_files: dict[str, str] = {}
    acked_events: set[str] = set()
    for record in records:
        acked_files.update(record["acked_files"])
        acked_events.update(record["acked_events"])

    files: dict[str, list[str]] = {}
    for row in api.query(f"SELECT path, summary FROM {quote_ident(memory)}"):
        files.setdefault(row["path"], []).append(row["summary"] or "")
    duplicate_files = sum(len(v) - 1 for v in files.values())
    lost_files = sum(
        1
        for path, expected in acked_files.items()
        if not files.get(path) or digest(files[path][0].encode()) != expected
    )

    events: dict[str, int] = {
        row["id"]: int(row["n"])
        for row in api.query(f"SELECT id, COUNT(*) AS n FROM {quote_ident(sessions)} GROUP BY id")
    }
    duplicate_events = sum(n - 1 for n in events.values())
    lost_events = sum(1 for event_id in acked_events if event_id not in events)
    return {
        "lostWrites": lost_files + lost_events,
        "duplicateWrites": duplicate_files + duplicate_events,
        "ackedWrites": len(acked_files) + len(acked_events),
        "lostFiles": lost_files,
        "lostEvents": lost_events,
        "duplicateFiles": duplicate_files,
        "duplicateEvents": duplicate_events,
    }
