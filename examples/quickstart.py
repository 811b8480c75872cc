"""Quickstart: SQL queries, parallel queries and the memory filesystem in one short script.

Run it with no arguments. With credentials configured (DEEPLAKE_TOKEN and DEEPLAKE_ORG_ID, or
~/.deeplake/credentials.json) it uses that service; otherwise it starts a local server on an
embedded PostgreSQL and stops it at the end. It only touches the tables it creates
(``example_*``), which it drops first so every run starts clean.
"""

from deeplake_sdk import DeeplakeFs
from deeplake_sdk.server import connect

TABLE = "example_quickstart"

with connect() as api:
    print(f"connected: {api}")

    # Plain SQL: one call, rows back as dicts. Values go in $1, $2, ... placeholders.
    api.drop_table(TABLE, missing_ok=True)
    api.create_table(TABLE, {"id": "TEXT", "city": "TEXT", "population": "BIGINT"})
    api.insert_rows(
        TABLE,
        [
            {"city": "Lisbon", "population": 545_000},
            {"city": "Oslo", "population": 709_000},
            {"city": "Tallinn", "population": 454_000},
        ],
    )
    rows = api.query(
        f"SELECT city, population FROM {TABLE} WHERE population > $1 ORDER BY city", [500_000]
    )
    print("\ncities over 500k:")
    for row in rows:
        print(f"  {row['city']:<8} {row['population']:>9,}")

    # Many statements at once: they run in parallel, at most 5 in flight per endpoint.
    counts = api.query_many(
        [
            (f"SELECT COUNT(*) AS n FROM {TABLE} WHERE city LIKE $1", [f"{letter}%"])
            for letter in "LOT"
        ]
    )
    print(
        "\ncities by first letter:",
        {letter: result[0]["n"] for letter, result in zip("LOT", counts, strict=True)},
    )

    # The memory filesystem: files stored as rows, written in batches, read back as files.
    # Its table is the client's (DEEPLAKE_TABLE, else ``memory``) unless named, as here.
    api.drop_table("example_memory", missing_ok=True)
    with DeeplakeFs(api, "example_memory", sessions_table=None, cache=False) as fs:
        fs.write_text("/notes/today.md", "# Today\n")
        fs.append_text("/notes/today.md", "- tried the quickstart\n")
        fs.flush()
        print("\n/notes/today.md:")
        print("  " + fs.read_text("/notes/today.md").replace("\n", "\n  ").rstrip())
        print("files:", fs.ls("/notes"))
    api.drop_table(TABLE)
    print("\ndone")
