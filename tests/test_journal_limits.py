"""Oversize and invalid input never blocks the other writes (real server, real limits)."""

from __future__ import annotations

import errno

import pytest

from deeplake_sdk import DeeplakeFs, FlushError, FsError, SessionLog
from deeplake_sdk.journal import Limits

BIG = 50_000_000


def count(api) -> int:
    return api.query("SELECT COUNT(*) AS n FROM memory")[0]["n"]


def test_a_write_over_the_limit_is_refused_when_made_and_the_rest_is_stored(api):
    with DeeplakeFs(api, cache=False) as fs:
        for i in range(10):
            fs.write_text(f"/small/{i}.md", f"small {i}")
        with pytest.raises(FsError) as info:
            fs.write_bytes("/big.bin", b"x" * BIG)
        assert info.value.errno == errno.EFBIG
        assert "16,777,216-byte limit" in str(info.value) and "Limits.file_bytes" in str(info)
        for i in range(10, 20):
            fs.write_text(f"/small/{i}.md", f"small {i}")
    assert count(api) == 20


def test_a_write_the_service_refuses_is_set_aside_named_and_never_blocks(srv, api):
    fs = DeeplakeFs(api, cache=False, limits=Limits(file_bytes=2 * BIG))
    fs.write_bytes("/big.bin", b"x" * BIG)  # larger than the server's request body limit
    for i in range(20):
        fs.write_text(f"/small/{i}.md", f"small {i}")
    with pytest.raises(FlushError) as info:
        fs.flush()
    assert info.value.failed_paths == ["/big.bin"] and info.value.journaled == 0
    assert "413" in str(info.value.errors["/big.bin"])
    assert count(api) == 20
    (rejected,) = fs.journal.store.rejected()
    assert (rejected.path, rejected.op, len(rejected.data)) == ("/big.bin", "put", BIG)
    fs.write_text("/after.md", "later writes flow")
    fs.close()
    assert count(api) == 21


def test_session_events_with_nul_or_over_the_limit_are_refused_with_the_reason(api):
    log = SessionLog(api, "s", user="u", limits=Limits(event_bytes=1000))
    with pytest.raises(ValueError, match="NUL"):
        log.log({"type": "user_message", "content": "a\x00b"})
    with pytest.raises(ValueError, match="1,000-byte limit"):
        log.log({"type": "user_message", "content": "x" * 2000})
    log.log({"type": "user_message", "content": "fine"})
    log.flush()
    assert [e["content"] for e in log.read()] == ["fine"]


def test_each_filesystem_waits_for_and_hears_of_its_own_writes_only(api):
    """Two filesystems (and a session log) of one workspace share the process's journal."""
    mine = DeeplakeFs(api, cache=False, limits=Limits(file_bytes=2 * BIG))
    theirs = DeeplakeFs(api, cache=False)
    log = SessionLog(api, "s", user="u")
    mine.write_bytes("/big.bin", b"x" * BIG)  # refused by the service (413)
    theirs.write_text("/theirs.md", "stored")
    log.log({"type": "user_message", "content": "hello"})
    assert theirs.flush() <= 1 and log.flush() <= 1  # the refusal is not theirs to report
    with pytest.raises(FlushError) as info:
        mine.flush()
    assert info.value.failed_paths == ["/big.bin"]
    assert mine.flush() == 0  # reported once
    assert theirs.read_text("/theirs.md") == "stored" and count(api) == 1
    for closable in (mine, theirs):
        closable.close()
