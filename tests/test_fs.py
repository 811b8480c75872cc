"""DeeplakeFs operations and their errno codes, against the real local server."""

from __future__ import annotations

import errno
import json
import time

import pytest

from deeplake_sdk import DeeplakeFs, FlushError, FsError, SessionLog
from deeplake_sdk.cache import ContentCache


def _errno(excinfo: pytest.ExceptionInfo[FsError]) -> int:
    return excinfo.value.errno


def rows_of(api, path: str, table: str = "memory") -> list[dict]:
    return api.query(f'SELECT id, path, size_bytes FROM "{table}" WHERE path = $1', [path])


def queries(srv) -> int:
    return srv.stats()["requests"]


# -- reading and writing ----------------------------------------------------------------
def test_write_then_read_back_after_reopen(api, fs, tmp_path):
    binary = bytes(range(256)) * 3
    fs.write_text("/notes/a.md", "hello\nwörld 'quoted' \\ back\n")
    fs.write_bytes("/bin/blob", binary)
    assert fs.read_text("/notes/a.md") == "hello\nwörld 'quoted' \\ back\n"  # from the queue
    fs.close()
    with DeeplakeFs(api, cache=ContentCache(tmp_path / "other-cache")) as again:
        assert again.read_text("/notes/a.md") == "hello\nwörld 'quoted' \\ back\n"
        assert again.read_bytes("/bin/blob") == binary
        assert again.stat("/bin/blob").size == len(binary)
        assert again.stat("/notes/a.md").mime_type == "text/markdown"


def test_writes_are_stored_by_the_flusher_without_flush(fs):
    for i in range(10):
        fs.write_text(f"/batch/{i}.txt", str(i))
    deadline = time.monotonic() + 30
    stored: list[dict] = []
    while len(stored) < 10 and time.monotonic() < deadline:
        stored = fs.api.query("SELECT path FROM memory WHERE path LIKE '/batch/%'")
        time.sleep(0.02)  # polling the table: the flusher works in its own thread
    assert sorted(r["path"] for r in stored) == [f"/batch/{i}.txt" for i in range(10)]
    assert fs.journal.pending_mine() == 0 or fs.flush() == 0


def test_refused_writes_are_set_aside_and_named_the_rest_is_stored(srv, fs):
    srv.set_faults(fail_pattern="INSERT INTO", fail_status=400)
    fs.write_text("/f/one.txt", "1")
    fs.write_text("/f/two.txt", "2")
    with pytest.raises(FlushError) as info:
        fs.flush()
    assert info.value.failed_paths == ["/f/one.txt", "/f/two.txt"]
    assert all("400" in str(e) for e in info.value.errors.values())
    assert info.value.journaled == 0
    assert sorted(e.path for e in fs.journal.store.rejected()) == ["/f/one.txt", "/f/two.txt"]
    srv.set_faults(profile="none")
    fs.write_text("/f/three.txt", "3")
    assert fs.flush() == 1  # a refused write never blocks later ones
    assert [r["size_bytes"] for r in rows_of(fs.api, "/f/three.txt")] == [1]


def test_unavailable_service_keeps_writes_journaled_until_it_heals(srv, fs):
    srv.set_faults(p_503=1.0)
    fs.write_text("/w.txt", "old")
    fs.write_text("/w.txt", "newer")
    with pytest.raises(FlushError) as info:
        fs.flush(timeout=1.0)
    assert info.value.journaled == 2 and info.value.failed_paths == ["/w.txt"]
    assert fs.read_text("/w.txt") == "newer"  # reads see the journal meanwhile
    srv.set_faults(profile="none")
    assert fs.flush() == 2
    assert fs.api.query("SELECT summary FROM memory WHERE path = '/w.txt'") == [
        {"summary": "newer"}
    ]


def test_read_sees_file_created_by_another_client(api, fs, tmp_path):
    with DeeplakeFs(api, cache=ContentCache(tmp_path / "c2")) as other:
        other.write_text("/shared/x.md", "from the other side")
    assert fs.read_text("/shared/x.md") == "from the other side"
    assert fs.exists("/shared/x.md")


# -- append ----------------------------------------------------------------------------
def test_writes_and_appends_need_no_round_trip(srv, fs):
    srv.set_faults(p_503=1.0)  # nothing reaches the table
    fs.write_text("/log.txt", "a\n")
    fs.append_text("/log.txt", "b\n")
    assert fs.read_text("/log.txt") == "a\nb\n"
    assert fs.stat("/log.txt").size == 4
    srv.set_faults(profile="none")
    fs.flush()
    assert fs.api.query("SELECT summary FROM memory WHERE path = '/log.txt'") == [
        {"summary": "a\nb\n"}
    ]


def test_append_to_stored_file_invalidates_the_cache(srv, fs):
    fs.write_text("/log.txt", "a\n")
    fs.flush()
    assert fs.read_text("/log.txt") == "a\n"
    fs.append_text("/log.txt", "b\n")
    assert fs.read_text("/log.txt") == "a\nb\n"  # not the stale cached "a\n"
    assert fs.stat("/log.txt").size == 4


def test_append_to_missing_file_creates_it(fs):
    fs.append_text("/new/log.txt", "first\n")
    fs.flush()
    fs.append_text("/new/log.txt", "second\n")
    assert fs.read_text("/new/log.txt") == "first\nsecond\n"


def test_append_after_another_writer_changed_the_file(api, fs, tmp_path):
    fs.write_text("/race.txt", "a")
    fs.flush()
    with DeeplakeFs(api, cache=False, journal=False) as other:
        other.append_text("/race.txt", "b")
    fs.append_text("/race.txt", "c")  # our size is stale: the guard makes us re-read it
    fs.flush()
    assert api.query("SELECT summary FROM memory WHERE path = '/race.txt'") == [{"summary": "abc"}]


def test_append_binary_keeps_bytes_exact(fs):
    fs.write_text("/mixed.bin", "text")
    fs.flush()
    fs.append_bytes("/mixed.bin", b"\xff\x00\xfe")
    fs.append_text("/mixed.bin", "é")
    assert fs.read_bytes("/mixed.bin") == b"text\xff\x00\xfe" + "é".encode()


# -- namespace and errors --------------------------------------------------------------
def test_ls_walk_stat_exists(fs):
    fs.write_text("/a/b/c.txt", "c")
    fs.write_text("/a/d.txt", "d")
    fs.mkdir("/empty")
    assert fs.ls("/") == ["a", "empty", "index.md"]
    assert fs.ls("/a") == ["b", "d.txt"]
    assert list(fs.walk("/a")) == [("/a", ["b"], ["d.txt"]), ("/a/b", [], ["c.txt"])]
    assert fs.stat("/a").type == "directory"
    assert fs.stat("/a/d.txt").size == 1
    assert fs.exists("/a/b") and not fs.exists("/nope")
    assert [s.path for s in fs.ls("/a", detail=True)] == ["/a/b", "/a/d.txt"]


def test_errno_codes(fs):
    fs.write_text("/dir/file.txt", "x")
    cases = [
        (lambda: fs.read_text("/missing.txt"), errno.ENOENT),
        (lambda: fs.stat("/missing.txt"), errno.ENOENT),
        (lambda: fs.rm("/missing.txt"), errno.ENOENT),
        (lambda: fs.mv("/missing.txt", "/x"), errno.ENOENT),
        (lambda: fs.read_text("/dir"), errno.EISDIR),
        (lambda: fs.write_text("/dir", "x"), errno.EISDIR),
        (lambda: fs.rm("/dir"), errno.EISDIR),
        (lambda: fs.cp("/dir", "/dir2"), errno.EISDIR),
        (lambda: fs.write_text("/dir/file.txt/under", "x"), errno.ENOTDIR),
        (lambda: fs.ls("/dir/file.txt"), errno.ENOTDIR),
        (lambda: fs.mkdir("/dir/file.txt/sub", parents=True), errno.ENOTDIR),
        (lambda: fs.mkdir("/dir"), errno.EEXIST),
        (lambda: fs.mkdir("/dir/file.txt"), errno.EEXIST),
        (lambda: fs.mkdir("/no/parent"), errno.ENOENT),
        (lambda: fs.rmdir("/dir"), errno.ENOTEMPTY),
        (lambda: fs.rm("/", recursive=True), errno.EPERM),
    ]
    for action, code in cases:
        with pytest.raises(FsError) as info:
            action()
        assert _errno(info) == code, action
        assert isinstance(info.value, OSError)
    fs.rm("/missing.txt", force=True)  # force ignores a missing file


def test_mkdir_rmdir(fs):
    fs.mkdir("/p/q/r", parents=True)
    assert fs.is_dir("/p/q/r")
    fs.rmdir("/p/q/r")
    assert not fs.exists("/p/q/r") and fs.is_dir("/p/q")
    fs.mkdir("/p/q", exist_ok=True)


def test_rm_file_and_tree(api, fs):
    fs.write_text("/t/a.txt", "a")
    fs.write_text("/t/sub/b.txt", "b")
    fs.write_text("/keep.txt", "k")
    fs.flush()
    fs.rm("/t/a.txt")
    assert not fs.exists("/t/a.txt")
    fs.flush()
    assert rows_of(api, "/t/a.txt") == []
    fs.rm("/t", recursive=True)
    assert not fs.exists("/t")
    fs.flush()
    assert api.query("SELECT path FROM memory ORDER BY path") == [{"path": "/keep.txt"}]


def test_rm_pending_file_never_reaches_the_table(api, fs):
    fs.write_text("/tmp.txt", "x")
    fs.rm("/tmp.txt")
    fs.flush()
    assert rows_of(api, "/tmp.txt") == []


def test_cp_and_mv(api, fs):
    fs.write_text("/src/a.md", "A")
    fs.write_text("/src/deep/b.md", "B")
    fs.flush()
    fs.cp("/src/a.md", "/copy.md")
    fs.mkdir("/into")
    fs.cp("/src/a.md", "/into")
    fs.cp("/src", "/tree", recursive=True)
    fs.flush()
    assert fs.read_text("/copy.md") == "A" and fs.read_text("/into/a.md") == "A"
    assert fs.read_text("/tree/deep/b.md") == "B"
    fs.mv("/copy.md", "/moved.md")
    assert not fs.exists("/copy.md") and fs.read_text("/moved.md") == "A"
    fs.mv("/src", "/dst")
    assert fs.read_text("/dst/deep/b.md") == "B" and not fs.exists("/src")
    paths = [r["path"] for r in api.query("SELECT path FROM memory ORDER BY path")]
    assert paths == [
        "/dst/a.md",
        "/dst/deep/b.md",
        "/into/a.md",
        "/moved.md",
        "/tree/a.md",
        "/tree/deep/b.md",
    ]


def test_mv_replaces_target_and_refuses_bad_targets(api, fs):
    fs.write_text("/x.txt", "x")
    fs.write_text("/y.txt", "y")
    fs.write_text("/full/f.txt", "f")
    fs.mkdir("/d")
    fs.write_text("/d/inner.txt", "i")
    fs.flush()
    fs.mv("/x.txt", "/y.txt")
    assert fs.read_text("/y.txt") == "x"
    assert len(rows_of(api, "/y.txt")) == 1
    fs.mkdir("/other")
    fs.write_text("/other/d/z.txt", "z")
    with pytest.raises(FsError) as info:
        fs.mv("/d", "/other")  # /other/d exists and is not empty
    assert _errno(info) == errno.ENOTEMPTY
    with pytest.raises(FsError) as info:
        fs.mv("/d", "/d/inside")
    assert _errno(info) == errno.EINVAL


def test_mv_pending_file_moves_the_queued_write(api, fs):
    fs.write_text("/q.txt", "queued")
    fs.mv("/q.txt", "/r.txt")
    fs.flush()
    assert rows_of(api, "/q.txt") == []
    assert fs.read_text("/r.txt") == "queued"


def test_index_md_is_virtual_until_written(fs):
    fs.write_text("/notes/a.md", "A", description="first note")
    index = fs.read_text("/index.md")
    assert "/notes/a.md" in index and "first note" in index
    assert fs.stat("/index.md").kind == "virtual"
    fs.write_text("/index.md", "mine")
    assert fs.read_text("/index.md") == "mine"


def test_prefetch_is_one_query_and_fills_the_cache(srv, fs):
    for i in range(30):
        fs.write_text(f"/pre/{i}.txt", f"content {i}")
    fs.flush()
    before = queries(srv)
    assert fs.prefetch(f"/pre/{i}.txt" for i in range(30)) == 30
    assert queries(srv) == before + 1
    assert [fs.read_text(f"/pre/{i}.txt") for i in range(30)] == [f"content {i}" for i in range(30)]
    assert queries(srv) == before + 1


# -- sessions --------------------------------------------------------------------------
def test_session_file_reads_as_jsonl_in_order_and_is_read_only(api, fs):
    log = SessionLog(api, "s1", user="ada")
    ids = [
        log.log({"type": "prompt" if i % 2 == 0 else "response", "i": i, "text": f"line {i}"})
        for i in range(5)
    ]
    log.flush()
    fs.refresh()
    lines = fs.read_text(log.path).splitlines()
    events = [json.loads(line) for line in lines]
    assert [(e["id"], e["i"], e["text"]) for e in events] == [
        (ids[i], i, f"line {i}") for i in range(5)
    ]
    assert all(" " not in line.replace("line ", "") for line in lines)  # compact JSON
    assert log.read() == events
    for action in (
        lambda: fs.write_text(log.path, "x"),
        lambda: fs.append_text(log.path, "x"),
        lambda: fs.rm(log.path),
        lambda: fs.rm("/sessions", recursive=True),
        lambda: fs.mv(log.path, "/elsewhere.jsonl"),
    ):
        with pytest.raises(FsError) as info:
            action()
        assert _errno(info) == errno.EPERM


def test_failed_sessions_table_skips_sessions_but_serves_memory(srv, api, tmp_path, caplog):
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/m.txt", "memory still works")
    log = SessionLog(api, "s", user="u")
    log.log({"type": "prompt"})
    log.flush()
    session_file = "/sessions/u/u_local_" + api.workspace_id + "_s.jsonl"
    srv.set_faults(fail_pattern=r"COUNT\(DISTINCT", fail_status=400)  # the sessions metadata
    with DeeplakeFs(api, cache=False) as fs:
        assert fs.read_text("/m.txt") == "memory still works"
        assert not fs.exists(session_file) and not fs.exists("/sessions")
        assert not fs.sessions_enabled
    assert "session files are skipped" in caplog.text
    caplog.clear()
    srv.set_faults(fail_pattern=r"deeplake_sync_table\('sessions'\)", fail_status=400)
    with DeeplakeFs(api, cache=False) as fs:
        assert fs.exists(session_file)  # opening and loading send no sync
        fs.refresh()  # refresh syncs: the failed sync leaves session files out
        assert not fs.sessions_enabled and not fs.exists(session_file)
        assert fs.read_text("/m.txt") == "memory still works"
    assert "session files are skipped" in caplog.text


def test_closed_fs_refuses_work(fs):
    fs.close()
    with pytest.raises(ValueError, match="closed"):
        fs.read_text("/x")


def test_close_without_waiting_leaves_writes_to_the_flusher(api, fs):
    fs.write_text("/later.txt", "d")
    fs.close(wait=False)
    fs.journal.flush(timeout=30)
    assert len(rows_of(api, "/later.txt")) == 1
