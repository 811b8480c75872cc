"""Cold operations: what a new filesystem (or a new process) sends, counted by the server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deeplake_sdk import ContentCache, DeeplakeApi, DeeplakeFs, SessionLog
from deeplake_sdk import api as api_module
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


def test_cold_listing_loads_the_metadata_once(srv, api, stored):
    srv.reset_stats()
    with cold(api) as fs:
        assert fs.ls("/notes") == ["n0.md", "n1.md", "n2.md"]
        assert requests(srv) == 2  # both tables' metadata, in parallel
        assert fs.is_file(stored) and fs.stat("/notes").type == "directory"
        assert '"hello"' in fs.read_text(stored)
        assert requests(srv) == 3  # the session file's rows


def test_missing_paths_fall_back_to_the_metadata(srv, api, stored):
    with cold(api) as fs, pytest.raises(IsADirectoryError):
        fs.read_bytes("/notes")
    with cold(api) as fs:
        with pytest.raises(FileNotFoundError):
            fs.stat("/nowhere.md")
        assert "needle" not in fs.read_text("/index.md") and "n0.md" in fs.read_text("/index.md")


def test_writes_load_the_metadata_once_and_send_nothing_else_before_the_flush(srv, api, stored):
    srv.reset_stats()
    with cold(api) as fs:
        fs.journal.flusher.stop(10)  # held back: only the filesystem's own requests count
        fs.write_text("/notes/new.md", "x")  # checked against both tables' metadata
        fs.append_text("/notes/n0.md", "more\n")
        fs.write_text("/notes/other.md", "y")
        assert requests(srv) == 2
        with pytest.raises(PermissionError):
            fs.write_text(stored, "a session file is read-only")
        fs.journal.flusher = Flusher(fs.journal)
        fs.journal.flusher.wake()
    with cold(api) as fs:
        assert fs.read_text("/notes/n0.md").endswith("more\n")
        assert fs.read_text("/notes/new.md") == "x"


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


def test_cold_cli_cat_is_one_request(srv, workspace, stored, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPLAKE_")}
    env.update(
        DEEPLAKE_CREDENTIALS=str(tmp_path / "none.json"),
        DEEPLAKE_CACHE_DIR=str(tmp_path / "cache"),
        DEEPLAKE_JOURNAL_DIR=str(tmp_path / "journal"),
        DEEPLAKE_STATE_DIR=os.environ["DEEPLAKE_STATE_DIR"],
        DEEPLAKE_API_URL=srv.url,
        DEEPLAKE_TOKEN=srv.token,
        DEEPLAKE_ORG_ID=srv.org,
        DEEPLAKE_WORKSPACE_ID=workspace,
    )
    srv.reset_stats()
    proc = subprocess.run(
        [sys.executable, "-m", "deeplake_sdk.cli", "cat", "/notes/n1.md"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "note 1\nneedle-1\n" and requests(srv) == 1


def test_another_client_sees_the_same_remembered_layout(srv, workspace, stored):
    other = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    srv.reset_stats()
    assert other.ensure_table().binary_ok and requests(srv) == 0
