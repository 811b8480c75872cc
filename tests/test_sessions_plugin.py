"""Session files shaped like the agent-memory plugin's, whoever wrote them.

Rows are inserted by raw SQL exactly as the plugin writes them (tests/plugin_tables.py) into
tables created with the plugin's DDL; the SDK reads them back byte-exact (each line the stored
JSON text, ``size_bytes`` its UTF-8 length), greps compact JSON fragments in them, and logs
into the same file. No DDL statement is sent by the SDK.
"""

from __future__ import annotations

import json

from plugin_tables import (
    DDL_PATTERN,
    create_plugin_tables,
    insert_plugin_session_row,
    plugin_event,
    session_path,
    stringify,
)

from deeplake_sdk import DeeplakeApi, DeeplakeFs, SessionLog
from deeplake_sdk.sessions import (
    assistant_message,
    session_event,
    session_row,
    tool_call,
    user_message,
)

SID = "0b7c3d9e-5f1a-4c2b-9d8e-7a6b5c4d3e2f"


def pg_compact(raw, text: str) -> str:
    """The JSON text PostgreSQL stores for ``text``, compact (its key order kept).

    Re-serialised by ``json`` (exact for events of strings, as the plugin's are), independently
    of the SDK's own :func:`~deeplake_sdk.statements.files.compact_json`.
    """
    (pg_text,) = raw.rows("SELECT $1::jsonb::text", text)[0]
    return json.dumps(json.loads(pg_text), ensure_ascii=False, separators=(",", ":"))


def test_session_row_is_the_plugins_row():
    event = session_event(
        tool_call("Bash", {"command": "ls -la"}, {"stdout": "a\nb"}, tool_use_id="tu-1"),
        session_id="s-1",
        timestamp="2024-06-01T09:00:00.000001Z",
    )
    assert list(event)[:4] == ["id", "session_id", "timestamp", "type"]
    assert event["tool_input"] == '{"command": "ls -la"}' and event["tool_use_id"] == "tu-1"
    assert json.loads(event["tool_response"]) == {"stdout": "a\nb"}
    row = session_row(event, path="/sessions/ada/x.jsonl", user="ada", project="p")
    assert row["id"] == event["id"] and json.loads(row["message"]) == event
    assert row["size_bytes"] == len(row["message"].encode()) and " " not in row["message"][:20]
    assert (row["author"], row["project"], row["description"]) == ("ada", "p", "tool_call")
    assert row["creation_date"] == row["last_update_date"] == "2024-06-01T09:00:00.000001Z"
    assert (row["filename"], row["agent"], row["mime_type"]) == (
        "x.jsonl",
        "deeplake-sdk",
        "application/json",
    )
    hooked = session_row({**event, "hook_event_name": "PostToolUse"}, path="/p", user="u")
    assert hooked["description"] == "PostToolUse"
    assert user_message("hi", cwd="/x") == {"type": "user_message", "content": "hi", "cwd": "/x"}
    assert assistant_message("ok")["type"] == "assistant_message"


def test_plugin_session_rows_read_back_exact_and_logs_join_them(srv, raw, workspace, monkeypatch):
    monkeypatch.setenv("DEEPLAKE_ORG_NAME", "Acme Corp")
    create_plugin_tables(raw)
    path = session_path("ada", "Acme Corp", workspace, SID)
    events = [
        plugin_event(
            SID,
            "user_message",
            "2024-06-01T09:00:00.100Z",
            content='find "TODO" in the repo\n\tplease — 日本 ✓',
        ),
        plugin_event(
            SID,
            "tool_call",
            "2024-06-01T09:00:01.200Z",
            tool_name="Bash",
            tool_use_id="toolu_01",
            tool_input=stringify({"command": 'grep -rn "TODO" .'}),
            tool_response=stringify({"stdout": "a.py:3:# TODO\n", "interrupted": False}),
        ),
        plugin_event(
            SID, "assistant_message", "2024-06-01T09:00:02.300Z", content="One TODO, in a.py."
        ),
    ]
    texts = [insert_plugin_session_row(raw, e, user="ada", path=path) for e in events]
    # a retried insert that had committed: the same event in a second row
    insert_plugin_session_row(raw, events[0], user="ada", path=path)
    srv.set_faults(profile="none", fail_pattern=DDL_PATTERN, fail_status=400)
    srv.reset_stats()
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    try:
        with DeeplakeFs(api, cache=False) as fs:
            assert fs.ls("/sessions/ada") == [path.rsplit("/", 1)[-1]]
            lines = fs.read_text(path).split("\n")
            assert lines[-1] == "" and len(lines) == 4  # three events, one per line
            assert lines[:3] == [pg_compact(raw, t) for t in texts]
            assert [len(line.encode()) for line in lines[:3]] == [len(t.encode()) for t in texts]
            sizes = dict(raw.rows("SELECT message->>'id', size_bytes FROM sessions"))
            assert [len(line.encode()) for line in lines[:3]] == [
                sizes[json.loads(line)["id"]] for line in lines[:3]
            ]
            assert fs.stat(path).size == sum(len(t.encode()) + 1 for t in texts)
            assert "(3 events)" in fs.read_text("/index.md")

        log = SessionLog(api, SID, user="ada", project="proj")
        assert log.path == path  # one session id, one file, whichever client writes it
        assert log.read() == [json.loads(t) for t in texts]
        new_id = log.log(user_message("and the FIXME?", score=1e-05, tries=[1.5, 2.0]))
        log.flush()
        with DeeplakeFs(api, cache=False) as fs:
            lines = fs.read_text(path).splitlines()
            assert len(lines) == 4
            mine = json.loads(lines[3])
            assert '"score":0.00001,' in lines[3] and '"tries":[1.5,2.0]' in lines[3]
            assert (mine["id"], mine["session_id"], mine["type"]) == (new_id, SID, "user_message")
            row = raw.rows(
                "SELECT size_bytes, author, description, agent, creation_date, project "
                "FROM sessions WHERE id = $1",
                new_id,
            )
            assert row == [
                [
                    len(lines[3].encode()),
                    "ada",
                    "user_message",
                    "deeplake-sdk",
                    mine["timestamp"],
                    "proj",
                ]
            ]

            def grep(fragment: str) -> list[tuple[str, list[int]]]:
                found = fs.grep(fragment, "/sessions", fixed=True, include_sessions=True)
                return [(r.path, [m.line_number for m in r.matches]) for r in found]

            assert grep('"type":"user_message"') == [(path, [1, 4])]
            assert grep('"tool_name":"Bash","tool_use_id":"toolu_01"') == []  # not adjacent
            assert grep('"tool_name":"Bash"') == [(path, [2])]
            assert grep('"hook_event_name":"Stop"') == [(path, [3])]
            assert grep('\\"TODO\\"') == [(path, [1])]  # escaped quotes, as stored
            assert grep("a.py:3:# TODO\\\\n") == [(path, [2])]  # a JSON string in JSON
        assert srv.stats()["injected"]["pattern"] == 0  # no DDL from the SDK
    finally:
        api.close()


def test_duplicate_event_rows_collapse_on_every_reader(api, raw, fs):
    log = SessionLog(api, "dups", user="bob")
    ids = [log.log(user_message(f"question {i}")) for i in range(3)]
    log.flush()
    copy = raw.rows(
        "SELECT path, filename, message::text, size_bytes, creation_date FROM sessions "
        "WHERE id = $1",
        ids[1],
    )[0]
    for row_id in (ids[1], "other-row-id"):  # same row id, and same event in another row
        raw.rows(
            "INSERT INTO sessions (id, path, filename, message, size_bytes, creation_date) "
            "VALUES ($1, $2, $3, $4::jsonb, $5, $6)",
            row_id,
            *copy,
        )
    fs.refresh()
    lines = fs.read_text(log.path).splitlines()
    assert [json.loads(line)["content"] for line in lines] == [f"question {i}" for i in range(3)]
    assert [e["id"] for e in log.read()] == ids
    hits = fs.grep("question 2", "/", include_sessions=True)
    assert [(r.path, [m.line_number for m in r.matches]) for r in hits] == [(log.path, [3])]
    assert "(3 events)" in fs.read_text("/index.md")
