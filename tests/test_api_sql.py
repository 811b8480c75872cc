"""Property tests: any text and any bytes round-trip through the SQL helpers and the server."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deeplake_sdk import DeeplakeApi
from deeplake_sdk.sql import (
    LIKE_ESCAPE,
    bytea_literal,
    bytea_param,
    like_escape,
    quote_ident,
    quote_literal,
)

TEXT = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40
)
NASTY = st.sampled_from(
    [
        "'",
        "''",
        "\\",
        "\\'",
        "%",
        "_",
        "\\%",
        "$1",
        "E'x'",
        "\n",
        "\r\n",
        "\t",
        '"',
        "😀",
        "é",
        "\u2028",
        "--",
        "/*",
        ";",
    ]
)
TEXTS = st.lists(st.one_of(TEXT, NASTY, st.lists(NASTY).map("".join)), min_size=1, max_size=8)
PROPERTY = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def api(srv, workspace):
    with DeeplakeApi(srv.token, srv.org, workspace, srv.url) as client:
        yield client


@PROPERTY
@given(TEXTS)
def test_text_round_trips_as_literal_and_param(api, texts):
    n = len(texts)
    literals = ", ".join(f"{quote_literal(t)} AS l{i}" for i, t in enumerate(texts))
    params = ", ".join(f"${i + 1}::text AS p{i}" for i in range(n))
    (row,) = api.query(f"SELECT {literals}, {params}", texts)
    assert [row[f"l{i}"] for i in range(n)] == texts
    assert [row[f"p{i}"] for i in range(n)] == texts


@PROPERTY
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=6))
def test_bytes_round_trip_as_literal_and_param(api, blobs):
    n = len(blobs)
    literals = ", ".join(f"{bytea_literal(b)} AS l{i}" for i, b in enumerate(blobs))
    params = ", ".join(f"${i + 1}::bytea AS p{i}" for i in range(n))
    (row,) = api.query(f"SELECT {literals}, {params}", blobs)  # bytes params -> \x.. text
    for i, blob in enumerate(blobs):
        assert row[f"l{i}"] == bytea_param(blob) == row[f"p{i}"]
        assert bytes.fromhex(row[f"p{i}"][2:]) == blob


@PROPERTY
@given(TEXT, TEXT)
def test_like_escape_matches_literally_on_the_server(api, text, other):
    pattern = like_escape(text)
    (row,) = api.query(
        f"SELECT $1 LIKE $2 {LIKE_ESCAPE} AS same, $3 LIKE $2 {LIKE_ESCAPE} AS other, "
        f"$4 LIKE $5 {LIKE_ESCAPE} AS prefix, "
        f"$1 LIKE {quote_literal(pattern)} {LIKE_ESCAPE} AS lit",
        [text, pattern, other, text + other, pattern + "%"],
    )
    assert row == {"same": True, "other": other == text, "prefix": True, "lit": True}


@PROPERTY
@given(
    st.text(
        st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=20,
    )
)
def test_quoted_identifiers_round_trip(api, name):
    if len(name.encode()) > 63:
        with pytest.raises(ValueError):
            quote_ident(name)
        return
    result = api.execute(f"SELECT 1 AS {quote_ident(name)}")
    assert result.columns == [name]


def test_text_written_to_a_table_reads_back(api):
    api.ensure_table()
    texts = ["it's", "back\\slash", "50% of a_b", "multi\nline\r\n", "😀 ünïcødé", ""]
    ids = [
        api.insert_row("memory", {"path": f"/f{i}", "summary": t, "content": t.encode()})
        for i, t in enumerate(texts)
    ]
    rows = {r["id"]: r for r in api.query("SELECT id, summary, content FROM memory")}
    for row_id, text in zip(ids, texts, strict=True):
        assert rows[row_id]["summary"] == text
        assert bytes.fromhex(rows[row_id]["content"][2:]).decode() == text
    # LIKE with ESCAPE finds the path with a literal underscore and percent only
    hits = api.query(
        f"SELECT summary FROM memory WHERE summary LIKE $1 {LIKE_ESCAPE}",
        [like_escape("50% of a_") + "%"],
    )
    assert hits == [{"summary": "50% of a_b"}]
