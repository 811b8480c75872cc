"""Parameter and result type round-trips through the wire format."""

from __future__ import annotations

import json


def _one(raw, sql, *params):
    resp = raw.query(sql, *params)
    assert resp.status_code == 200, resp.text
    return resp.json()["rows"][0]


TRICKY_TEXT = [
    "plain",
    "it's a 'quote'",
    'double "quotes"',
    "back\\slash \\x41 \\\\ \\n",
    "new\nline\r\ncrlf\ttab",
    "unicode é ñ 日本語",
    "astral 😀 𝄞 🀄",
    "",
    "%_ like wildcards",
    "$1 $$ dollar $tag$",
    "-- not a comment /* nor this */",
]


def test_text_params_round_trip(raw):
    for value in TRICKY_TEXT:
        assert _one(raw, "SELECT $1::text, length($1::text)", value) == [value, len(value)]
    # untyped parameters default to text
    assert _one(raw, "SELECT $1", "it's") == ["it's"]


def test_text_stored_and_read_back(raw):
    raw.rows("CREATE TABLE t (i int, s text); SELECT 1")
    for i, value in enumerate(TRICKY_TEXT):
        assert raw.query("INSERT INTO t VALUES ($1, $2)", i, value).status_code == 200
    assert raw.rows("SELECT s FROM t ORDER BY i") == [[v] for v in TRICKY_TEXT]


def test_large_text_round_trip(raw):
    big = ("0123456789abcdef" * 65536) + "é😀"  # ~1 MB
    raw.rows("CREATE TABLE big (s text); SELECT 1")
    assert raw.query("INSERT INTO big VALUES ($1)", big).status_code == 200
    assert raw.rows("SELECT s, length(s) FROM big") == [[big, len(big)]]


def test_bytea_all_byte_values(raw):
    data = bytes(range(256))
    hexed = "\\x" + data.hex()
    raw.rows("CREATE TABLE b (id int, c bytea); SELECT 1")
    assert raw.query("INSERT INTO b VALUES (1, $1::bytea)", hexed).status_code == 200
    literal = "E'\\\\x" + data.hex() + "'"
    assert raw.query(f"INSERT INTO b VALUES (2, {literal})").status_code == 200
    assert raw.query(f"INSERT INTO b VALUES (3, '{hexed}'::bytea)").status_code == 200
    rows = raw.rows("SELECT id, c, length(c) FROM b ORDER BY id")
    assert rows == [[1, hexed, 256], [2, hexed, 256], [3, hexed, 256]]
    assert bytes.fromhex(rows[0][1][2:]) == data
    assert _one(raw, "SELECT ''::bytea") == ["\\x"]


def test_concat_on_text_and_bytea(raw):
    raw.rows("CREATE TABLE f (p text, s text, c bytea); SELECT 1")
    raw.rows("INSERT INTO f VALUES ('/a', 'one', '\\x6f6e65'::bytea) RETURNING p")
    upd = raw.query(
        "UPDATE f SET s = s || $1, c = c || $2::bytea WHERE p = $3", "\ntwo", "\\x0a74776f", "/a"
    )
    assert upd.json()["row_count"] == 1
    assert raw.rows("SELECT s, c FROM f") == [["one\ntwo", "\\x6f6e650a74776f"]]
    assert raw.rows("SELECT c || E'\\\\x00'::bytea FROM f") == [["\\x6f6e650a74776f00"]]


def test_jsonb_nested(raw):
    doc = {"a": [1, 2.5, None, True, "x"], "b": {"c": {"d": 'é😀\n"q"'}}, "n": 2**62}
    assert _one(raw, "SELECT $1::jsonb", json.dumps(doc)) == [doc]
    raw.rows("CREATE TABLE j (m jsonb); SELECT 1")
    raw.rows("INSERT INTO j VALUES ($1::jsonb) RETURNING 1", json.dumps(doc))
    assert raw.rows("SELECT m, m->'b'->'c'->>'d', m::text FROM j")[0][:2] == [
        doc,
        doc["b"]["c"]["d"],
    ]
    assert _one(raw, "SELECT '[1, {\"k\": null}]'::json") == [[1, {"k": None}]]
    assert _one(raw, "SELECT 'null'::jsonb, '\"s\"'::jsonb, '3'::jsonb") == [None, "s", 3]


def test_numbers_booleans_null(raw):
    row = _one(
        raw,
        "SELECT $1::bigint, $2::bigint, $3::int, $4::float8, $5::real, $6::bool, $7::bool, "
        "$8::text, $9::numeric, 12345678901234567890::numeric, 1.25::numeric, 2::smallint",
        2**62,
        -(2**63),
        -7,
        3.141592653589793,
        0.5,
        True,
        False,
        None,
        "1.5",
    )
    assert row == [
        2**62,
        -(2**63),
        -7,
        3.141592653589793,
        0.5,
        True,
        False,
        None,
        1.5,
        12345678901234567890,
        1.25,
        2,
    ]
    assert all(type(v) is int for v in (row[0], row[1], row[2], row[9], row[11]))
    assert _one(raw, "SELECT $1::bigint + 1", 2**62) == [2**62 + 1]
    assert _one(raw, "SELECT 'NaN'::float8, 'Infinity'::numeric") == ["NaN", "Infinity"]


def test_dates_uuid_arrays_and_others(raw):
    row = _one(
        raw,
        "SELECT '2024-05-06 07:08:09.5+00'::timestamptz, '2024-05-06 07:08:09'::timestamp, "
        "'2024-05-06'::date, '1 day 2 hours'::interval, "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, ARRAY[1,2,3], ARRAY['a','b,c'], "
        "ARRAY[0.5, 1.5]::float4[], ARRAY['\\x01'::bytea], '127.0.0.1'::inet",
    )
    assert row[0].startswith("2024-05-06T07:08:09.5")
    assert row[1] == "2024-05-06T07:08:09"
    assert row[2] == "2024-05-06"
    assert row[3] == "1 day 02:00:00"
    assert row[4] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert row[5:9] == [[1, 2, 3], ["a", "b,c"], [0.5, 1.5], ["\\x01"]]
    assert row[9] == "127.0.0.1"


def test_like_ilike_escape_in_and_information_schema(raw):
    raw.rows("CREATE TABLE p (path text); SELECT 1")
    paths = ["/a_b/x.md", "/aXb/y.md", "/A_B/Z.MD", "/100%/w.md"]
    for p in paths:
        raw.rows("INSERT INTO p VALUES ($1) RETURNING 1", p)
    assert raw.rows("SELECT path FROM p WHERE path LIKE '/a\\_b/%' ESCAPE '\\' ORDER BY 1") == [
        ["/a_b/x.md"]
    ]
    assert raw.rows("SELECT path FROM p WHERE path LIKE $1 ESCAPE '\\' ORDER BY 1", "/a\\_b/%") == [
        ["/a_b/x.md"]
    ]
    assert raw.rows("SELECT path FROM p WHERE path ILIKE '/a\\_b/%' ESCAPE '\\' ORDER BY 1") == [
        ["/A_B/Z.MD"],
        ["/a_b/x.md"],
    ]
    assert raw.rows("SELECT path FROM p WHERE path LIKE '/100\\%%' ESCAPE '\\'") == [["/100%/w.md"]]
    assert raw.rows("SELECT count(*) FROM p WHERE path IN ($1, $2, '/nope')", *paths[:2]) == [[2]]
    cols = raw.rows(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'p' AND table_schema = current_schema()"
    )
    assert cols == [["path", "text"]]
