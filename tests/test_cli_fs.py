"""``deeplake-sdk ls|cat|write|append|rm|grep`` through real subprocesses and the local server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from test_offline import unreachable_url

from deeplake_sdk.api_types import QUICK_CONNECT_S
from deeplake_sdk.server import local
from deeplake_sdk.server.blackhole import Blackhole


class Cli:
    """Runs ``python -m deeplake_sdk.cli`` with the environment pointing at the test server."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, input: bytes | str | None = None) -> subprocess.CompletedProcess:
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            [sys.executable, "-m", "deeplake_sdk.cli", *args],
            input=data if data is not None else b"",
            capture_output=True,
            env=self.env,
            timeout=120,
            check=False,
        )
        proc.out = proc.stdout.decode(errors="replace")  # type: ignore[attr-defined]
        proc.err = proc.stderr.decode()  # type: ignore[attr-defined]
        return proc


def base_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPLAKE_")}
    env["DEEPLAKE_CREDENTIALS"] = str(tmp_path / "no-credentials.json")
    env["DEEPLAKE_CACHE_DIR"] = str(tmp_path / "cache")
    return env


@pytest.fixture
def cli(srv, workspace, tmp_path) -> Cli:
    env = base_env(tmp_path)
    env.update(
        DEEPLAKE_API_URL=srv.url,
        DEEPLAKE_TOKEN=srv.token,
        DEEPLAKE_ORG_ID=srv.org,
        DEEPLAKE_WORKSPACE_ID=workspace,
    )
    return Cli(env)


def one_error_line(proc) -> str:
    assert proc.err.count("\n") == 1, proc.err
    assert proc.err.startswith("deeplake-sdk: error: "), proc.err
    return proc.err.strip()


@pytest.fixture
def notes(cli) -> Cli:
    assert cli("write", "/notes/a.md", "Hello world\nsecond line", "-n").returncode == 0
    assert (
        cli("write", "/notes/b.md", input="TODO: call Ada\nfoo_bar baz\nhello again\n").returncode
        == 0
    )
    assert cli("write", "/notes/deep/c.txt", "nothing to see").returncode == 0
    return cli


# ----------------------------------------------------------------------------- write / append / cat
def test_write_append_cat(notes):
    cli = notes
    proc = cli("cat", "/notes/a.md")
    assert proc.returncode == 0 and proc.out == "Hello world\nsecond line"
    assert cli("append", "/notes/a.md", "\nthird").returncode == 0  # TEXT gets a newline
    assert cli("append", "/notes/a.md", input="fourth, from stdin").returncode == 0
    assert cli("append", "/notes/new.md", "created by append").returncode == 0
    proc = cli("cat", "/notes/a.md", "/notes/new.md")
    assert proc.returncode == 0
    assert proc.out == ("Hello world\nsecond line\nthird\nfourth, from stdincreated by append\n")


def test_a_write_while_the_service_fails_is_journaled_and_stored_by_a_later_command(
    cli, srv, api, tmp_path
):
    """No layout remembered and every request reset: ``--wait 0`` journals and returns 0; a
    bounded wait returns 2, the change kept; the next command, once the service answers,
    stores both."""
    cli.env.update(DEEPLAKE_JOURNAL_DIR=str(tmp_path / "j"), DEEPLAKE_STATE_DIR=str(tmp_path))
    srv.set_faults(profile="none", p_reset=1.0)
    try:
        proc = cli("write", "/notes/off.md", "written offline", "--wait", "0")
        assert proc.returncode == 0, proc.err
        proc = cli("write", "/notes/off2.md", "second", "--wait", "0.5")
        assert proc.returncode == 2 and "kept in the local journal" in proc.err, proc.err
    finally:
        srv.set_faults(profile="none")
    proc = cli("ls", "/notes")
    assert proc.returncode == 0 and proc.out.split() == ["off.md", "off2.md"], proc.err
    rows = api.query("SELECT path, summary FROM memory ORDER BY path")
    assert rows == [
        {"path": "/notes/off.md", "summary": "written offline\n"},
        {"path": "/notes/off2.md", "summary": "second\n"},
    ]


def test_a_write_where_nothing_listens_exits_at_once_and_the_next_command_stores_it(
    pg_dsn, workspace, tmp_path
):
    """An hour of ``--wait`` is not spent on a service that cannot be connected to: exit 2 at
    the first drain, the change kept; once the service listens, the next command stores it."""
    url = unreachable_url()
    port = urlsplit(url).port
    env = base_env(tmp_path)
    env.update(
        DEEPLAKE_API_URL=url,
        DEEPLAKE_TOKEN="offline-token",
        DEEPLAKE_ORG_ID="offline-org",
        DEEPLAKE_WORKSPACE_ID=workspace,
        DEEPLAKE_JOURNAL_DIR=str(tmp_path / "j"),
        DEEPLAKE_STATE_DIR=str(tmp_path),
    )
    cli = Cli(env)
    proc = cli("write", "/notes/off.md", "written offline", "--wait", "3600")
    assert proc.returncode == 2, proc.err
    assert "cannot connect" in proc.err and "kept in the local journal" in proc.err
    assert "stay in journal" not in proc.err  # said once, by the command: not again at exit
    with local(dsn=pg_dsn, port=port, token="offline-token", org="offline-org"):
        proc = cli("cat", "/notes/off.md")
    assert proc.returncode == 0 and proc.out == "written offline\n", proc.err


def offline_cli(url: str, tmp_path) -> Cli:
    env = base_env(tmp_path)
    env.update(
        DEEPLAKE_API_URL=url,
        DEEPLAKE_TOKEN="offline-token",
        DEEPLAKE_ORG_ID="offline-org",
        DEEPLAKE_WORKSPACE_ID="ws",
        DEEPLAKE_JOURNAL_DIR=str(tmp_path / "j"),
        DEEPLAKE_STATE_DIR=str(tmp_path),
    )
    return Cli(env)


def test_commands_where_nothing_listens_fail_at_once_without_retrying(tmp_path):
    """Like curl or psql: one connection attempt, status 2, the error on one line."""
    cli = offline_cli(unreachable_url(), tmp_path)
    for args in (("ls", "/"), ("cat", "/a.md"), ("query", "SELECT 1")):
        proc = cli("-v", *args)
        assert proc.returncode == 2, proc.err
        assert "retrying in" not in proc.err
        assert proc.err.splitlines()[-1].startswith("deeplake-sdk: error: cannot connect")


def test_a_read_where_connections_hang_waits_for_one_connection_only(tmp_path):
    """The open's probes hang for the quick connect timeout; the read is then not sent."""
    with Blackhole() as hole:
        proc = offline_cli(hole.url, tmp_path)("-v", "ls", "/")
    assert proc.returncode == 2, proc.err
    assert f"within {QUICK_CONNECT_S:g}s" in proc.err and "retrying in" not in proc.err
    assert proc.err.splitlines()[-1].startswith("deeplake-sdk: error: not sent: connecting to")


def test_wait_must_be_a_number_of_seconds(cli):
    proc = cli("write", "/notes/x.md", "x", "--wait", "-1")
    assert proc.returncode == 2 and "must be a finite number >= 0" in proc.err


def test_write_binary_from_stdin_dash(cli):
    blob = bytes(range(256)) * 4
    assert cli("write", "/bin/blob", "-", input=blob).returncode == 0
    proc = cli("cat", "/bin/blob")
    assert proc.returncode == 0 and proc.stdout == blob
    listing = json.loads(cli("ls", "/bin", "--json").out)
    assert listing[0]["mime_type"] == "application/octet-stream"
    assert listing[0]["size"] == len(blob)


def test_write_options_show_in_index(cli):
    proc = cli(
        "write",
        "/notes/plan.md",
        "ship friday",
        "--description",
        "the release plan",
        "--mime-type",
        "text/x-plan",
    )
    assert proc.returncode == 0, proc.err
    index = cli("cat", "/index.md").out
    assert "[/notes/plan.md](/notes/plan.md) (12 bytes" in index
    assert index.rstrip().endswith(": the release plan")
    assert json.loads(cli("ls", "/notes", "--json").out)[0]["mime_type"] == "text/x-plan"


def test_cat_missing_file_exits_1_and_prints_the_others(notes):
    proc = notes("cat", "/nope.md", "/notes/a.md")
    assert proc.returncode == 1
    assert proc.out == "Hello world\nsecond line"
    assert one_error_line(proc) == "deeplake-sdk: error: /nope.md: No such file or directory"


def test_cat_directory_is_an_error(notes):
    proc = notes("cat", "/notes")
    assert proc.returncode == 2
    assert one_error_line(proc) == "deeplake-sdk: error: /notes: Is a directory"


def test_session_files_are_read_only(cli, api):
    from deeplake_sdk import SessionLog

    log = SessionLog(api, "s-1", user="ada")
    log.log({"type": "prompt", "text": "hi"})
    log.log({"type": "response", "text": "hello"})
    proc = cli("cat", log.path)
    assert proc.returncode == 0
    assert [json.loads(line)["text"] for line in proc.out.splitlines()] == ["hi", "hello"]
    for args in (("write", log.path, "x"), ("append", log.path, "x"), ("rm", log.path)):
        proc = cli(*args)
        assert proc.returncode == 2
        assert one_error_line(proc) == (
            f"deeplake-sdk: error: {log.path}: session files are read-only"
        )
    assert cli("ls", "-l", "/sessions/ada").out.split()[0] == "s"


# ----------------------------------------------------------------------------- ls
def test_ls(notes):
    cli = notes
    proc = cli("ls")
    assert proc.returncode == 0 and proc.out.split() == ["index.md", "notes/"]
    assert cli("ls", "/notes").out.split() == ["a.md", "b.md", "deep/"]
    assert cli("ls", "/notes/a.md").out == "/notes/a.md\n"
    long = [line.split() for line in cli("ls", "-l", "/notes").out.splitlines()]
    assert [(f[0], f[1], f[-1]) for f in long] == [
        ("-", "23", "a.md"),
        ("-", "39", "b.md"),
        ("d", "-", "deep/"),
    ]
    assert long[0][2].endswith("Z")  # last update date
    assert cli("ls", "-l", "/").out.splitlines()[0].split()[0] == "v"  # virtual /index.md
    assert cli("ls", "-R", "/").out.split() == ["/notes/a.md", "/notes/b.md", "/notes/deep/c.txt"]
    entries = json.loads(cli("ls", "--json", "/notes").out)
    assert [(e["name"], e["type"], e["kind"]) for e in entries] == [
        ("a.md", "file", "memory"),
        ("b.md", "file", "memory"),
        ("deep", "directory", "directory"),
    ]
    assert entries[0]["path"] == "/notes/a.md" and entries[0]["mime_type"] == "text/markdown"


def test_ls_missing_exits_1(cli):
    proc = cli("ls", "/missing")
    assert proc.returncode == 1 and proc.out == ""
    assert one_error_line(proc) == "deeplake-sdk: error: /missing: No such file or directory"


# ----------------------------------------------------------------------------- rm
def test_rm(notes):
    cli = notes
    proc = cli("rm", "/notes")
    assert proc.returncode == 2
    assert "/notes: Is a directory (use -r" in one_error_line(proc)
    proc = cli("rm", "/notes/nope.md")
    assert proc.returncode == 1
    assert one_error_line(proc) == "deeplake-sdk: error: /notes/nope.md: No such file or directory"
    assert cli("rm", "-f", "/notes/nope.md").returncode == 0
    assert cli("rm", "/notes/a.md").returncode == 0
    assert cli("ls", "/notes").out.split() == ["b.md", "deep/"]
    assert cli("rm", "-r", "/notes").returncode == 0
    assert cli("ls", "/notes").returncode == 1
    assert cli("ls").out.split() == ["index.md"]


# ----------------------------------------------------------------------------- grep
def test_grep_gnu_output(notes):
    cli = notes
    proc = cli("grep", "-n", "hello", "-i")
    assert proc.returncode == 0
    assert proc.out.splitlines() == ["/notes/a.md:1:Hello world", "/notes/b.md:3:hello again"]
    # a single file: no file names (GNU's default); -H forces them
    assert cli("grep", "-n", "o", "/notes/a.md").out.splitlines() == [
        "1:Hello world",
        "2:second line",
    ]
    assert cli("grep", "-H", "second", "/notes/a.md").out == "/notes/a.md:second line\n"
    assert cli("grep", "-h", "TODO").out == "TODO: call Ada\n"
    assert cli("grep", "-c", "o", "/notes").out.splitlines() == [
        "/notes/a.md:2",
        "/notes/b.md:2",
        "/notes/deep/c.txt:1",
    ]
    assert cli("grep", "-l", "-w", "foo_bar").out == "/notes/b.md\n"
    assert cli("grep", "-w", "foo").returncode == 1
    assert cli("grep", "-F", "a.d").returncode == 1
    assert cli("grep", "-E", "c.ll", "/notes/b.md").out == "TODO: call Ada\n"
    assert cli("grep", "-F", "c.ll", "/notes/b.md").returncode == 1
    assert cli("grep", "-v", "o", "/notes/b.md").out == "TODO: call Ada\n"
    assert cli("grep", "-v", ".", "/notes/b.md").returncode == 1
    assert cli("grep", "-m", "1", "o", "/notes/b.md").out == "foo_bar baz\n"
    assert cli("grep", "-c", "-m", "1", "o", "/notes/b.md").out == "1\n"
    assert cli("grep", "-n", "again|world", "/notes/a.md", "/notes/b.md").out.splitlines() == [
        "/notes/a.md:1:Hello world",
        "/notes/b.md:3:hello again",
    ]
    proc = cli("grep", "-q", "Ada")
    assert proc.returncode == 0 and proc.out == ""


def test_grep_json(notes):
    proc = notes("grep", "--json", "-i", "hello")
    assert proc.returncode == 0
    assert json.loads(proc.out) == [
        {"path": "/notes/a.md", "count": 1, "matches": [{"line_number": 1, "line": "Hello world"}]},
        {"path": "/notes/b.md", "count": 1, "matches": [{"line_number": 3, "line": "hello again"}]},
    ]


def test_grep_exit_statuses(notes):
    cli = notes
    proc = cli("grep", "no such text")
    assert proc.returncode == 1 and proc.out == "" and proc.err == ""
    proc = cli("grep", "hello", "/missing", "/notes/b.md")
    assert proc.returncode == 2  # an error wins over a match, as in GNU grep
    assert proc.out == "/notes/b.md:hello again\n"
    assert one_error_line(proc) == "deeplake-sdk: error: /missing: No such file or directory"
    proc = cli("grep", "a(b")
    assert proc.returncode == 2 and "invalid grep pattern 'a(b'" in one_error_line(proc)


def test_grep_sessions(cli, api):
    from deeplake_sdk import SessionLog

    log = SessionLog(api, "s-9", user="bob")
    log.log({"type": "prompt", "text": "where is the deadline"})
    log.log({"type": "response", "text": "friday"})
    cli("write", "/notes/deadline.md", "the deadline is friday")
    assert cli("grep", "-l", "deadline").out.splitlines() == ["/notes/deadline.md"]
    assert cli("grep", "-l", "--sessions", "deadline").out.splitlines() == [
        "/notes/deadline.md",
        log.path,
    ]
    # a path holding only session logs is searched without --sessions
    proc = cli("grep", "-n", "friday", "/sessions")
    assert proc.returncode == 0
    assert proc.out.startswith(f"{log.path}:2:{{") and '"friday"' in proc.out


@pytest.mark.skipif(shutil.which("grep") is None, reason="GNU grep not installed")
def test_grep_matches_gnu_grep_on_the_same_files(notes, tmp_path):
    root = tmp_path / "root"
    files = {
        "notes/a.md": "Hello world\nsecond line",
        "notes/b.md": "TODO: call Ada\nfoo_bar baz\nhello again\n",
        "notes/deep/c.txt": "nothing to see\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for flags in (["-n"], ["-i"], ["-c"], ["-l"], ["-v"], ["-w"], ["-in"], ["-F"]):
        for pattern in ("o", "hello", "ba[rz]", "a.d"):
            syntax = [] if "-F" in flags else ["-E"]
            gnu = subprocess.run(
                ["grep", "-r", *syntax, *flags, pattern, "notes"],
                cwd=root,
                capture_output=True,
                text=True,
                check=False,
            )
            ours = notes("grep", *flags, pattern, "/notes")
            assert ours.returncode == gnu.returncode, (flags, pattern)
            assert sorted(ours.out.splitlines()) == sorted(
                "/" + line for line in gnu.stdout.splitlines()
            ), (flags, pattern)


# ----------------------------------------------------------------------------- bad input
def test_usage_errors_exit_2(cli):
    for args in (
        ["ls", "--bogus"],
        ["cat"],
        ["rm"],
        ["grep"],
        ["write"],
        ["append"],
        ["grep", "-m", "many", "x"],
    ):
        proc = cli(*args)
        assert proc.returncode == 2, args
        assert "usage: deeplake-sdk" in proc.err


def test_missing_credentials_say_what_to_do(tmp_path):
    cli = Cli(base_env(tmp_path))
    for args in (["ls"], ["cat", "/a"], ["write", "/a", "x"], ["grep", "x"]):
        proc = cli(*args)
        assert proc.returncode == 2
        line = one_error_line(proc)
        assert "DEEPLAKE_TOKEN" in line and "DEEPLAKE_ORG_ID" in line
        assert "no-credentials.json" in line  # the credentials file it looked at


def test_rejected_token_says_what_to_do(cli):
    cli.env["DEEPLAKE_TOKEN"] = "wrong-token"
    proc = cli("ls")
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "HTTP 401" in line and "DEEPLAKE_TOKEN" in line


def test_no_cache_and_table_options(cli):
    assert (
        cli(
            "write", "/x.md", "in another table", "--table", "other_memory", "--no-cache"
        ).returncode
        == 0
    )
    assert cli("ls").out.split() == ["index.md"]
    assert cli("cat", "/x.md", "--table", "other_memory").out == "in another table\n"
    assert "other_memory" in cli("tables").out.split()
