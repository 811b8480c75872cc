"""Cold operations: what a new filesystem (or a new process) sends, counted by the server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_examples import env_for

from deeplake_sdk import ContentCache, DeeplakeApi, DeeplakeFs, SessionLog
from deeplake_sdk import api as api_module
from deeplake_sdk.fs.core import PARTIAL_LOADS
from deeplake_sdk.journal.flusher import Flusher
from deeplake_sdk.layout_memo import LayoutMemo
from deeplake_sdk.sessions import user_message


@pytest.fixture
def stored(srv, api):
    """A workspace holding three notes and one session log; the tables' layouts remembered."""
    with DeeplakeFs(api, cache=False) as fs:
        for i in range(3):
            fs.write_text(f"/notes/n{i}.md", f"note {i}\nneedle-{i}\n")
    log = SessionLog(api, "s1", user="ada")
    log.log(user_message("hello"))
    log.flush()
    return log.path


def requests(srv) -> int:
    return srv.stats()["requests"]


def cold(api) -> DeeplakeFs:
    """A filesystem that has loaded nothing (layouts are remembered: no request)."""
    return DeeplakeFs(api, cache=False)


def test_cold_reads_are_one_request_each(srv, api, stored, tmp_path):
    srv.reset_stats()
    with cold(api) as fs:
        assert requests(srv) == 0
        assert fs.read_text("/notes/n1.md") == "note 1\nneedle-1\n"
        assert requests(srv) == 1
    srv.reset_stats()
    with cold(api) as fs:
        assert fs.stat("/notes/n2.md").size == len("note 2\nneedle-2\n")
        assert requests(srv) == 1
    srv.reset_stats()
    with cold(api) as fs:
        assert [r.path for r in fs.grep("needle-[02]", "/notes")] == [
            "/notes/n0.md",
            "/notes/n2.md",
        ]
        assert requests(srv) == 1
    srv.reset_stats()
    with DeeplakeFs(api, cache=ContentCache(tmp_path / "c")) as fs:
        assert fs.prefetch(["/notes/n0.md", "/notes/n1.md"]) == 2
        assert fs.read_text("/notes/n0.md").startswith("note 0") and requests(srv) == 1


def test_cold_listing_loads_the_metadata_of_its_directory_only(srv, api, stored):
    srv.reset_stats()
    with cold(api) as fs:
        assert fs.ls("/notes") == ["n0.md", "n1.md", "n2.md"]
        assert requests(srv) == 1  # both tables' metadata under /notes, one statement
        assert fs.stat("/notes/n1.md").size and fs.walk("/notes") and requests(srv) == 1
        assert fs.is_file(stored) and requests(srv) == 2  # /sessions/...: its own scope
        assert '"hello"' in fs.read_text(stored)
        assert requests(srv) == 3  # the session file's rows
        assert "/notes/n0.md" in fs.read_text("/index.md")  # the index: everything
        assert requests(srv) == 4
        assert fs.ls("/") == ["index.md", "notes", "sessions"] and requests(srv) == 4
    srv.reset_stats()
    with cold(api) as fs:
        assert "/notes/n2.md" in fs.read_text("/index.md") and requests(srv) == 1


def test_cold_stat_answers_files_directories_and_missing_paths_in_one_request(srv, api, stored):
    for path, kind in (("/notes", "directory"), (stored, "session"), ("/notes/n0.md", "memory")):
        srv.reset_stats()
        with cold(api) as fs:
            assert fs.stat(path).kind == kind and requests(srv) == 1
    srv.reset_stats()
    with cold(api) as fs:
        with pytest.raises(FileNotFoundError):
            fs.stat("/notes/nowhere.md")
        assert not fs.exists("/notes/nowhere.md") and requests(srv) == 1


def test_missing_paths_fall_back_to_the_metadata(srv, api, stored):
    with cold(api) as fs, pytest.raises(IsADirectoryError):
        fs.read_bytes("/notes")
    srv.reset_stats()
    with cold(api) as fs:
        with pytest.raises(FileNotFoundError):
            fs.read_bytes("/nowhere.md")
        assert requests(srv) == 2  # the row, then the path's metadata (a directory? a log?)
        assert "needle" not in fs.read_text("/index.md") and "n0.md" in fs.read_text("/index.md")


def test_writes_load_the_metadata_of_their_path_and_send_nothing_else_before_the_flush(
    srv, api, stored
):
    srv.reset_stats()
    with cold(api) as fs:
        fs.journal.flusher.stop(10)  # held back: only the filesystem's own requests count
        fs.write_text("/notes/new.md", "x")  # its directory and its ancestors: one read
        assert requests(srv) == 1
        fs.write_text("/notes/new.md", "x2")  # known now, and so is the rest of /notes
        fs.append_text("/notes/n0.md", "more\n")
        fs.write_text("/notes/other.md", "y")
        assert requests(srv) == 1
        with pytest.raises(PermissionError):
            fs.write_text(stored, "a session file is read-only")
        with pytest.raises(IsADirectoryError):
            fs.write_text("/notes", "a directory")
        with pytest.raises(NotADirectoryError):
            fs.write_text("/notes/n1.md/below.md", "below a file")
        fs.journal.flusher = Flusher(fs.journal)
        fs.journal.flusher.wake()
    with cold(api) as fs:
        assert fs.read_text("/notes/n0.md").endswith("more\n")
        assert fs.read_text("/notes/new.md") == "x2"
        assert not fs.exists("/notes/n1.md/below.md")


def test_without_sessions_a_listing_reads_the_memory_table_only(srv, api, stored):
    srv.reset_stats()
    with DeeplakeFs(api, sessions_table=None, cache=False) as fs:
        assert fs.ls("/") == ["index.md", "notes"] and requests(srv) == 1


def test_many_paths_read_all_the_metadata_once(srv, api, stored):
    srv.reset_stats()
    with cold(api) as fs:
        fs.journal.flusher.stop(10)
        for i in range(20):  # twenty directories: a few reads of one path, then all of it
            fs.write_text(f"/bulk/d{i}/f.md", "x")
            assert not fs.exists(f"/bulk/d{i}/other.md")
        assert requests(srv) == PARTIAL_LOADS + 1
        assert fs.ls("/notes") == ["n0.md", "n1.md", "n2.md"] and requests(srv) == PARTIAL_LOADS + 1
        fs.journal.flusher = Flusher(fs.journal)
        fs.journal.flusher.wake()
    with cold(api) as fs:
        assert len(fs.ls("/bulk")) == 20


def test_a_write_before_the_index_keeps_its_description(api, stored):
    with cold(api) as fs:
        fs.write_text("/notes/d.md", "x", description="described")
        assert "described" in fs.read_text("/index.md")  # the whole tree reloaded after it


def test_layouts_remembered_on_disk_spare_a_new_process_the_probe(srv, api, stored, tmp_path):
    with api_module._ensured_lock:
        api_module._ensured.clear()  # as in a new process
    srv.reset_stats()
    with cold(api) as fs:
        assert requests(srv) == 0 and fs.layout.binary_ok
    with api_module._ensured_lock:
        api_module._ensured.clear()
    LayoutMemo().forget(api._layout_base())  # nothing on disk either: one probe
    srv.reset_stats()
    with cold(api):
        assert requests(srv) == 1
    assert LayoutMemo().get(api._layout_base(), "memory") is not None
    assert LayoutMemo(ttl=0).get(api._layout_base(), "memory") is None  # expired


def test_a_stale_layout_heals_by_ensuring_again(srv, api, raw, stored):
    assert raw.query('DROP TABLE "memory"').status_code == 200  # behind the SDK's back
    with cold(api) as fs:
        with pytest.raises(FileNotFoundError):  # the table is recreated empty: the file is gone
            fs.read_bytes("/notes/n0.md")
        fs.write_text("/again.md", "back")
    with cold(api) as fs:
        assert fs.read_text("/again.md") == "back"


@pytest.fixture
def cli(srv, workspace, stored, tmp_path):
    """Run one ``deeplake-sdk`` command as a fresh process; its result and the requests it sent."""
    env = env_for(srv, workspace, tmp_path)
    env["DEEPLAKE_STATE_DIR"] = os.environ["DEEPLAKE_STATE_DIR"]  # the remembered layouts

    def run(*argv: str) -> tuple[subprocess.CompletedProcess[str], int]:
        srv.reset_stats()
        proc = subprocess.run(
            [sys.executable, "-m", "deeplake_sdk.cli", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        return proc, requests(srv)

    return run


@pytest.mark.parametrize(
    ("argv", "sent", "out"),
    [
        (["cat", "/notes/n1.md"], 1, "note 1\nneedle-1\n"),
        (["ls", "-l", "/notes/n1.md"], 1, "/notes/n1.md\n"),
        (["ls", "/notes"], 1, "n0.md\nn1.md\nn2.md\n"),
        (
            ["grep", "-r", "needle-[02]", "/notes"],
            1,
            "/notes/n0.md:needle-0\n/notes/n2.md:needle-2\n",
        ),
        (["grep", "hello", "/sessions"], 1, '"hello"'),  # a scope of session logs only
        (["cat", "/index.md"], 1, "/notes/n2.md"),
        # the check of the path, then the flush: the insert and its read-back
        (["write", "/notes/new.md", "hello"], 3, ""),
        # the check, then the flush: the row's size, the compare-and-swap, the read-back
        (["append", "/notes/n2.md", "more"], 4, ""),
        # the check (a directory? a session log?), then the flush: the delete, the read-back
        (["rm", "/notes/n0.md"], 3, ""),
    ],
)
def test_cold_cli_requests(cli, argv, sent, out):
    proc, n = cli(*argv)
    assert proc.returncode == 0, proc.stderr
    assert out in proc.stdout and n == sent


@pytest.mark.parametrize(
    ("argv", "sent", "status", "err"),
    [
        (["cat", "/notes/none.md"], 2, 1, "/notes/none.md: No such file or directory"),
        (["cat", "/notes"], 2, 2, "/notes: Is a directory"),
        (["ls", "/nowhere"], 1, 1, "/nowhere: No such file or directory"),
        (["grep", "-r", "x", "/nowhere"], 1, 2, "/nowhere: No such file or directory"),
        (["rm", "/notes/none.md"], 1, 1, "/notes/none.md: No such file or directory"),
        (["write", "/notes", "x"], 1, 2, "/notes: Is a directory"),
    ],
)
def test_cold_cli_errors_need_no_stat_first(cli, argv, sent, status, err):
    proc, n = cli(*argv)
    assert (proc.returncode, n) == (status, sent), proc.stderr
    assert err in proc.stderr


def test_cold_cli_grep_of_an_empty_directory_selects_nothing(cli, api):
    with cold(api) as fs:
        fs.write_text("/quiet/a.md", "nothing to see\n")
    proc, n = cli("grep", "-r", "needle", "/quiet")
    assert (proc.returncode, proc.stdout, n) == (1, "", 1), proc.stderr


def test_another_client_sees_the_same_remembered_layout(srv, workspace, stored):
    other = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    srv.reset_stats()
    assert other.ensure_table().binary_ok and requests(srv) == 0
