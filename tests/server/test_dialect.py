"""The service's SQL behaviours (dialect ``deeplake``, the default) and ``dialect="postgres"``.

Each behaviour is observed by a raw HTTP client on the default server (``raw``) and shown
turned off on the plain PostgreSQL one (``pgraw``).
"""

from __future__ import annotations

import pytest

from deeplake_sdk.server.sqlscan import like_without_default_escape, scan, without_if_not_exists

COLUMN_EXISTS = (
    "Database error: Failed to add column 'summary' to deeplake dataset: "
    "Column 'summary' already exists"
)


# ---------------------------------------------------------------- pure units
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1 FROM t WHERE p LIKE 'a\\_%'", "SELECT 1 FROM t WHERE p LIKE 'a\\_%' ESCAPE ''"),
        ("SELECT 1 FROM t WHERE p LIKE $1 ESCAPE '\\'", None),
        (
            "SELECT 1 FROM t WHERE p NOT ILIKE '%' || $1 || '%' AND q = 1",
            "SELECT 1 FROM t WHERE p NOT ILIKE '%' || $1 || '%' ESCAPE '' AND q = 1",
        ),
        (
            "SELECT p LIKE 'x' AS m, q ILIKE lower($2) matched FROM t",
            "SELECT p LIKE 'x' ESCAPE '' AS m, q ILIKE lower($2) ESCAPE '' matched FROM t",
        ),
        ("SELECT 1 FROM t WHERE p LIKE ANY (ARRAY['a', 'b'])", None),
        ("SELECT 1 FROM t WHERE (p LIKE 'a%')", "SELECT 1 FROM t WHERE (p LIKE 'a%' ESCAPE '')"),
        (
            "SELECT 1 FROM t WHERE p LIKE $1::text LIMIT 3",
            "SELECT 1 FROM t WHERE p LIKE $1::text ESCAPE '' LIMIT 3",
        ),
        ("SELECT 'a LIKE b' -- LIKE\n", None),
        ("SELECT $1 LIKE E'\\\\%' AS lit", "SELECT $1 LIKE E'\\\\%' ESCAPE '' AS lit"),
        ("SELECT $1 LIKE E'\\\\%' ESCAPE '\\'", None),
        ("SELECT $1 LIKE U&'a\\0041' x", "SELECT $1 LIKE U&'a\\0041' ESCAPE '' x"),
        ("SELECT $$x$$ LIKE $t$a\\%$t$", "SELECT $$x$$ LIKE $t$a\\%$t$ ESCAPE ''"),
    ],
)
def test_like_rewrite(sql, expected):
    assert like_without_default_escape(sql) == (sql if expected is None else expected)


def test_if_not_exists_blanked_and_statement_scan():
    out = without_if_not_exists(
        "ALTER TABLE m ADD COLUMN IF NOT EXISTS a int, ADD IF NOT EXISTS b int"
    )
    assert out == "ALTER TABLE m ADD COLUMN               a int, ADD               b int"
    assert without_if_not_exists("CREATE TABLE IF NOT EXISTS t (a int)") == (
        "CREATE TABLE IF NOT EXISTS t (a int)"
    )
    s = scan('INSERT INTO "Mem" VALUES (1); INSERT INTO s.t SELECT 1')
    assert (s.kind, s.insert_tables) == ("write", ["Mem", "t"])
    assert scan("ALTER TABLE Memory ADD x int").added_column_tables == ["memory"]
    assert scan("ALTER TABLE m ADD CONSTRAINT c CHECK (true)").added_column_tables == []
    assert scan("WITH d AS (DELETE FROM t RETURNING 1) SELECT 1").kind == "write"
    assert scan("SELECT 1; SELECT 2").kind == "read"
    assert scan("BEGIN; INSERT INTO t VALUES (1); COMMIT").kind == "other"
    upd = scan("UPDATE memory SET a = (SELECT 1) WHERE id = 'x' RETURNING a;")
    assert (upd.single_update(), upd.has_returning()) == ("memory", True)
    assert scan("UPDATE t SET a = 1; SELECT 1").single_update() is None


# ---------------------------------------------------------------- over HTTP
def test_naming_like_the_service(raw, workspace):
    assert raw.rows("SELECT current_schema()") == [[workspace]]
    raw.rows("CREATE TABLE memory (id text, summary text) USING deeplake; SELECT 1")
    probe = (
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'memory' "
        f"AND column_name = 'summary' AND table_schema = '{workspace}' LIMIT 1"
    )
    assert raw.rows(probe) == [[1]]
    assert raw.rows(probe.replace("'summary'", "'summary_embedding'")) == []


def test_add_column_already_exists_is_a_500_with_or_without_if_not_exists(raw, pgraw):
    for client in (raw, pgraw):
        client.rows("CREATE TABLE memory (id text, summary text); SELECT 1")
    for sql in (
        'ALTER TABLE "memory" ADD COLUMN "summary" TEXT',
        'ALTER TABLE "memory" ADD COLUMN IF NOT EXISTS "summary" TEXT NOT NULL DEFAULT \'\'',
    ):
        resp = raw.query(sql)
        assert resp.status_code == 500, resp.text
        body = resp.json()
        assert (body["error"], body["code"], body["sqlstate"]) == (
            COLUMN_EXISTS,
            "QUERY_ERROR",
            "42701",
        )
    # plain PostgreSQL: 400 with the SQLSTATE as code, and IF NOT EXISTS works
    plain = pgraw.query('ALTER TABLE "memory" ADD COLUMN "summary" TEXT')
    assert plain.status_code == 400 and plain.json()["code"] == "42701"
    assert 'column "summary" of relation "memory" already exists' in plain.json()["error"]
    assert pgraw.query('ALTER TABLE memory ADD COLUMN IF NOT EXISTS "summary" TEXT').ok
    # a new column is added in both
    assert raw.query("ALTER TABLE memory ADD COLUMN IF NOT EXISTS agent TEXT").ok


def test_create_index_already_exists_is_a_500(raw, pgraw):
    for client in (raw, pgraw):
        client.rows(
            "CREATE TABLE memory (path text); CREATE INDEX idx_p ON memory (path); SELECT 1"
        )
    for sql in (
        "CREATE INDEX idx_p ON memory (path)",
        "CREATE INDEX IF NOT EXISTS idx_p ON memory (path)",
    ):
        resp = raw.query(sql)
        assert resp.status_code == 500, resp.text
        assert resp.json()["error"] == (
            "Database error: Failed to create index 'idx_p': Index 'idx_p' already exists"
        )
        assert resp.json()["code"] == "QUERY_ERROR"
    assert pgraw.query("CREATE INDEX idx_p ON memory (path)").status_code == 400
    assert pgraw.query("CREATE INDEX IF NOT EXISTS idx_p ON memory (path)").status_code == 200
    # "already exists" of CREATE TABLE stays an ordinary 400 SQL error
    dup = raw.query("CREATE TABLE memory (a int)")
    assert dup.status_code == 400 and dup.json()["sqlstate"] == "42P07"


def test_sql_error_bodies(raw, pgraw):
    body = raw.query("SELECT * FROM nope").json()
    assert (body["code"], body["sqlstate"]) == ("QUERY_ERROR", "42P01")
    assert body["error"] == 'relation "nope" does not exist'
    plain = pgraw.query("SELECT * FROM nope").json()
    assert (plain["code"], plain["sqlstate"]) == ("42P01", "42P01")


def test_like_has_no_default_escape(raw, pgraw):
    values = ["a_b", "a\\_b", "a\\zb", "a%b"]
    for client in (raw, pgraw):
        client.rows("CREATE TABLE p (v text); SELECT 1")
        for v in values:
            client.rows("INSERT INTO p VALUES ($1) RETURNING 1", v)

    def match(client, where, *params):
        return sorted(r[0] for r in client.rows(f"SELECT v FROM p WHERE {where}", *params))

    # the service: the backslash is an ordinary character
    assert match(raw, "v LIKE 'a\\_b'") == ["a\\_b", "a\\zb"]
    assert match(raw, "v LIKE $1", "a\\_b") == ["a\\_b", "a\\zb"]
    assert match(raw, "v ILIKE 'A\\%'") == ["a\\_b", "a\\zb"]
    assert match(raw, "v NOT LIKE 'a\\_b'") == ["a%b", "a_b"]
    # an explicit ESCAPE works as everywhere
    assert match(raw, "v LIKE 'a\\_b' ESCAPE '\\'") == ["a_b"]
    assert match(raw, "v LIKE $1 ESCAPE '\\'", "a\\%b") == ["a%b"]
    # plain PostgreSQL: backslash escapes by default
    assert match(pgraw, "v LIKE 'a\\_b'") == ["a_b"]
    assert match(pgraw, "v NOT LIKE 'a\\_b'") == ["a%b", "a\\_b", "a\\zb"]


def test_float4_arrays_and_cosine_scores(raw, pgraw):
    raw.rows(
        "CREATE TABLE memory (id text, summary_embedding FLOAT4[]); "
        "INSERT INTO memory VALUES ('x', '{1,0,0}'), ('y', '{0.6,0.8,0}'), ('e', '{}'), "
        "('n', NULL); SELECT 1"
    )
    rows = raw.rows(
        "SELECT id, summary_embedding <#> ARRAY[1,0,0]::float4[] AS score FROM memory ORDER BY id"
    )
    scores = dict(rows)
    assert scores["x"] == pytest.approx(1.0) and scores["y"] == pytest.approx(0.6)
    assert scores["e"] is None and scores["n"] is None  # empty and NULL arrays: NULL
    assert raw.rows("SELECT summary_embedding FROM memory WHERE id = 'y'") == [
        [[pytest.approx(0.6), pytest.approx(0.8), 0.0]]
    ]
    mixed = raw.rows(
        "SELECT ARRAY[1,0]::float4[] <#> ARRAY[0.5,0.5], ARRAY[1,1]::float4[] <#> ARRAY[2,2], "
        "ARRAY[]::float4[] <#> ARRAY[1,2]::float4[]"
    )
    assert mixed[0][0] == pytest.approx(0.5**0.5) and mixed[0][1] == pytest.approx(1.0)
    assert mixed[0][2] is None
    assert pgraw.rows("SELECT ARRAY[]::float4[] <#> ARRAY[1,2]::float4[]") == [[0.0]]
