"""Exactness of journaled writes racing across processes (real processes, real server)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from deeplake_sdk import DeeplakeFs

WORKER = str(Path(__file__).with_name("journal_worker.py"))


def start(srv, workspace, journal, patch, *args) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, srv.url, srv.token, srv.org, workspace, journal, patch, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
        assert json.loads(out.strip().splitlines()[-1])["ok"]


def journals(kind: str, tmp_path: Path, n: int) -> list[str]:
    """One journal shared by the processes (one host), or one each (as on separate hosts)."""
    if kind == "shared":
        return [str(tmp_path / "journal")] * n
    return [str(tmp_path / f"journal-{i}") for i in range(n)]


@pytest.mark.parametrize("patch", ["plain", "patched"])
@pytest.mark.parametrize("kind", ["shared", "separate"])
@pytest.mark.parametrize("nprocs", [2, 4])
def test_appends_of_processes_to_a_new_file_all_apply_once(
    srv, api, workspace, tmp_path, nprocs, kind, patch
):
    with DeeplakeFs(api, cache=False, journal=False):
        pass  # the tables exist before the race
    go = tmp_path / "go"
    procs = [
        start(srv, workspace, j, patch, "append_many", str(go), "/race/log.txt", f"p{i}", "100")
        for i, j in enumerate(journals(kind, tmp_path, nprocs))
    ]
    go.touch()
    finish(procs)
    rows = api.query("SELECT summary, size_bytes FROM memory WHERE path = '/race/log.txt'")
    assert len(rows) == 1
    lines = rows[0]["summary"].splitlines()
    assert Counter(lines) == Counter(f"p{i} {k}" for i in range(nprocs) for k in range(100))
    assert rows[0]["size_bytes"] == len(rows[0]["summary"].encode())
    for i in range(nprocs):  # each process's appends in its own order
        mine = [line for line in lines if line.startswith(f"p{i} ")]
        assert mine == [f"p{i} {k}" for k in range(100)]


@pytest.mark.parametrize("kind", ["shared", "separate"])
def test_writers_of_one_new_path_leave_one_row_with_one_of_the_contents(
    srv, api, workspace, tmp_path, kind
):
    with DeeplakeFs(api, cache=False, journal=False):
        pass
    go = tmp_path / "go"
    procs = [
        start(srv, workspace, j, "plain", "write_many", str(go), "/race/one.md", f"p{i}", "100")
        for i, j in enumerate(journals(kind, tmp_path, 4))
    ]
    go.touch()
    finish(procs)
    rows = api.query("SELECT summary FROM memory WHERE path = '/race/one.md'")
    assert len(rows) == 1
    assert rows[0]["summary"] in {f"p{i} {k}" for i in range(4) for k in range(100)}
