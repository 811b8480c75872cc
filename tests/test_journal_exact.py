"""Exactness of the drain when answers say less than they should (real server)."""

from __future__ import annotations

from typing import Any

from deeplake_sdk import DeeplakeApi, DeeplakeFs, SessionLog
from deeplake_sdk.api_types import QueryResult


class NoCountApi(DeeplakeApi):
    """A client of a service whose answers never carry ``row_count``."""

    def execute(self, sql: str, params: Any = None, **kwargs: Any) -> QueryResult:
        result = super().execute(sql, params, **kwargs)
        if not result.columns:
            result.row_count = None
        return result


def test_answers_without_row_count_never_double_an_append(srv, workspace):
    api = NoCountApi(srv.token, srv.org, workspace, srv.url)
    with DeeplakeFs(api, cache=False, journal=False) as fs:
        fs.write_text("/log.md", "start\n")
        fs.flush()
        for i in range(20):
            fs.append_text("/log.md", f"line {i}\n")
            if i % 3 == 0:
                fs.flush()  # several drains: appends to a stored file, one at a time
        fs.append_text("/new.md", "created by an append\n")
        log = SessionLog(api, "s", user="u", journal=False)
        ids = [log.log({"type": "user_message", "content": str(i)}) for i in range(5)]
        log.flush()  # the log's own events: closing the filesystem waits for the file's only
    expected = "start\n" + "".join(f"line {i}\n" for i in range(20))
    rows = api.query("SELECT path, summary FROM memory ORDER BY path")
    assert rows == [
        {"path": "/log.md", "summary": expected},
        {"path": "/new.md", "summary": "created by an append\n"},
    ]
    stored = api.query("SELECT id FROM sessions ORDER BY creation_date")
    assert [r["id"] for r in stored] == ids
