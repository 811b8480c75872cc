"""The SDK on the tables real workspaces hold: the plugin's layout, exact bytes, duplicate rows.

Every test runs against the real local server. Tables created with the agent-memory plugin's
own DDL (tests/plugin_tables.py) are used without a single DDL statement from the SDK: a
``fail_pattern`` fault on every DDL statement would fail the test, and its count is checked.
"""

from __future__ import annotations

import errno
import json

import pytest
from plugin_tables import DDL_PATTERN, create_plugin_tables

from deeplake_sdk import (
    ContentCache,
    DeeplakeApi,
    DeeplakeFs,
    FsError,
    SessionLog,
    TableLayout,
    TableLayoutError,
    __version__,
)
from deeplake_sdk.sessions import user_message
from deeplake_sdk.statements import files as st
from deeplake_sdk.statements import journal as sj
from deeplake_sdk.statements.layout import columns_of, oldest_per_path

PLUGIN_MEMORY_COLUMNS = {
    "id",
    "path",
    "filename",
    "summary",
    "summary_embedding",
    "author",
    "mime_type",
    "size_bytes",
    "project",
    "description",
    "agent",
    "plugin_version",
    "creation_date",
    "last_update_date",
}


def forbid_ddl(srv) -> None:
    """Fail every DDL statement from now on (counted as ``injected["pattern"]``)."""
    srv.set_faults(profile="none", fail_pattern=DDL_PATTERN, fail_status=400)
    srv.reset_stats()


def ddl_sent(srv) -> int:
    return srv.stats()["injected"]["pattern"]


def columns(raw, table: str) -> set[str]:
    rows = raw.rows(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1",
        table,
    )
    return {r[0] for r in rows}


def stored(raw, path: str, cols: str = "summary, size_bytes, agent, plugin_version"):
    return raw.rows(f"SELECT {cols} FROM memory WHERE path = $1", path)


# -- layouts ------------------------------------------------------------------------------
def test_layout_value_and_rules():
    plugin = TableLayout("memory", "memory", frozenset(PLUGIN_MEMORY_COLUMNS))
    assert plugin.has("summary") and not plugin.binary_ok and plugin.missing() == []
    assert plugin.to_add() == []  # nothing a migration would add: content never
    sdk = TableLayout.full("memory", "memory")
    assert sdk.binary_ok and sdk.columns == PLUGIN_MEMORY_COLUMNS | {"content"}
    assert TableLayout.full("s", "sessions").columns == {c.name for c in columns_of("sessions")}
    bare = TableLayout("t", "memory", frozenset({"id", "path", "size_bytes", "content"}))
    assert bare.check() is bare and bare.order_by == "id"
    assert plugin.order_by == "creation_date, id"
    with pytest.raises(TableLayoutError) as info:
        TableLayout("t", "sessions", frozenset({"id", "message"})).check()
    assert info.value.missing == ["path"] and "'t'" in str(info.value)
    assert "migrate=True" in str(info.value)
    with pytest.raises(ValueError):
        TableLayout.full("t", "skills")  # type: ignore[arg-type]


def test_statements_name_only_the_columns_a_table_has():
    plugin = TableLayout("memory", "memory", frozenset(PLUGIN_MEMORY_COLUMNS))
    row = {
        "id": "r1",
        "path": "/a.md",
        "filename": "a.md",
        "content": b"hi",
        "summary": "hi",
        "author": "ada",
        "mime_type": "text/markdown",
        "size_bytes": 2,
        "project": "",
        "description": "",
        "creation_date": "d",
        "last_update_date": "d",
    }
    for sql, _params in (
        sj.insert_absent(plugin, [row]),
        sj.replace(plugin, row),
        st.memory_read(plugin, ["/a.md"]),
        sj.append_cas(plugin, "/a.md", "r1", b"x", text="x", expected_size=2, date="d"),
        sj.append_landed(plugin, "/a.md", "r1", b"x", offset=2),
        sj.row_content(plugin, "r1"),
    ):
        assert "content" not in sql.replace("NULL AS content", ""), sql
        assert "embedding" not in sql
    # the SDK's agent and version fill the plugin's columns; no bytea for a text-only table
    sql, params = sj.insert_absent(plugin, [row])
    assert "deeplake-sdk" in params and __version__ in params and "\\x6869" not in params
    sql, params = sj.insert_absent(plugin, [{**row, "agent": "other", "plugin_version": "9"}])
    assert "other" in params and "9" in params and "deeplake-sdk" not in params
    binary = {**row, "content": b"\x00\xff", "summary": ""}
    with pytest.raises(ValueError, match="no content column"):
        sj.insert_absent(plugin, [binary])
    with pytest.raises(ValueError, match="no content column"):
        sj.replace(plugin, binary)
    with pytest.raises(ValueError, match="no content column"):
        sj.append_cas(plugin, "/a.md", None, b"\xff", text=None, expected_size=2, date="d")
    sdk = TableLayout.full("memory", "memory")
    sql, params = sj.insert_absent(sdk, [binary])
    assert "content" in sql and "\\x00ff" in params
    sessions = TableLayout("sessions", "sessions", frozenset({"id", "path", "message", "agent"}))
    sql, params = sj.insert_events(sessions, [{"id": "e1", "path": "/s", "message": "{}"}])
    assert "plugin_version" not in sql and params == ["e1", "/s", "{}", "deeplake-sdk"]


def test_message_text_matches_what_postgresql_stores(raw):
    """Compact JSON, JSONB's key order and number forms: checked against PostgreSQL's output."""
    events = [
        {"type": "user_message", "id": "1", "content": 'say "hi"\n\ttab \x1b[0m é 日本 \u2028'},
        {"zz": 1, "a": [1, 2.5, -3e-05, True, None], "bb": {"y": {}, "x": []}, "é": "ü"},
        {"b": 10**20, "a": 0.1, "aa": 1.0, "ab": "\\back/slash", "ä": 1, "z": 2},
        {"f": [1e-07, 1.5e-12, 1e16, 1e22, -0.0, 123456789.125, -2.5e-05, 7e300]},
        {"n": -(10**30), "s": "a, b: c", "k: ,": {"": "", " ": " "}},
        "just a string",
        [3, {"k": "v"}],
    ]
    for event in events:
        python_text = json.dumps(event, ensure_ascii=False)
        (pg_text,) = raw.rows("SELECT $1::jsonb::text", python_text)[0]
        stored = st.compact_json(pg_text)  # what a session line reads back as
        assert st.message_text(event) == stored
        # the same value (a float without a fraction reads back as an int: compare as floats)
        assert json.loads(stored, parse_int=float) == json.loads(python_text, parse_int=float)
        (again,) = raw.rows("SELECT $1::jsonb::text", st.message_text(event))[0]
        assert again == pg_text  # the text the SDK sends stores the same value
    assert "0.00001" in st.message_text({"x": 1e-05}) and "e" not in st.message_text([1e22])
    with pytest.raises(ValueError):
        st.message_text({"x": float("nan")})
    with pytest.raises(TypeError):
        st.message_text({"x": object()})


# -- the plugin's tables -------------------------------------------------------------------
def test_sdk_on_plugin_tables_sends_no_ddl(srv, raw, api, workspace, tmp_path):
    create_plugin_tables(raw)
    forbid_ddl(srv)
    text = "# Notes\r\nline\twith tab, bell \x07, esc \x1b, unicode é 日本\n"
    with DeeplakeFs(api, cache=ContentCache(tmp_path / "c")) as fs:
        assert srv.stats()["requests"] == 1  # one probe of both tables; metadata when needed
        assert not fs.layout.binary_ok and fs.layout.columns == PLUGIN_MEMORY_COLUMNS
        fs.write_text("/notes/a.md", text, description="notes")
        fs.write_text("/notes/b.md", "second file\n")
        fs.flush()
        fs.append_text("/notes/a.md", "appended line\n")  # to a stored file
        fs.write_text("/notes/c.md", "queued ")
        fs.append_text("/notes/c.md", "and appended\n")  # merged into the queued write
        log = SessionLog(api, "s1", user="ada")
        log.log(user_message("where are the notes?"))
        assert fs.ls("/notes") == ["a.md", "b.md", "c.md"]
    with DeeplakeFs(api, cache=False) as fs:
        assert fs.read_text("/notes/a.md") == text + "appended line\n"
        assert fs.read_text("/notes/c.md") == "queued and appended\n"
        assert fs.stat("/notes/a.md").size == len((text + "appended line\n").encode())
        hits = fs.grep("appended", "/notes")
        assert [(r.path, [m.line_number for m in r.matches]) for r in hits] == [
            ("/notes/a.md", [3]),
            ("/notes/c.md", [1]),
        ]
        assert json.loads(fs.read_text(log.path))["content"] == "where are the notes?"
    assert ddl_sent(srv) == 0
    assert columns(raw, "memory") == PLUGIN_MEMORY_COLUMNS  # never altered
    summary, size, agent, version = stored(raw, "/notes/a.md")[0]
    assert summary == text + "appended line\n" and size == len(summary.encode())
    assert (agent, version) == ("deeplake-sdk", __version__)
    assert raw.rows("SELECT summary_embedding FROM memory") == [[None]] * 3  # left NULL


def test_binary_write_to_plugin_table_is_refused_before_sending(srv, raw, api):
    create_plugin_tables(raw)
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/t.md", "text\n")
        fs.flush()
        srv.reset_stats()
        for action in (
            lambda: fs.write_bytes("/bin.dat", b"\x89PNG\x00\x01"),
            lambda: fs.write_bytes("/bad.txt", b"caf\xe9"),  # latin-1, not UTF-8
            lambda: fs.append_bytes("/t.md", b"\x00"),
            lambda: fs.append_bytes("/new.txt", b"\xff"),
        ):
            with pytest.raises(FsError) as info:
                action()
            assert info.value.errno == errno.EINVAL
            message = str(info.value)
            assert "'memory'" in message and "no content column" in message
            assert "Write text" in message
        assert srv.stats()["requests"] == 0  # nothing sent
        assert fs.journal.store.stats().pending == 0 and not fs.exists("/bin.dat")
        assert fs.read_text("/t.md") == "text\n"  # nothing lost either


def test_migrate_never_adds_content_to_a_plugin_table(srv, raw, api):
    create_plugin_tables(raw)
    forbid_ddl(srv)
    layouts = api.ensure_tables(migrate=True)
    assert ddl_sent(srv) == 0 and srv.stats()["requests"] == 1  # the one probe
    assert not layouts["memory"].binary_ok and layouts["sessions"].has("message_embedding")
    assert api.ensure_table() is layouts["memory"]  # remembered


def test_a_table_the_sdk_cannot_use_is_a_clear_error(srv, raw, api):
    raw.rows('CREATE TABLE "memory" (id TEXT, summary TEXT, size_bytes BIGINT)')
    raw.rows('CREATE TABLE "sessions" (id TEXT, path TEXT, body TEXT)')
    forbid_ddl(srv)
    with pytest.raises(TableLayoutError) as info:
        DeeplakeFs(api, cache=False)
    assert info.value.missing == ["path"] and info.value.layout.kind == "memory"
    with pytest.raises(TableLayoutError, match="lacks message"):
        SessionLog(api, "s", user="u")
    assert ddl_sent(srv) == 0


# -- exact bytes on the SDK's own table ------------------------------------------------------
def test_exact_bytes_on_an_sdk_table(srv, raw, api, tmp_path):
    files = {
        "/ctl.txt": b"bell \x07 esc \x1b[1m cr\r\n form\x0c\n",
        "/nul.bin": b"a\x00b\x00",
        "/latin1.txt": b"caf\xe9 cr\xe8me",
        "/png.bin": bytes(range(256)),
        "/utf8.md": "é 日本 \u2028\n".encode(),
    }
    with DeeplakeFs(api, cache=False) as fs:
        assert fs.layout.binary_ok
        for path, data in files.items():
            fs.write_bytes(path, data)
        fs.flush()
        fs.append_bytes("/latin1.txt", b"\xff\x00")
        files["/latin1.txt"] += b"\xff\x00"
        fs.append_bytes("/ctl.txt", b"\x01more\n")
        files["/ctl.txt"] += b"\x01more\n"
    with DeeplakeFs(api, cache=ContentCache(tmp_path / "c")) as fs:
        assert fs.prefetch(files) == len(files)
        assert {p: fs.read_bytes(p) for p in files} == files
        assert {p: fs.stat(p).size for p in files} == {p: len(d) for p, d in files.items()}
    with DeeplakeFs(api, cache=False) as fs:
        assert {p: fs.read_bytes(p) for p in files} == files
    # a text row's bytes travel once, as summary; binary ones as content
    sql, params = st.memory_read(TableLayout.full("memory", "memory"), ["/utf8.md", "/nul.bin"])
    rows = {r["path"]: r for r in api.query(sql, params)}
    assert rows["/utf8.md"]["content"] is None and rows["/utf8.md"]["summary"]
    assert rows["/nul.bin"]["summary"] is None and rows["/nul.bin"]["content"] == "\\x61006200"


def test_summary_rewritten_by_another_client_wins_over_stale_content(raw, api):
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/summaries/ada/s1.md", "# in progress\n")
    new = "# Session s1\ndone, longer than before\n"
    raw.rows(  # the plugin's SessionEnd rewrites summary and size only
        "UPDATE memory SET summary = $1, size_bytes = $2 WHERE path = $3",
        new,
        len(new.encode()),
        "/summaries/ada/s1.md",
    )
    with DeeplakeFs(api, cache=False) as fs:
        assert fs.read_text("/summaries/ada/s1.md") == new


# -- duplicate rows ----------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["sdk", "plugin"])
def test_duplicate_rows_resolve_to_the_oldest(srv, raw, api, layout, tmp_path):
    if layout == "plugin":
        create_plugin_tables(raw)
    else:
        api.ensure_tables()
    insert = (
        "INSERT INTO memory (id, path, filename, summary, size_bytes, creation_date, "
        "last_update_date) VALUES ($1, $2, 'x', $3, $4, $5, $5)"
    )
    rows = [  # (id, path, text, creation_date)
        ("b-oldest", "/dup/a.md", "oldest text\n", "2024-01-01T00:00:00.000Z"),
        ("a-newer", "/dup/a.md", "newer and longer text\n", "2024-06-01T00:00:00.000Z"),
        ("c", "/dup/b.md", "same date, larger id\n", "2024-02-02T00:00:00.000Z"),
        ("a", "/dup/b.md", "same date, smaller id: kept\n", "2024-02-02T00:00:00.000Z"),
    ]
    for rid, path, text, date in rows:
        raw.rows(insert, rid, path, text, len(text.encode()), date)
    expected = {"/dup/a.md": "oldest text\n", "/dup/b.md": "same date, smaller id: kept\n"}
    for cache in (False, ContentCache(tmp_path / "c")):
        with DeeplakeFs(api, cache=cache) as fs:
            assert fs.ls("/dup") == ["a.md", "b.md"]
            assert {p: fs.stat(p).size for p in expected} == {
                p: len(t.encode()) for p, t in expected.items()
            }
            if cache is not False:
                assert fs.prefetch(expected) == 2
            assert {p: fs.read_text(p) for p in expected} == expected
            hits = fs.grep("text|kept", "/dup")
            assert {r.path: [m.line for m in r.matches] for r in hits} == {
                p: [t.rstrip("\n")] for p, t in expected.items()
            }
            assert fs.grep("newer", "/dup") == [] and fs.grep("larger", "/") == []
    # the Python helper and the statements' ORDER BY agree
    sql, params = sj.rows_of(api.ensure_table().name, list(expected))
    answered = api.query(sql, params)
    assert [r["id"] for r in answered] == ["b-oldest", "a-newer", "a", "c"]
    assert {p: r["id"] for p, r in oldest_per_path(reversed(answered)).items()} == {
        "/dup/a.md": "b-oldest",
        "/dup/b.md": "a",
    }


# -- orgs -----------------------------------------------------------------------------------
def test_orgs_sharing_a_workspace_name_each_get_their_tables(srv, workspace):
    acme = DeeplakeApi("tok-acme", "acme", workspace, srv.url)
    beta = DeeplakeApi("tok-beta", "beta", workspace, srv.url)
    try:
        acme.ensure_tables()
        srv.reset_stats()
        assert beta.list_tables() == []
        layouts = beta.ensure_tables()  # not taken from acme's memo
        assert srv.stats()["requests"] >= 2 and set(layouts) == {"memory", "sessions"}
        assert sorted(beta.list_tables()) == ["memory", "sessions"]
        with DeeplakeFs(beta, cache=False) as fs:
            fs.write_text("/beta.md", "beta's\n")
        with DeeplakeFs(acme, cache=False) as fs:
            assert not fs.exists("/beta.md")
        srv.reset_stats()
        acme.ensure_tables()
        beta.ensure_tables()
        assert srv.stats()["requests"] == 0  # each remembered under its own org
    finally:
        acme.close()
        beta.close()
