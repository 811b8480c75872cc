"""Table names come from the configuration everywhere: client, filesystem, session log, CLI."""

from __future__ import annotations

import os
import subprocess
import sys

from deeplake_sdk import DeeplakeApi, DeeplakeFs, SessionLog
from deeplake_sdk.sessions import user_message


def tables_of(raw) -> set[str]:
    resp = raw.get(f"/workspaces/{raw.workspace}/tables")
    assert resp.status_code == 200, resp.text
    return {t["table_name"] for t in resp.json()["tables"]}


def test_env_table_names_reach_the_filesystem_and_the_session_log(
    srv, workspace, raw, monkeypatch, tmp_path
):
    monkeypatch.setenv("DEEPLAKE_TABLE", "mem_env")
    monkeypatch.setenv("DEEPLAKE_SESSIONS_TABLE", "ses_env")
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    assert (api.credentials.table, api.credentials.sessions_table) == ("mem_env", "ses_env")
    with DeeplakeFs(api, cache=False) as fs:
        assert (fs.table, fs.sessions_table) == ("mem_env", "ses_env")
        fs.write_text("/a.md", "from the env table\n")
        fs.flush()
    log = SessionLog(api, "s-1", user="ada")
    assert log.table == "ses_env"
    log.log(user_message("hello"))
    log.flush()
    assert tables_of(raw) == {"mem_env", "ses_env"}  # no memory or sessions table
    assert raw.rows("SELECT path FROM mem_env") == [["/a.md"]]
    assert raw.rows("SELECT path FROM ses_env") == [[log.path]]
    with DeeplakeFs(api, cache=False) as fs:  # a new filesystem sees both
        assert fs.read_text("/a.md") == "from the env table\n"
        assert '"hello"' in fs.read_text(log.path)


def test_client_table_names_override_the_env(srv, workspace, raw, monkeypatch):
    monkeypatch.setenv("DEEPLAKE_TABLE", "mem_env")
    monkeypatch.setenv("DEEPLAKE_SESSIONS_TABLE", "ses_env")
    api = DeeplakeApi(
        srv.token, srv.org, workspace, srv.url, table="mem_arg", sessions_table="ses_arg"
    )
    layout = api.ensure_table()
    assert layout.name == "mem_arg" and api.ensure_sessions_table().name == "ses_arg"
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/b.md", "x")
    assert tables_of(raw) == {"mem_arg", "ses_arg"}
    assert raw.rows("SELECT path FROM mem_arg") == [["/b.md"]]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deeplake_sdk.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_uses_the_env_table_and_the_option_over_it(srv, workspace, raw, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPLAKE_")}
    env.update(
        DEEPLAKE_CREDENTIALS=str(tmp_path / "none.json"),
        DEEPLAKE_CACHE_DIR=str(tmp_path / "cache"),
        DEEPLAKE_JOURNAL_DIR=str(tmp_path / "journal"),
        DEEPLAKE_API_URL=srv.url,
        DEEPLAKE_TOKEN=srv.token,
        DEEPLAKE_ORG_ID=srv.org,
        DEEPLAKE_WORKSPACE_ID=workspace,
        DEEPLAKE_TABLE="mem_cli",
        DEEPLAKE_SESSIONS_TABLE="ses_cli",
    )
    proc = cli(env, "write", "/c.md", "by env")
    assert proc.returncode == 0, proc.stderr
    proc = cli(env, "write", "--table", "mem_opt", "/c.md", "by option")
    assert proc.returncode == 0, proc.stderr
    assert raw.rows("SELECT summary FROM mem_cli") == [["by env\n"]]
    assert raw.rows("SELECT summary FROM mem_opt") == [["by option\n"]]
    assert "mem_cli" in tables_of(raw) and "memory" not in tables_of(raw)
    proc = cli(env, "cat", "/c.md")
    assert proc.returncode == 0 and proc.stdout == "by env\n", proc.stderr
