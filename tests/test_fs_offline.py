"""A filesystem or a session log opened while the service cannot answer (no table layout
remembered yet): text writes and events are journaled and stored once it answers; binary
writes wait for the layout."""

from __future__ import annotations

import errno

import pytest

from deeplake_sdk import DeeplakeApi, DeeplakeFs, FsError, SessionLog
from deeplake_sdk.errors import AuthError, DeeplakeError


@pytest.mark.parametrize("fault", [{"p_500": 1.0}, {"p_reset": 1.0}])
def test_a_filesystem_opened_while_the_service_fails_journals_text_and_stores_it_later(
    srv, workspace, tmp_path, fault
):
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url, retries=1)
    srv.set_faults(profile="none", **fault)
    fs = DeeplakeFs(api, cache=False, journal=tmp_path / "j")
    try:
        fs.write_text("/notes/a.md", "written offline\n")
        fs.append_text("/notes/a.md", "and more\n")
        with pytest.raises(FsError) as refused:
            fs.write_bytes("/b.bin", b"\x00\x01")
        assert refused.value.errno == errno.EAGAIN
        with pytest.raises(DeeplakeError):
            fs.ls("/notes")  # a read needs the layout: it asks the service, which fails
        srv.set_faults(profile="none")
        fs.flush(timeout=30.0)
        fs.write_bytes("/b.bin", b"\x00\x01")  # asks for the layout first, which is known now
    finally:
        srv.set_faults(profile="none")
        fs.close()
    with DeeplakeFs(api, cache=False, journal=False) as other:
        assert other.read_text("/notes/a.md") == "written offline\nand more\n"
        assert other.read_bytes("/b.bin") == b"\x00\x01"
    api.close()


def test_a_refusal_to_prepare_the_tables_is_still_an_error(srv, workspace, tmp_path):
    api = DeeplakeApi("not-a-token", srv.org, workspace, srv.url, retries=1)
    with pytest.raises(AuthError):
        DeeplakeFs(api, cache=False, journal=tmp_path / "j")
    api.close()


def test_a_session_log_opened_while_the_service_fails_journals_events(srv, workspace, tmp_path):
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url, retries=1)
    srv.set_faults(profile="none", p_500=1.0)
    try:
        log = SessionLog(api, "s1", user="ada", journal=tmp_path / "j")
        event_id = log.log({"type": "prompt", "text": "hello"})
        with pytest.raises(DeeplakeError):
            log.read()  # the stored events need the layout: it asks the service, which fails
        srv.set_faults(profile="none")
        log.flush(timeout=30.0)
        assert [e["id"] for e in log.read()] == [event_id]
    finally:
        srv.set_faults(profile="none")
        api.close()
