"""Auth (401/403) and workspace isolation enforced by PostgreSQL roles, attacked over HTTP."""

from __future__ import annotations

import os
import uuid

import pytest
import requests

SECRET = "top-secret-" + uuid.uuid4().hex


def _q(srv, ws, sql, token=None, org=None):
    headers = {"Authorization": f"Bearer {token or srv.token}"}
    if org is not False:
        headers["X-Activeloop-Org-Id"] = org or srv.org
    return requests.post(
        f"{srv.url}/workspaces/{ws}/tables/query", json={"query": sql}, headers=headers, timeout=60
    )


def test_missing_or_unknown_token_is_401(srv, workspace):
    url = f"{srv.url}/workspaces/{workspace}/tables"
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ):
        resp = requests.get(url, headers=headers, timeout=30)
        assert resp.status_code == 401, headers
        body = resp.json()
        assert body["code"] == "unauthorized" and body["request_id"]
    assert srv.stats()["status_counts"] == {"401": 4}
    assert srv.stats()["queries_executed"] == 0


def test_org_mismatch_is_403_and_org_header_optional(srv, workspace):
    resp = _q(srv, workspace, "SELECT 1", org="someone-else")
    assert resp.status_code == 403 and resp.json()["code"] == "forbidden"
    assert _q(srv, workspace, "SELECT 1", org=False).status_code == 200
    assert _q(srv, workspace, "SELECT 1", token="tok-acme", org="acme").status_code == 200
    assert _q(srv, workspace, "SELECT 1", token="tok-acme", org=srv.org).status_code == 403


def test_same_workspace_name_in_two_orgs_is_two_workspaces(srv, workspace):
    assert _q(srv, workspace, "CREATE TABLE t (a text)", token="tok-acme", org="acme").ok
    assert _q(srv, workspace, "INSERT INTO t VALUES ('acme')", token="tok-acme", org="acme").ok
    resp = _q(srv, workspace, "SELECT * FROM t", token="tok-beta", org="beta")
    assert resp.status_code == 400 and resp.json()["sqlstate"] == "42P01"


def test_two_orgs_with_one_workspace_id_see_only_their_rows(srv, workspace):
    orgs = {"acme": "tok-acme", "beta": "tok-beta"}
    for org, token in orgs.items():
        made = _q(
            srv,
            workspace,
            f"CREATE TABLE t (a text); INSERT INTO t VALUES ('{org}')",
            token=token,
            org=org,
        )
        assert made.status_code == 200, made.text
    seen = {}
    for org, token in orgs.items():
        resp = _q(
            srv,
            workspace,
            "SELECT current_schema(), current_database(), a FROM t",
            token=token,
            org=org,
        )
        assert resp.status_code == 200, resp.text
        seen[org] = resp.json()["rows"]
    # the same schema name, in two databases; each org sees its own row only
    assert [rows[0][0] for rows in seen.values()] == [workspace, workspace]
    assert seen["acme"][0][1] != seen["beta"][0][1]
    assert [r[2] for r in seen["acme"]] == ["acme"] and [r[2] for r in seen["beta"]] == ["beta"]


def test_two_workspaces_of_one_org_see_only_their_rows(srv, workspace):
    other = workspace + "_b"
    for ws in (workspace, other):
        assert _q(srv, ws, f"CREATE TABLE t (a text); INSERT INTO t VALUES ('{ws}')").ok
    assert _q(srv, workspace, "SELECT a FROM t").json()["rows"] == [[workspace]]
    assert _q(srv, other, "SELECT a FROM t").json()["rows"] == [[other]]
    stolen = _q(srv, workspace, f'SELECT a FROM "{other}".t')
    assert stolen.status_code == 400 and stolen.json()["sqlstate"] == "42501"
    assert "permission denied" in stolen.json()["error"]


@pytest.fixture
def victim(srv):
    """Workspace B with a secret row, its schema name, and a large object."""
    ws = f"victim_{uuid.uuid4().hex[:8]}"
    setup = _q(
        srv,
        ws,
        f"CREATE TABLE t (s text); INSERT INTO t VALUES ('{SECRET}'); "
        "SELECT current_schema(), current_user",
    )
    assert setup.status_code == 200, setup.text
    schema, role = setup.json()["rows"][0]
    lo = _q(srv, ws, f"SELECT lo_from_bytea(0, '{SECRET}'::bytea)").json()["rows"][0][0]
    return {"ws": ws, "schema": schema, "role": role, "lo": lo}


def _attacks(b):
    s, r = b["schema"], b["role"]
    return [
        f'SELECT * FROM "{s}"."t"',
        f"SELECT * FROM {s}.t",
        f'SET search_path = "{s}"; SELECT * FROM t',
        f"SELECT set_config('search_path', '{s}', false); SELECT * FROM t",
        f'SET ROLE "{r}"; SELECT * FROM "{s}".t',
        f'RESET ROLE; SELECT * FROM "{s}".t',
        "SET ROLE postgres",
        "SELECT set_config('role', 'postgres', false)",
        "SET SESSION AUTHORIZATION postgres",
        f'SET SESSION AUTHORIZATION "{r}"',
        "DO $$ BEGIN EXECUTE 'SET ROLE postgres'; END $$",
        "CREATE ROLE evil LOGIN SUPERUSER",
        "CREATE ROLE evil2",
        f'ALTER ROLE "{r}" SET search_path = public',
        f"ALTER ROLE \"{r}\" PASSWORD 'x'",
        f'DROP ROLE "{r}"',
        f'GRANT "{r}" TO CURRENT_USER',
        f'DROP SCHEMA "{s}" CASCADE',
        f'DROP TABLE "{s}".t',
        f'ALTER SCHEMA "{s}" RENAME TO stolen',
        f'ALTER TABLE "{s}".t OWNER TO CURRENT_USER',
        f'REASSIGN OWNED BY "{r}" TO CURRENT_USER',
        f"INSERT INTO \"{s}\".t VALUES ('pwned')",
        f'COPY "{s}".t TO STDOUT',
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT pg_ls_dir('.')",
        "COPY (SELECT 1) TO PROGRAM 'touch /tmp/dl_pwned'",
        "CREATE TABLE x (a text); COPY x FROM '/etc/passwd'",
        "SELECT lo_import('/etc/passwd')",
        f"SELECT lo_get({b['lo']})",
        f"SELECT lo_unlink({b['lo']})",
        "CREATE TEMP TABLE tmp (a int)",
        "CREATE EXTENSION IF NOT EXISTS vector",
        "CREATE SCHEMA other",
        "CREATE TABLE deeplake.planted (a int)",
        "CREATE OR REPLACE FUNCTION deeplake.deeplake_sync_table(t text) RETURNS boolean "
        "LANGUAGE sql AS 'SELECT false'",
        "DROP FUNCTION deeplake.text_score(text, text)",
        "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "ALTER SYSTEM SET max_connections = 5",
        "CREATE DATABASE evil",
        "ALTER DATABASE postgres OWNER TO CURRENT_USER",
        "SELECT pg_reload_conf()",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE usename = '{r}' OR usename = 'postgres'",
        f'SELECT * FROM "{s}".t FOR UPDATE',
        "SELECT * FROM deeplake_private.secret",
    ]


def test_workspace_cannot_reach_another_workspace(srv, workspace, victim):
    attacker = workspace
    for sql in _attacks(victim):
        resp = _q(srv, attacker, sql)
        assert SECRET not in resp.text, sql
        assert resp.status_code == 400, (sql, resp.text)
        # insufficient privilege, or the object (or schema) is simply not there for A
        assert resp.json()["sqlstate"] in ("42501", "42P01", "3F000"), (sql, resp.text)
    assert not os.path.exists("/tmp/dl_pwned")
    # B is intact and still works
    b = _q(srv, victim["ws"], f"SELECT s, lo_get({victim['lo']}) FROM t")
    assert b.status_code == 200, b.text
    assert b.json()["rows"] == [[SECRET, "\\x" + SECRET.encode().hex()]]
    # the server still works for everybody
    assert srv.stats()["requests"] > 0
    assert _q(srv, attacker, "SELECT 1").json()["rows"] == [[1]]


def test_security_definer_function_runs_with_attacker_rights(srv, workspace, victim):
    s = victim["schema"]
    created = _q(
        srv,
        workspace,
        f"CREATE FUNCTION steal() RETURNS SETOF text SECURITY DEFINER LANGUAGE sql "
        f"AS 'SELECT s FROM \"{s}\".t'",
    )
    if created.status_code == 200:
        resp = _q(srv, workspace, "SELECT * FROM steal()")
        assert resp.status_code == 400 and resp.json()["sqlstate"] == "42501"
    else:
        assert created.status_code == 400


def test_altering_own_role_settings_does_not_open_other_workspaces(srv, workspace, victim):
    s = victim["schema"]
    resp = _q(srv, workspace, f'ALTER ROLE CURRENT_USER SET search_path = "{s}", deeplake')
    # allowed or not, later requests (new connections included) still cannot read B
    assert resp.status_code in (200, 400)
    for _ in range(3):
        r = _q(srv, workspace, "SELECT * FROM t")
        assert r.status_code == 400 and SECRET not in r.text
        r = _q(srv, workspace, "SELECT current_schemas(false)")
        assert s not in r.text


def test_pg_stat_activity_does_not_leak_other_queries(srv, workspace, victim):
    resp = _q(srv, workspace, "SELECT coalesce(query, '') FROM pg_stat_activity")
    assert resp.status_code == 400 and resp.json()["sqlstate"] == "42501"  # not even names
    assert SECRET not in resp.text


def test_catalog_shows_names_but_never_data(srv, workspace, victim):
    resp = _q(
        srv,
        workspace,
        "SELECT table_schema, table_name FROM information_schema.tables "
        f"WHERE table_schema = '{victim['schema']}'",
    )
    assert resp.status_code == 200 and SECRET not in resp.text
    stats = _q(srv, workspace, f"SELECT * FROM pg_stats WHERE schemaname = '{victim['schema']}'")
    assert stats.status_code == 200 and stats.json()["rows"] == []
