"""pg_deeplake shims: USING deeplake, deeplake_sync_table, deeplake_index, <#>."""

from __future__ import annotations

import pytest

from deeplake_sdk.server.shims import ShimError, mask, rewrite


# ---------------------------------------------------------------- pure units
def test_mask_blanks_literals_identifiers_and_comments():
    sql = "SELECT 'a;b', E'x\\'y', \"q;\"\"r\", $t$ ; $t$ -- c;\n/* d; /* e */ */ 1; $1"
    masked = mask(sql)
    assert len(masked) == len(sql)
    assert masked.count(";") == 1  # only the real statement separator is left
    assert masked.endswith("1; $1")
    assert "SELECT '___'" in masked


def test_rewrite_is_identity_without_deeplake_index():
    sql = "INSERT INTO t VALUES ('CREATE INDEX i ON t USING deeplake_index (c)')"
    assert rewrite(sql) == sql
    assert rewrite("SELECT 1") == "SELECT 1"


def test_rewrite_index_variants():
    out = rewrite(
        'CREATE INDEX IF NOT EXISTS idx_s ON "mem" USING deeplake_index ("summary") '
        "WITH (index_type = 'bm25')"
    )
    assert out.startswith('CREATE INDEX IF NOT EXISTS idx_s ON "mem" USING gin (to_tsvector(')
    assert out.endswith("; COMMENT ON INDEX idx_s IS 'deeplake_index:bm25'")
    out = rewrite("create index on s.t using deeplake_index (path);")
    assert "USING hash (path)" in out
    assert "COMMENT ON INDEX s.\"t_path_exact_text_idx\" IS 'deeplake_index:exact_text';" in out
    out = rewrite("CREATE UNIQUE INDEX u ON t USING deeplake_index (a, b)")
    assert "CREATE UNIQUE INDEX u ON t USING btree (a, b)" in out
    assert "'deeplake_index:exact_text'" in out
    with pytest.raises(ShimError):
        rewrite("CREATE INDEX ON t USING deeplake_index (c) WITH (index_type = 'quantum')")
    with pytest.raises(ShimError):
        rewrite("CREATE INDEX ON t USING deeplake_index (lower(c))")


# ---------------------------------------------------------------- over HTTP
def test_create_table_using_deeplake(raw):
    resp = raw.query("CREATE TABLE IF NOT EXISTS mem (id text, c bytea) USING deeplake")
    assert resp.status_code == 200, resp.text
    assert raw.query("CREATE TABLE IF NOT EXISTS mem (id text) USING deeplake").status_code == 200
    raw.rows("INSERT INTO mem VALUES ('a', '\\x00'::bytea) RETURNING id")
    assert raw.rows("SELECT id, c FROM mem") == [["a", "\\x00"]]
    assert raw.rows(
        "SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
        "WHERE c.oid = 'mem'::regclass"
    ) == [["deeplake"]]


def test_deeplake_sync_table(raw):
    raw.rows("CREATE TABLE memory (a int) USING deeplake; SELECT 1")
    assert raw.rows("SELECT deeplake_sync_table('memory')") == [[True]]
    resp = raw.query("SELECT deeplake_sync_table($1)", "sessions")
    assert resp.status_code == 400
    assert resp.json()["sqlstate"] == "42P01"
    assert 'table "sessions" does not exist' in resp.json()["error"]
    # a table of another workspace does not count
    other = raw.query("SELECT deeplake_sync_table('memory')", workspace=raw.workspace + "_o")
    assert other.status_code == 400


@pytest.mark.parametrize(
    ("clause", "index_type", "method"),
    [
        ("WITH (index_type = 'bm25')", "bm25", "gin"),
        ("WITH (index_type = 'inverted')", "inverted", "gin"),
        ("WITH (index_type = 'exact_text')", "exact_text", "hash"),
        ("", "exact_text", "hash"),
    ],
)
def test_deeplake_index_is_a_real_index_with_recoverable_type(raw, clause, index_type, method):
    raw.rows("CREATE TABLE memory (path text, summary text) USING deeplake; SELECT 1")
    resp = raw.query(
        f'CREATE INDEX IF NOT EXISTS idx_x ON "memory" USING deeplake_index ("summary") {clause}'
    )
    assert resp.status_code == 200, resp.text
    again = raw.query(
        f'CREATE INDEX IF NOT EXISTS idx_x ON "memory" USING deeplake_index ("summary") {clause}'
    )
    # as on the service, IF NOT EXISTS does not help: "already exists" is a 500
    assert again.status_code == 500, again.text
    assert again.json()["error"] == (
        "Database error: Failed to create index 'idx_x': Index 'idx_x' already exists"
    )
    rows = raw.rows(
        "SELECT indexname, indexdef, obj_description(format('%I.%I', schemaname, indexname)"
        "::regclass, 'pg_class') FROM pg_indexes "
        "WHERE schemaname = current_schema() AND tablename = 'memory'"
    )
    assert len(rows) == 1
    name, indexdef, comment = rows[0]
    assert name == "idx_x"
    assert f"USING {method} " in indexdef
    assert comment == f"deeplake_index:{index_type}"
    assert raw.rows(
        "SELECT indexname, index_type FROM deeplake.indexes WHERE tablename = 'memory'"
    ) == [["idx_x", index_type]]
    # the table keeps working with the index, large values included
    big = "word " * 100_000
    assert raw.query("INSERT INTO memory VALUES ($1, $2)", "/p", big).status_code == 200
    assert raw.rows("SELECT count(*) FROM memory WHERE summary = $1", big) == [[1]]


def test_deeplake_index_without_name_and_unknown_type(raw):
    raw.rows("CREATE TABLE memory (path text) USING deeplake; SELECT 1")
    assert raw.query("CREATE INDEX ON memory USING deeplake_index (path)").status_code == 200
    assert raw.rows("SELECT indexname, index_type FROM deeplake.indexes") == [
        ["memory_path_exact_text_idx", "exact_text"]
    ]
    resp = raw.query(
        "CREATE INDEX ON memory USING deeplake_index (path) WITH (index_type = 'nope')"
    )
    assert resp.status_code == 400 and "index_type" in resp.json()["error"]


def test_score_operator_text(raw):
    raw.rows("CREATE TABLE d (p text, s text); SELECT 1")
    docs = {"/a": "the quick brown fox", "/b": "lazy dogs sleep", "/c": "fox fox fox jumps"}
    for p, s in docs.items():
        raw.rows("INSERT INTO d VALUES ($1, $2) RETURNING 1", p, s)
    rows = raw.rows("SELECT p, s <#> 'fox jumps' AS score FROM d ORDER BY score DESC, p")
    assert [r[0] for r in rows] == ["/c", "/a", "/b"]
    assert all(isinstance(r[1], float) for r in rows)
    assert rows[2][1] == 0.0 and rows[0][1] > rows[1][1] > 0
    assert raw.rows("SELECT 'abc' <#> $1", "") == [[0.0]]


def test_score_operator_float4_arrays(raw):
    rows = raw.rows(
        "SELECT ARRAY[1,0]::float4[] <#> ARRAY[1,0]::float4[], "
        "ARRAY[1,0]::float4[] <#> ARRAY[0,1]::float4[], "
        "ARRAY[1,1]::float4[] <#> ARRAY[2,2]::float4[], ARRAY[0.5, 0.5] <#> ARRAY[1, 1]"
    )
    assert rows[0][0] == pytest.approx(1.0)
    assert rows[0][1] == pytest.approx(0.0)
    assert rows[0][2] == pytest.approx(1.0)
    assert rows[0][3] == pytest.approx(1.0)
    raw.rows("CREATE TABLE e (id int, v float4[]); SELECT 1")
    raw.rows("INSERT INTO e VALUES (1, '{1,0,0}'), (2, '{0.7,0.7,0}'), (3, '{0,0,1}') RETURNING 1")
    ranked = raw.rows("SELECT id FROM e ORDER BY v <#> '{1,0.1,0}'::float4[] DESC")
    assert ranked == [[1], [2], [3]]
    bad = raw.query("SELECT ARRAY[1,2]::float4[] <#> ARRAY[1,2,3]::float4[]")
    assert bad.status_code == 400 and "dimension" in bad.json()["error"]
