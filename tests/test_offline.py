"""Where the service cannot be connected to (nothing listens at its address, or connections
hang): opening a filesystem or a session log, the wait for an earlier process's writes and the
exit drain make one attempt instead of waiting out the outage; what was journaled stays
journaled.

(A command's and the hooks' side: ``test_cli_fs.py`` and ``test_integrations_hooks.py``.)
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from deeplake_sdk import (
    ConnectError,
    DeeplakeApi,
    DeeplakeFs,
    FlushError,
    NetworkError,
    SessionLog,
    Timeout,
    transport,
)
from deeplake_sdk.api_types import QUICK_CONNECT_S
from deeplake_sdk.journal.store import list_entries
from deeplake_sdk.retry import RetryPolicy
from deeplake_sdk.server.blackhole import Blackhole

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


#: The same where connections hang; at exit (after the SDK's exit drain: handlers run last
#: registered first), the connection attempts the whole program made.
EXITING_HUNG = (
    """
import atexit
from deeplake_sdk import transport
atexit.register(
    lambda: print("attempts:", sum(e.requests_sent for e in transport._registry.values()))
)
"""
    + EXITING
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


def test_a_policy_that_does_not_retry_connections_skips_an_origin_whose_connect_hung():
    waits, once = RetryPolicy(), RetryPolicy(retry_connect=False)
    assert not waits.skips_connect(0.0)
    assert not once.skips_connect(None)  # nothing hung since the origin last answered
    assert once.skips_connect(0.0) and once.skips_connect(once.connect_cooldown - 0.1)
    assert not once.skips_connect(once.connect_cooldown)
    assert not RetryPolicy(retry_connect=False, connect_cooldown=0).skips_connect(0.0)
    with pytest.raises(ValueError):
        RetryPolicy(connect_cooldown=-1)


def test_a_client_that_does_not_retry_connections_does_not_wait_long_for_one():
    api = DeeplakeApi("t", "org", "ws", unreachable_url(), timeout=30)
    once = api.connect_once()
    assert api.timeout.connect > QUICK_CONNECT_S
    assert once.timeout == Timeout(statement=30, connect=QUICK_CONNECT_S)
    short = DeeplakeApi("t", "org", "ws", unreachable_url(), timeout=Timeout(connect=1.0))
    assert short.connect_once().timeout.connect == 1.0


def test_a_connection_that_hung_is_not_tried_again_by_clients_that_do_not_wait_for_one():
    with Blackhole() as hole:
        api = DeeplakeApi("t", "org", "ws", hole.url, timeout=Timeout(connect=0.3), retries=0)
        once = api.connect_once()
        with pytest.raises(ConnectError) as hung:
            once.list_tables()
        assert hung.value.timed_out and "within 0.3s" in str(hung.value)
        sent = once.endpoint.requests_sent
        with pytest.raises(ConnectError) as skipped:
            once.list_tables()
        assert skipped.value.timed_out and str(skipped.value).startswith("not sent")
        assert once.endpoint.requests_sent == sent
        with pytest.raises(ConnectError):  # a client that waits for connections still tries
            api.list_tables()
        assert api.endpoint.requests_sent == sent + 1


def test_requests_not_sent_do_not_extend_the_cooldown():
    """Once the cooldown since the last connection that hung has passed, one is tried again."""
    policy = RetryPolicy(retries=0, connect_cooldown=0.5)
    with Blackhole() as hole:
        api = DeeplakeApi("t", "org", "ws", hole.url, timeout=Timeout(connect=0.3), retries=policy)
        once = api.connect_once()
        with pytest.raises(ConnectError):
            once.list_tables()
        sent = once.endpoint.requests_sent
        for _ in range(200):  # 10 s: twenty times the cooldown
            with pytest.raises(ConnectError) as failed:
                once.list_tables()
            if not str(failed.value).startswith("not sent"):
                break
            assert once.endpoint.requests_sent == sent
            time.sleep(0.05)
        assert "within 0.3s" in str(failed.value)  # tried again once the cooldown passed
        assert once.endpoint.requests_sent == sent + 1


def test_a_refused_connection_sets_no_cooldown():
    once = DeeplakeApi("t", "org", "ws", unreachable_url()).connect_once()
    for _ in range(2):
        with pytest.raises(ConnectError) as refused:
            once.list_tables()
        assert not refused.value.timed_out
    assert once.endpoint.requests_sent == 2
    assert once.endpoint.connect_hung_for() is None


def test_an_answer_of_the_origin_ends_the_cooldown(srv, workspace):
    api = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    once = api.connect_once()
    transport._connect_hung[api.endpoint.origin] = time.monotonic()  # as after a hung connect
    with pytest.raises(ConnectError):
        once.list_tables()
    api.list_tables()  # a client that waits for connections is answered
    assert api.endpoint.connect_hung_for() is None
    assert isinstance(once.list_tables(), list)
    api.close()


def test_a_program_whose_connections_hang_tries_to_connect_once(tmp_path):
    """Its open, its write's check and its exit drain: one connect timeout in all (the open
    probes both tables at once), not one per step; the write stays journaled."""
    with Blackhole() as hole:
        proc = subprocess.run(
            [sys.executable, "-c", EXITING_HUNG, hole.url, str(tmp_path)],
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr.decode()
    (attempts,) = [line for line in proc.stdout.decode().splitlines() if "attempts" in line]
    assert 1 <= int(attempts.split()[-1]) <= 2, proc.stderr.decode()
    assert "stay in journal" in proc.stderr.decode()
    (journal,) = tmp_path.glob("*.sqlite")
    assert [e.path for e in list_entries(journal)] == ["/exit.md"]
