"""Where the service cannot be connected to (nothing listens at its address): opening a
filesystem or a session log, the wait for an earlier process's writes and the exit drain make
one attempt instead of waiting out the outage; what was journaled stays journaled.

(A command's and the hooks' side: ``test_cli_fs.py`` and ``test_integrations_hooks.py``.)
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading

import pytest

from deeplake_sdk import ConnectError, DeeplakeApi, DeeplakeFs, FlushError, NetworkError, SessionLog
from deeplake_sdk.journal.store import list_entries
from deeplake_sdk.retry import RetryPolicy

#: An earlier process: journals a write where nothing listens, then dies without a drain.
EARLIER = """
import os, sys
from deeplake_sdk import DeeplakeApi, DeeplakeFs
fs = DeeplakeFs(DeeplakeApi("t", "org", "ws", sys.argv[1]), cache=False, journal=sys.argv[2])
fs.write_text("/earlier.md", "kept")
os._exit(0)
"""
#: A process that journals a write where nothing listens and ends normally (exit drain).
EXITING = """
import sys
from deeplake_sdk import DeeplakeApi, DeeplakeFs
fs = DeeplakeFs(DeeplakeApi("t", "org", "ws", sys.argv[1]), cache=False, journal=sys.argv[2])
fs.write_text("/exit.md", "kept")
"""
#: The same, told by its own flush that the write is not stored (and going on).
EXITING_TOLD = (
    EXITING
    + """
from deeplake_sdk import FlushError
try:
    fs.flush(while_reachable=True)
except FlushError as exc:
    print("told:", exc)
"""
)


def unreachable_url() -> str:
    """The address of a port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def retries_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]


def test_a_connection_that_cannot_be_made_is_a_connect_error_retried_unless_told_not_to():
    error = ConnectError("cannot connect")
    assert isinstance(error, NetworkError) and isinstance(error, ConnectionError)
    assert not error.ambiguous
    assert RetryPolicy().should_retry(error)
    assert not RetryPolicy(retry_connect=False).should_retry(error)
    # other failures that sent nothing (a slot not granted in time) are still retried
    assert RetryPolicy(retry_connect=False).should_retry(NetworkError("no free slot"))


def test_refused_connections_raise_a_connect_error():
    api = DeeplakeApi("t", "org", "ws", unreachable_url(), retries=0)
    with pytest.raises(ConnectError):
        api.list_tables()
    api.close()


def test_an_open_and_its_writes_retry_no_connection(tmp_path, caplog):
    """The tables are probed once (not retried for seconds); the write and the event are
    journaled; a flush told to wait while the service is reachable ends at the first drain."""
    caplog.set_level(logging.INFO, logger="deeplake_sdk")
    api = DeeplakeApi("t", "org", "ws", unreachable_url())
    fs = DeeplakeFs(api, cache=False, journal=tmp_path)
    log = SessionLog(api, "s1", user="ada", journal=tmp_path)
    try:
        fs.write_text("/a.md", "kept")
        log.log({"type": "prompt", "text": "hello"})
        with pytest.raises(FlushError) as not_stored:
            fs.flush(timeout=None, while_reachable=True)
        assert not_stored.value.journaled == 1
        assert isinstance(not_stored.value.errors["/a.md"], ConnectError)
        assert retries_logged(caplog) == []
        assert sorted(e.path for e in list_entries(fs.journal.store.path)) == [
            "/a.md",
            log.path,
        ]
    finally:
        fs.journal.flusher.stop(10)
        api.close()


def test_an_open_does_not_wait_for_an_earlier_process_s_writes_while_nothing_listens(
    tmp_path, caplog
):
    """Without a timeout, the wait for the earlier process's write would last as long as the
    outage: it ends at the first drain that cannot connect, the write kept. One warning says
    so, with the table it could not reach."""
    caplog.set_level(logging.WARNING, logger="deeplake_sdk")
    url = unreachable_url()
    subprocess.run([sys.executable, "-c", EARLIER, url, str(tmp_path)], check=True, timeout=120)
    api = DeeplakeApi("t", "org", "ws", url)
    opened: list[DeeplakeFs] = []
    opening = threading.Thread(
        target=lambda: opened.append(
            DeeplakeFs(api, cache=False, journal=tmp_path, recover_timeout=None)
        ),
        daemon=True,
    )
    opening.start()
    opening.join(60)
    assert opened, "the open is still waiting for the earlier process's write"
    fs = opened[0]
    try:
        assert [e.path for e in list_entries(fs.journal.store.path)] == ["/earlier.md"]
        (warning,) = [r.getMessage() for r in caplog.records if r.name == "deeplake_sdk.fs.core"]
        assert "not reachable (cannot connect" in warning
        assert "1 write(s) of an earlier process not stored yet" in warning
    finally:
        fs.journal.flusher.stop(10)
        api.close()


def test_the_exit_drain_of_a_journal_on_disk_ends_when_nothing_listens(tmp_path):
    """Given an hour for its exit drain, the process still ends at the first drain that
    cannot connect: the write stays in the journal on disk, and the warning says why."""
    env = {**os.environ, "DEEPLAKE_EXIT_FLUSH_TIMEOUT": "3600"}
    proc = subprocess.run(
        [sys.executable, "-c", EXITING, unreachable_url(), str(tmp_path)],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert "cannot connect" in proc.stderr.decode()
    assert "stay in journal" in proc.stderr.decode()
    (journal,) = tmp_path.glob("*.sqlite")
    assert [e.path for e in list_entries(journal)] == ["/exit.md"]


def test_the_exit_drain_does_not_warn_again_of_writes_a_flush_reported(tmp_path):
    """A program whose flush raised FlushError was told: its exit does not repeat it."""
    proc = subprocess.run(
        [sys.executable, "-c", EXITING_TOLD, unreachable_url(), str(tmp_path)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().startswith("told:") and "cannot connect" in proc.stdout.decode()
    assert "stay in journal" not in proc.stderr.decode()
    (journal,) = tmp_path.glob("*.sqlite")
    assert [e.path for e in list_entries(journal)] == ["/exit.md"]
