"""Pure tests of the SQL helpers (the round trips through the server are in test_api_sql.py)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deeplake_sdk import statements
from deeplake_sdk.sql import (
    bytea_literal,
    bytea_param,
    check_params,
    chunks,
    like_escape,
    quote_ident,
    quote_literal,
    statement_head,
    statement_kind,
    validate_identifier,
)

TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))


def decode_literal(lit: str) -> str:
    """Decode a literal the way PostgreSQL does (standard_conforming_strings on)."""
    if lit.startswith("E'"):
        body = lit[2:-1]
        out, i = [], 0
        while i < len(body):
            ch = body[i]
            if ch == "\\":
                assert body[i + 1] in "\\'", "only \\\\ and \\' escapes are emitted"
                out.append(body[i + 1])
                i += 2
            elif ch == "'":
                assert body[i + 1] == "'"
                out.append("'")
                i += 2
            else:
                out.append(ch)
                i += 1
        return "".join(out)
    assert lit[0] == lit[-1] == "'"
    body = lit[1:-1]
    assert "'" not in body.replace("''", "")
    return body.replace("''", "'")


@given(TEXT)
def test_quote_literal_round_trips(text):
    lit = quote_literal(text)
    assert decode_literal(lit) == text
    assert lit.startswith("E'") == ("\\" in text)


def test_quote_literal_examples():
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal("a\\b") == "E'a\\\\b'"
    assert quote_literal("") == "''"
    with pytest.raises(ValueError, match="NUL"):
        quote_literal("a\x00b")
    with pytest.raises(TypeError):
        quote_literal(b"x")


def like_to_regex(pattern: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


@given(TEXT, TEXT)
def test_like_escape_matches_literally(text, other):
    rx = like_to_regex(like_escape(text))
    assert rx.fullmatch(text)
    assert bool(rx.fullmatch(other)) == (other == text)
    assert like_to_regex(like_escape(text) + "%").fullmatch(text + other)


def test_like_escape_examples():
    assert like_escape("a_b%c\\") == "a\\_b\\%c\\\\"


def test_identifiers():
    assert validate_identifier("memory_2") == "memory_2"
    assert validate_identifier("_x" + "a" * 61)
    for bad in ("", "2x", "a b", 'a"b', "a.b", "é", "a" * 64, "x;drop", None):
        with pytest.raises(ValueError):
            validate_identifier(bad)
    assert quote_ident('we"ird') == '"we""ird"'
    with pytest.raises(ValueError):
        quote_ident("")
    with pytest.raises(ValueError):
        quote_ident("é" * 40)


@given(st.binary())
def test_bytea_forms(data):
    assert bytea_param(data) == "\\x" + data.hex()
    assert bytes.fromhex(bytea_param(data)[2:]) == data
    lit = bytea_literal(bytearray(data))
    assert lit == "E'\\\\x" + data.hex() + "'::bytea"


def test_chunks():
    assert list(chunks(range(5), size=2)) == [[0, 1], [2, 3], [4]]
    assert list(chunks([], size=2)) == []
    assert [len(c) for c in chunks(range(120))] == [50, 50, 20]  # the default: CHUNK
    with pytest.raises(ValueError):
        list(chunks([1], size=0))


def test_check_params():
    assert check_params(None) == []
    assert check_params(("a", 1, 2.5, True, None, b"\x00\xff")) == [
        "a",
        1,
        2.5,
        True,
        None,
        "\\x00ff",
    ]
    with pytest.raises(TypeError):
        check_params("abc")
    with pytest.raises(TypeError, match=r"\$2"):
        check_params([1, {"a": 1}])
    with pytest.raises(ValueError):
        check_params([float("nan")])
    with pytest.raises(ValueError, match="NUL"):
        check_params(["a\x00"])


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", "read"),
        ("  select * from t where a = 'insert into x'", "read"),
        ("SELECT deeplake_sync_table('memory')", "read"),
        ("WITH a AS (SELECT 1) SELECT * FROM a", "read"),
        ("WITH a AS (DELETE FROM t RETURNING *) SELECT * FROM a", "write"),
        ("/* hi */ -- there\nSELECT 1;", "read"),
        ("SELECT $tag$ update $tag$", "read"),
        ('SELECT "update" FROM t', "read"),
        ("SELECT last_update_date FROM t", "read"),
        ("SELECT nextval('s')", "write"),
        ("SELECT a INTO b FROM t", "write"),
        ("SELECT * FROM t FOR UPDATE", "write"),
        ("SHOW search_path", "read"),
        ("EXPLAIN SELECT 1", "read"),
        ("EXPLAIN ANALYZE UPDATE t SET a = 1", "write"),
        ("VALUES (1)", "read"),
        ("INSERT INTO t VALUES (1)", "write"),
        ("update t set a = 1", "write"),
        ("DELETE FROM t", "write"),
        ("TRUNCATE t", "write"),
        ("CREATE TABLE IF NOT EXISTS t (a int) USING deeplake", "ddl"),
        ("ALTER TABLE t ADD COLUMN b text", "ddl"),
        ("DROP TABLE t", "ddl"),
        ("SELECT 1; DELETE FROM t", "write"),
        ("", "write"),
        ("frobnicate", "write"),
    ],
)
def test_statement_kind(sql, kind):
    assert statement_kind(sql) == kind


def test_statement_head_skips_comments_and_case():
    assert statement_head("-- note\n  drop table t") == "DROP"
    assert statement_head("/* x */ Create TABLE t (a int)") == "CREATE"
    assert statement_head("  ") == ""


def test_statement_shapes():
    sql = statements.create_table("memory", statements.MEMORY_COLUMNS)
    assert sql.startswith('CREATE TABLE IF NOT EXISTS "memory" (')
    assert sql.endswith(") USING deeplake")
    assert '"content" BYTEA NOT NULL DEFAULT' in sql
    assert "\"mime_type\" TEXT NOT NULL DEFAULT 'text/plain'" in sql
    assert '"size_bytes" BIGINT NOT NULL DEFAULT 0' in sql
    assert '"summary_embedding" FLOAT4[],' in sql
    s = statements.create_table("sessions", statements.SESSIONS_COLUMNS)
    assert '"message" JSONB,' in s and "'application/json'" in s
    assert '"message_embedding" FLOAT4[],' in s
    plugin = [
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
    ]
    assert [c.name for c in statements.MEMORY_COLUMNS] == [*plugin, "content"]
    assert [c.name for c in statements.SESSIONS_COLUMNS] == [
        "id",
        "path",
        "filename",
        "message",
        "message_embedding",
        *plugin[5:],
    ]
    probe, params = statements.columns_probe(["memory", "sessions"])
    assert "information_schema.columns" in probe and "IN ($1, $2)" in probe
    assert params == ["memory", "sessions"]
    alter = statements.add_column("memory", statements.MEMORY_COLUMNS[3])
    assert alter == 'ALTER TABLE "memory" ADD COLUMN "summary" TEXT NOT NULL DEFAULT \'\''
    idx = statements.create_index("memory", "summary", "bm25")
    assert idx == (
        'CREATE INDEX IF NOT EXISTS "idx_memory_summary" ON "memory" USING '
        "deeplake_index (\"summary\") WITH (index_type = 'bm25')"
    )
    assert statements.sync_table("memory") == "SELECT deeplake_sync_table('memory')"
    ins = statements.guarded_insert("t", ["id", "data"], casts={"data": "bytea"})
    assert ins == (
        'INSERT INTO "t" ("id", "data") SELECT $1, $2::bytea WHERE NOT EXISTS '
        '(SELECT 1 FROM "t" WHERE "id" = $1)'
    )
    many = statements.guarded_insert_many("t", ["id", "n"], 2, casts={"n": "bigint"})
    assert '(VALUES ($1, $2::bigint), ($3, $4::bigint)) AS v("id", "n")' in many
    with pytest.raises(ValueError):
        statements.create_table("bad name", statements.MEMORY_COLUMNS)
    assert len(statements.index_name("t" * 40, "c" * 40)) <= 63
