"""``make demo`` (``python -m deeplake_sdk.demo``): runs end to end and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def test_demo_runs_a_session_and_stops_its_postgres(tmp_path):
    # Everything the demo creates (server work dir, PostgreSQL data) goes under this TMPDIR,
    # so its PostgreSQL is recognisable by the data dir on its command line.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPLAKE_")}
    env["TMPDIR"] = str(tmp)
    env["DEEPLAKE_CREDENTIALS"] = str(tmp_path / "none.json")
    proc = subprocess.run(
        [sys.executable, "-m", "deeplake_sdk.demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # the sections, in order
    positions = [
        out.index(title)
        for title in (
            "[1] starting the local server",
            "[2] opening the memory filesystem",
            "[3] an agent session",
            "[4] writing and appending memory",
            "[5] grep",
            "[6] /index.md",
            "[7] stopping the server",
        )
    ]
    assert positions == sorted(positions)
    session = "/sessions/ada/ada_local_demo_launch.jsonl"
    assert f"3 events stored in {session}" in out
    # grep output in GNU format, an append visible in it
    assert "/projects/launch.md:2:Decision: launch on June 3" in out
    assert "/projects/launch.md:5:Venue: booked by Ada on June 1" in out
    assert "/people/grace.md:1\n" in out  # grep -c
    assert f"{session}\n" in out  # grep -l --sessions
    # the generated index lists the files and the session
    assert "# Memory index" in out and "## Sessions" in out
    assert "what happened today" in out and "(3 events)" in out
    assert "stopped; temporary data removed" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert proc.stderr == ""
    # nothing left running or on disk
    assert processes_mentioning(str(tmp)) == []
    assert list(tmp.iterdir()) == []
