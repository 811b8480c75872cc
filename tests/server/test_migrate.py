"""Data dirs of the old layout (one database, schemas ``ws_<org>_<ws>_<hash>``): migrated when
the ids can be read back, refused with what to do otherwise, nothing lost either way."""

from __future__ import annotations

import psycopg
import pytest
import requests
from waiting import poll

from deeplake_sdk.server import ServerStartError, local, shims
from deeplake_sdk.server.migrate import attribute
from deeplake_sdk.server.postgres import EmbeddedPostgres
from deeplake_sdk.server.provision import quote_ident, workspace_role

ROWS = [("/a.md", "héllo 😀", "\\x00ff"), ("/b.md", "back\\slash", "\\x")]


def make_old_workspace(dsn, org, workspace):
    """What an older server left: a role and a same-named schema in the admin database."""
    role = quote_ident(workspace_role(org, workspace))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(shims.bootstrap_sql())
        conn.execute(f"CREATE ROLE {role} LOGIN NOINHERIT")
        conn.execute(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
        conn.execute(f"ALTER ROLE {role} SET search_path = {role}, deeplake")
        conn.execute(
            f"CREATE TABLE {role}.memory (path text NOT NULL DEFAULT '', summary text, "
            "content bytea) USING deeplake"
        )
        conn.execute(f"ALTER TABLE {role}.memory OWNER TO {role}")
        conn.execute(
            shims.rewrite(
                f"CREATE INDEX idx_s ON {role}.memory USING deeplake_index (summary) "
                "WITH (index_type = 'bm25')"
            )
        )
        for path, summary, content in ROWS:
            conn.execute(
                f"INSERT INTO {role}.memory VALUES (%s, %s, %s::bytea)", [path, summary, content]
            )


def old_schemas(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'ws\\_%' ORDER BY 1"
            )
        ]


def query(srv, workspace, sql, headers=None):
    """The rows of one statement; a 503 (a database busy or still starting under load: the
    service's "try again") is sent again, as a client would."""
    answers = []

    def answered():
        answers.append(
            requests.post(
                f"{srv.url}/workspaces/{requests.utils.quote(workspace, safe='')}/tables/query",
                json={"query": sql},
                headers=headers or srv.headers,
                timeout=60,
            )
        )
        return answers[-1].status_code != 503

    poll(answered, "an answer other than 503", interval=0.5)
    assert answers[-1].status_code == 200, answers[-1].text
    return answers[-1].json()["rows"]


def test_attribute_reads_ids_back_from_old_names():
    for org, ws in [("local", "default"), ("acme", "my-team"), ("a_b", "c_d"), ("o", "w_1-x")]:
        assert attribute(workspace_role(org, ws)) == (org, ws)
    # truncated or case-folded ids need a hint: a known org helps the org part only
    long_org = "an-organisation-with-a-long-name"
    assert attribute(workspace_role(long_org, "w")) is None
    assert attribute(workspace_role(long_org, "w"), [long_org]) == (long_org, "w")
    assert attribute(workspace_role("local", "My Workspace")) is None
    assert attribute("ws_nothex_zzzz") is None


@pytest.fixture
def old_data_dir(tmp_path):
    data = tmp_path / "old"
    with EmbeddedPostgres(data, durable=False) as pg:
        make_old_workspace(pg.dsn, "local", "default")
        make_old_workspace(pg.dsn, "acme", "team-1")
    return data


def test_old_data_dir_is_migrated(old_data_dir):
    with local(data=old_data_dir, durable=False, extra_tokens={"tok-acme": "acme"}) as srv:
        assert query(srv, "default", "SELECT current_schema()") == [["default"]]
        rows = query(srv, "default", "SELECT path, summary, content FROM memory ORDER BY path")
        assert rows == [list(r) for r in ROWS]
        # indexes and their pg_deeplake type came along
        assert query(srv, "default", "SELECT indexname, index_type FROM deeplake.indexes") == [
            ["idx_s", "bm25"]
        ]
        # a workspace of another org went to that org's database
        acme = {"Authorization": "Bearer tok-acme"}
        sql = "SELECT current_schema(), count(*) FROM memory"
        assert query(srv, "team-1", sql, acme) == [["team-1", 2]]
        # and the workspace still works for writes
        query(srv, "default", "INSERT INTO memory (path) VALUES ('/c.md') RETURNING 1")
        log = srv.stderr_text()
        assert "moved old-layout workspace local/default" in log
    # the old schemas are gone from the admin database; a restart has nothing to do
    with local(data=old_data_dir, durable=False) as again:
        assert query(again, "default", "SELECT count(*) FROM memory") == [[3]]
        assert "moved old-layout" not in again.stderr_text()


def test_unreadable_ids_are_refused_then_migrated_when_named(tmp_path):
    data = tmp_path / "old"
    schema = workspace_role("local", "My Workspace")
    with EmbeddedPostgres(data, durable=False) as pg:
        make_old_workspace(pg.dsn, "local", "My Workspace")
        dsn = pg.dsn
        with pytest.raises(ServerStartError) as info, local(dsn=dsn):
            pass
        message = str(info.value)
        assert schema in message and "tables: memory" in message
        assert "Nothing was changed" in message and "--migrate-workspace" in message
        assert old_schemas(dsn) == [schema]  # nothing lost
        wrong = ["--migrate-workspace", f"{schema}=local/my workspace"]
        with (
            pytest.raises(ServerStartError, match="not " + schema),
            local(dsn=dsn, extra_args=wrong),
        ):
            pass
        assert old_schemas(dsn) == [schema]
        named = ["--migrate-workspace", f"{schema}=local/My Workspace"]
        with local(dsn=dsn, extra_args=named) as srv:
            rows = query(srv, "My Workspace", "SELECT current_schema(), count(*) FROM memory")
            assert rows == [["My Workspace", 2]]
        assert old_schemas(dsn) == []
