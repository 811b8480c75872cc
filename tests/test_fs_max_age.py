"""``DeeplakeFs(max_age=...)``: a long-lived filesystem sees other processes' changes.

Another filesystem (its own journal-less client, as another process would be) changes the
tables; the filesystem under test, which read them before, sees the changes on its next
operation with ``max_age=0``, keeps its snapshot (no request at all) with a long
``max_age``, and keeps it until :meth:`refresh` by default.
"""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest
from drain_holder import drain_held
from waiting import poll

from deeplake_sdk import ContentCache, DeeplakeFs, FsError


def requests(srv) -> int:
    return srv.stats()["requests"]


def rows_of(api, path: str) -> list[dict]:
    return api.query("SELECT id FROM memory WHERE path = $1", [path])


@pytest.fixture
def other(api):
    """Changes the tables as another process would (stored when each call returns)."""

    class Other:
        def __init__(self) -> None:
            self.fs = DeeplakeFs(api, cache=False, journal=False)

        def write(self, path: str, text: str) -> None:
            self.fs.write_text(path, text)
            self.fs.flush()

        def rm(self, path: str) -> None:
            self.fs.rm(path)
            self.fs.flush()

    writer = Other()
    yield writer
    writer.fs.close()


def seen_by(api, tmp_path, **kwargs) -> DeeplakeFs:
    """A filesystem with a content cache that has read ``/notes`` and ``/notes/a.md``."""
    fs = DeeplakeFs(api, cache=ContentCache(tmp_path / "cache"), **kwargs)
    assert fs.read_text("/notes/a.md") == "v1\n"
    assert fs.ls("/notes") == ["a.md", "gone.md"]
    return fs


def test_max_age_zero_sees_every_change_of_another_process(api, tmp_path, other):
    other.write("/notes/a.md", "v1\n")
    other.write("/notes/gone.md", "soon gone\n")
    fs = seen_by(api, tmp_path, max_age=0)
    fs.mkdir("/drafts")  # a directory of this filesystem only: it outlives the snapshot
    other.write("/notes/a.md", "v2, longer\n")
    other.write("/notes/b.md", "new\n")
    other.rm("/notes/gone.md")
    assert fs.read_text("/notes/a.md") == "v2, longer\n"  # not the cached v1
    assert fs.stat("/notes/a.md").size == len("v2, longer\n")
    assert fs.ls("/notes") == ["a.md", "b.md"]
    assert fs.exists("/notes/b.md") and not fs.exists("/notes/gone.md")
    with pytest.raises(FsError) as info:
        fs.read_text("/notes/gone.md")
    assert info.value.errno == errno.ENOENT
    assert "/notes/b.md" in fs.read_text("/index.md")
    assert fs.is_dir("/drafts")
    fs.close()


def test_a_file_only_ever_read_is_read_again_once_the_snapshot_is_old(api, tmp_path, other):
    other.write("/notes/a.md", "v1\n")
    fs = DeeplakeFs(api, cache=ContentCache(tmp_path / "cache"), max_age=0)
    assert fs.read_text("/notes/a.md") == "v1\n"  # its row, read directly: nothing listed
    other.write("/notes/a.md", "v2\n")
    assert fs.read_text("/notes/a.md") == "v2\n"
    fs.close()


def test_a_snapshot_younger_than_max_age_is_used_without_a_request(srv, api, tmp_path, other):
    other.write("/notes/a.md", "v1\n")
    other.write("/notes/gone.md", "soon gone\n")
    fs = seen_by(api, tmp_path, max_age=3600)
    other.write("/notes/a.md", "v2\n")
    before = requests(srv)
    assert fs.read_text("/notes/a.md") == "v1\n"
    assert fs.ls("/notes") == ["a.md", "gone.md"]
    assert requests(srv) == before
    fs.close()


def test_by_default_the_snapshot_lasts_until_refresh(api, tmp_path, other):
    other.write("/notes/a.md", "v1\n")
    other.write("/notes/gone.md", "soon gone\n")
    fs = seen_by(api, tmp_path)
    other.write("/notes/a.md", "v2\n")
    other.write("/notes/b.md", "new\n")
    assert fs.read_text("/notes/a.md") == "v1\n" and fs.ls("/notes") == ["a.md", "gone.md"]
    fs.refresh()
    assert fs.read_text("/notes/a.md") == "v2\n"
    assert fs.ls("/notes") == ["a.md", "b.md", "gone.md"]
    fs.close()


def test_an_expired_snapshot_does_not_hold_up_a_write_while_the_service_fails(
    srv, api, tmp_path, other, monkeypatch
):
    """The write's checks sync the tables with one attempt each, like their metadata read;
    when that fails the write is checked against what was seen, and journaled."""
    other.write("/notes/a.md", "v1\n")
    other.write("/notes/gone.md", "soon gone\n")
    fs = seen_by(api, tmp_path, max_age=0)
    srv.set_faults(p_500=1.0)
    monkeypatch.setenv("DEEPLAKE_JOURNAL_SEND", "0")  # only the write's own requests count
    before = requests(srv)
    fs.write_text("/notes/c.md", "written offline\n")
    assert requests(srv) - before <= 2  # one sync attempt per table, no retry
    assert fs.read_text("/notes/c.md") == "written offline\n"
    srv.set_faults("none")
    monkeypatch.delenv("DEEPLAKE_JOURNAL_SEND")
    fs.flush()
    other_view = DeeplakeFs(api, cache=False, journal=False)
    assert other_view.read_text("/notes/c.md") == "written offline\n"
    other_view.close()
    fs.close()


def test_while_the_service_fails_the_snapshot_serves_and_a_later_operation_refreshes(
    srv, api, tmp_path, other
):
    other.write("/notes/a.md", "v1\n")
    other.write("/notes/gone.md", "soon gone\n")
    fs = seen_by(api, tmp_path, max_age=0)
    other.write("/notes/b.md", "new\n")
    srv.set_faults(p_503=1.0)
    before = requests(srv)
    assert fs.read_text("/notes/a.md") == "v1\n"  # from the cache, as last seen
    assert fs.ls("/notes") == ["a.md", "gone.md"]
    assert requests(srv) - before <= 4  # one sync attempt per table and operation
    srv.set_faults("none")
    assert fs.ls("/notes") == ["a.md", "b.md", "gone.md"]
    assert fs.sessions_enabled  # a sessions table busy for a moment is not given up
    fs.close()


def test_max_age_must_not_be_negative(api):
    with pytest.raises(ValueError, match="max_age"):
        DeeplakeFs(api, cache=False, journal=False, max_age=-1)


def test_an_operation_refreshes_once_however_many_it_calls(srv, api, tmp_path, other):
    """``ls(detail=True)`` stats each entry: with ``max_age=0`` the listing refreshes once, at
    its start, and the stats use what it loaded (not a refresh each)."""
    for i in range(6):
        other.write(f"/many/f{i}.md", "x\n")
    fs = DeeplakeFs(api, cache=False, max_age=0)
    assert len(fs.ls("/many")) == 6
    other.write("/many/f0.md", "longer now\n")
    before = requests(srv)
    sizes = {s.path: s.size for s in fs.ls("/many", detail=True)}
    assert sizes["/many/f0.md"] == len("longer now\n") and sizes["/many/f5.md"] == 2
    assert requests(srv) - before <= 3  # the two tables synced, one metadata read
    fs.close()


def test_what_another_process_of_this_machine_journaled_shows_before_it_is_stored(
    srv, api, workspace, tmp_path
):
    """Another process journals a write and exits while a third holds the journal's drain
    (so nothing is stored): a long-lived filesystem of the same journal sees it on its next
    operation after ``max_age``, then stores it once the drain is free."""
    journal = tmp_path / "journal"
    fs = DeeplakeFs(api, cache=False, journal=str(journal), max_age=0)
    assert not fs.exists("/notes")
    with drain_held(journal, srv, workspace):
        writer = (
            "import os, sys\n"
            "from deeplake_sdk import DeeplakeApi, DeeplakeFs\n"
            "api = DeeplakeApi(*sys.argv[1:5])\n"
            "DeeplakeFs(api, cache=False, journal=sys.argv[5]).write_text("
            "'/notes/elsewhere.md', 'journaled elsewhere\\n')\n"
            "os._exit(0)  # journaled, not stored: the drain is held\n"
        )
        args = [srv.token, srv.org, workspace, srv.url, str(journal)]
        subprocess.run([sys.executable, "-c", writer, *args], check=True, timeout=120)
        assert fs.read_text("/notes/elsewhere.md") == "journaled elsewhere\n"
        assert fs.ls("/notes") == ["elsewhere.md"]
        assert rows_of(api, "/notes/elsewhere.md") == []  # not stored yet
    poll(lambda: len(rows_of(api, "/notes/elsewhere.md")) == 1)
    fs.close()
    assert len(rows_of(api, "/notes/elsewhere.md")) == 1
