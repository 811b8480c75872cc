"""Acknowledged writes survive whatever kills the writing process (real processes, signals)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from waiting import poll

WRITER = str(Path(__file__).with_name("journal_worker.py"))
SESSIONS = str(Path(__file__).with_name("sessions_worker.py"))


def spawn(
    script: str, srv, workspace: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, script, srv.url, srv.token, srv.org, workspace, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )


def resume(srv, workspace: str, journal: str) -> None:
    proc = spawn(SESSIONS, srv, workspace, journal, "resume")
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()  # never left running against the session's server
        out, err = proc.communicate(timeout=60)
        raise AssertionError(f"resume did not finish in 240 s; its log:\n{err[-6000:]}") from None
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1]) == {"resumed": True, "left": 0}


def files(raw) -> dict[str, list[str]]:
    rows = raw.rows("SELECT path, summary FROM memory ORDER BY path")
    out: dict[str, list[str]] = {}
    for path, text in rows:
        out.setdefault(path, []).append(text)
    return out


KILLS = [
    (signal.SIGKILL, 0.05, "plain", "slow"),
    (signal.SIGKILL, 0.5, "plain", "slow"),
    (signal.SIGKILL, 2.0, "plain", "slow"),
    (signal.SIGKILL, 0.5, "plain", "down"),
    (signal.SIGTERM, 0.05, "plain", "slow"),
    (signal.SIGTERM, 0.5, "plain", "slow"),
    (signal.SIGTERM, 2.0, "plain", "slow"),
    (signal.SIGKILL, 0.05, "patched", "slow"),
    (signal.SIGTERM, 0.05, "patched", "slow"),
]


@pytest.mark.parametrize(("sig", "delay", "patch", "service"), KILLS)
def test_a_script_killed_after_five_writes_keeps_all_five(
    srv, raw, workspace, tmp_path, sig, delay, patch, service
):
    """``slow``: 300 ms per request, so the kill lands while the writes are being sent;
    ``down``: every request refused, so only the journal can hold them."""
    journal = str(tmp_path / "journal")
    proc = spawn(WRITER, srv, workspace, journal, patch, "write_then_sleep", "5", "60")
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "ready"  # the filesystem is open
    srv.set_faults(**({"latency_fixed_ms": 300} if service == "slow" else {"p_503": 1.0}))
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "written"  # the five calls have returned
    time.sleep(delay)  # the moment of the kill is the scenario's parameter
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode == -sig
    expected = {f"/k/{i}.md": [f"file {i}\n"] for i in range(5)}
    srv.set_faults(profile="none")
    if sig == signal.SIGTERM:
        assert files(raw) == expected  # stored before the process exited
    else:
        assert len(files(raw)) < 5 or delay > 0.05  # the journal, not speed, kept them
    resume(srv, workspace, journal)
    assert files(raw) == expected  # exactly the five, once each


#: How long the server holds the killed process's write before running it (seconds).
STALE_S = 10


def killed_after_change(
    srv, workspace: str, journal: str, args: list[str], said: str, *, held: bool = False, **faults
) -> None:
    """Run the writer with ``args`` until it is ready; under ``faults``, let it make its change
    (it prints ``said``) and SIGKILL it: with ``held``, once the change reached the server.
    Faults are off again on return."""
    proc = spawn(WRITER, srv, workspace, journal, "plain", *args)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "ready"
    srv.set_faults(**faults)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == said
    if held:
        poll(lambda: srv.stats()["inflight"] >= 1, "the change to reach the server", timeout=30)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    srv.set_faults(profile="none")  # later requests run at once; a held one keeps its delay


#: What the file holds once the killed process's change is resumed, by kind of change.
RESUMED = {
    "rewrite": {"/k/0.md": ["second\n"]},
    "append": {"/k/0.md": ["first\nmore\n"]},
    "delete": {},
}


@pytest.mark.parametrize("kind", list(RESUMED))
def test_a_change_a_killed_process_left_in_flight_never_undoes_a_newer_write(
    srv, raw, workspace, tmp_path, fs, kind
):
    """A request still queued on the service when its process dies runs after newer writes.

    The worker's rewrite, append or delete of a file it knows is one statement, held
    ``STALE_S`` by the server; the worker is killed, resumed (the change applied again at once)
    and the file written once more (to the size it had before the append); then the held
    statement runs: the newer write must stay."""
    journal = str(tmp_path / "journal")
    args = ["change_then_sleep", kind, "60"]
    killed_after_change(
        srv, workspace, journal, args, "changed", held=True, latency_fixed_ms=STALE_S * 1000
    )
    resume(srv, workspace, journal)
    assert files(raw) == RESUMED[kind]
    fs.write_text("/k/0.md", "third\n")
    fs.flush()
    assert srv.stats()["inflight"] >= 1, f"the held change ran within {STALE_S} s: too early"
    poll(lambda: srv.stats()["inflight"] == 0, "the held change to run", timeout=STALE_S + 60)
    assert files(raw) == {"/k/0.md": ["third\n"]}


def test_a_write_a_killed_process_journaled_is_not_replayed_over_a_newer_one(
    srv, raw, workspace, tmp_path, fs
):
    """Resumed later, a killed process's write is older than one made since: it is done
    without replacing it (the service was down: only the journal held it)."""
    journal = str(tmp_path / "journal")
    args = ["change_then_sleep", "rewrite", "60"]
    killed_after_change(srv, workspace, journal, args, "changed", p_503=1.0)
    fs.write_text("/k/0.md", "third\n")
    fs.flush()
    resume(srv, workspace, journal)  # {"left": 0}: done, not given up on
    assert files(raw) == {"/k/0.md": ["third\n"]}


def replay(acked: list[dict], maybe: list[dict]) -> tuple[dict[str, set[str]], set[str]]:
    """Contents each file may end with, and the event ids that must exist."""
    contents: dict[str, list[str]] = {}
    events: set[str] = set()
    for op in acked:
        if op["kind"] == "event":
            events.add(op["id"])
        elif op["kind"] == "write":
            contents[op["path"]] = [op["text"]]
        else:
            contents.setdefault(op["path"], [""])
            contents[op["path"]] = [c + op["text"] for c in contents[op["path"]]]
    allowed = {p: set(c) for p, c in contents.items()}
    for op in maybe:  # journaled perhaps, never acknowledged: applied or not, exactly once
        if op["kind"] == "write":  # not applied: the file stays as it was, or absent
            allowed.setdefault(op["path"], {""}).add(op["text"])
        elif op["kind"] == "append":
            base = allowed.get(op["path"], {""})
            allowed[op["path"]] = base | {c + op["text"] for c in base}
    return allowed, events


#: Runs of the kill test per process model (``DEEPLAKE_KILL_RUNS=10`` for the full acceptance).
KILL_RUNS = int(os.environ.get("DEEPLAKE_KILL_RUNS", "3"))


@pytest.mark.slow
@pytest.mark.parametrize("lag_ms", [200, 1000])
@pytest.mark.parametrize("patch", ["plain", "patched"])
def test_fifty_sessions_killed_at_random_moments_resume_exactly(
    srv, raw, tmp_path, workspace, patch, lag_ms
):
    """Beta profile + lost commits + read lag: 50 sessions per run, SIGKILLed, then resumed.

    At 1 s of lag the writes a killed process sent are still hidden when the next one resumes
    them: it must neither create them again nor send again the appends they carried."""
    rng = random.Random(2024)
    for run in range(KILL_RUNS):
        ws = f"{workspace}_{run}"
        journal = str(tmp_path / f"journal-{run}")
        srv.set_faults(profile="beta", seed=run, p_commit_fail=0.02, read_lag_ms=lag_ms)
        proc = spawn(
            SESSIONS,
            srv,
            ws,
            journal,
            "run",
            "50",
            str(run),
            env={"SESSIONS_WORKER_PATCH": "1" if patch == "patched" else "0"},
        )
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"ready": True}
        kill_at = time.monotonic() + rng.uniform(0.5, 3.0)
        lines = []
        while time.monotonic() < kill_at:
            lines.append(proc.stdout.readline())
        proc.kill()
        proc.wait(timeout=60)
        rest = proc.stdout.read()  # not communicate(): it skips what readline() buffered
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
        intents: dict[tuple[int, int], dict] = {}
        acked: list[dict] = []
        for line in [*lines, *rest.splitlines()]:
            try:
                message = json.loads(line)
            except ValueError:
                continue  # the line the kill cut short
            if "intent" in message:
                op = message["intent"]
                intents[(op["s"], op["step"])] = op
            elif "acked" in message:
                op = message["acked"]
                intents.pop((op["s"], op["step"]), None)
                acked.append(op)
        assert len(acked) > 50, f"run {run}: too few writes before the kill"
        resume(srv, ws, journal)
        srv.set_faults(profile="none")
        allowed, events = replay(acked, list(intents.values()))
        stored = {}
        for path, texts in raw.rows("SELECT path, summary FROM memory", workspace=ws):
            assert path not in stored, f"run {run}: duplicate rows for {path}"
            stored[path] = texts
        for path, options in allowed.items():
            mine = [{**o, "acked": True} for o in acked if o.get("path") == path] + [
                {**o, "acked": False} for o in intents.values() if o.get("path") == path
            ]
            assert stored.get(path, "") in options, (  # "": no row (nothing applied)
                f"run {run}: {path} holds {stored.get(path)!r}; its writes: {mine}"
            )
        assert set(stored) <= set(allowed)
        ids = Counter(r[0] for r in raw.rows("SELECT id FROM sessions", workspace=ws))
        assert all(n == 1 for n in ids.values()), f"run {run}: duplicated events"
        maybe_events = {op["s"] for op in intents.values() if op["kind"] == "event"}
        assert events <= set(ids), f"run {run}: acknowledged events lost"
        assert len(ids) - len(events) <= len(maybe_events)


def test_journal_flush_command_sends_what_a_killed_process_left(srv, raw, workspace, tmp_path):
    journal = str(tmp_path / "journal")
    args = ["write_then_sleep", "5", "60"]  # 503s: only the journal holds the writes
    killed_after_change(srv, workspace, journal, args, "written", p_503=1.0)
    assert files(raw) == {}
    cli = [sys.executable, "-m", "deeplake_sdk.cli", "journal", "flush", "--root", journal]
    creds = ["--url", srv.url, "--token", srv.token, "--org", srv.org, "--workspace", workspace]
    done = subprocess.run(
        [*cli, *creds, "--json"], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert (report["pending"], report["rejected"]) == (0, 0)
    assert files(raw) == {f"/k/{i}.md": [f"file {i}\n"] for i in range(5)}
    again = subprocess.run([*cli, *creds], check=False, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "0 pending, 0 rejected" in again.stdout
