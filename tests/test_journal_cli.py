"""``deeplake-sdk journal status|ls`` on real journal files."""

from __future__ import annotations

import json

import pytest

from deeplake_sdk.cli import main
from deeplake_sdk.cli.journal_cmd import format_age
from deeplake_sdk.journal import JournalStore, NewEntry, journal_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def root(tmp_path):
    with JournalStore.open(tmp_path, "https://api.deeplake.ai", "acme", "default") as s:
        a, b, _ = s.append(
            [
                NewEntry("put", "memory", "/notes/a.md", b"hello"),
                NewEntry("event", "sessions", "/sessions/u/s.jsonl", b"{}"),
                NewEntry("append", "memory", "/notes/a.md", b"more", {"expect": 5}),
            ]
        )
        s.begin_attempt([a])
        s.reject(b, "HTTP 413: request body too large")
    with JournalStore.open(tmp_path, "http://127.0.0.1:8080", "acme", "dev") as s:
        s.append([NewEntry("delete", "memory", "/old.md")])
    return tmp_path


def test_status_lists_each_journal(capsys, root):
    code, out, err = run(capsys, "journal", "status", "--root", str(root))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"journals under {root}"
    assert lines[1].split(" | ")[:7] == [
        "origin".ljust(23),
        "org ",
        "workspace",
        "pending",
        "rejected",
        "bytes",
        "oldest",
    ]
    rows = [[c.strip() for c in line.split("|")] for line in lines[3:5]]
    assert [r[:6] for r in rows] == [
        ["http://127.0.0.1:8080", "acme", "dev", "1", "0", "0"],
        ["https://api.deeplake.ai", "acme", "default", "2", "1", "11"],
    ]
    assert rows[1][7].endswith(" (2)")  # one owner wrote the 2 pending entries


def test_status_json(capsys, root):
    code, out, _ = run(capsys, "journal", "status", "--root", str(root), "--json")
    assert code == 0
    items = json.loads(out)
    assert [(i["workspace"], i["pending"], i["rejected"], i["bytes"]) for i in items] == [
        ("dev", 1, 0, 0),
        ("default", 2, 1, 11),
    ]
    assert all(0 <= i["oldest_age_s"] < 3600 and i["error"] is None for i in items)
    assert items[1]["path"] == str(journal_path(root, "https://api.deeplake.ai", "acme", "default"))


def test_ls_entries_and_filters(capsys, root):
    code, out, _ = run(capsys, "journal", "ls", "--root", str(root), "--workspace", "default")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("https://api.deeplake.ai org=acme workspace=default (")
    assert [c.strip() for c in lines[1].split("|")] == [
        "seq", "op", "table", "path", "size", "age", "attempts", "state", "error"
    ]  # fmt: skip
    cells = [[c.strip() for c in line.split("|")] for line in lines[3:6]]
    assert [c[:5] + c[6:] for c in cells] == [
        ["1", "put", "memory", "/notes/a.md", "5", "1", "pending", ""],
        ["2", "event", "sessions", "/sessions/u/s.jsonl", "2", "0", "rejected",
         "HTTP 413: request body too large"],
        ["3", "append", "memory", "/notes/a.md", "4", "0", "pending", ""],
    ]  # fmt: skip
    assert lines[6] == "(3 rows)"

    code, out, _ = run(capsys, "journal", "ls", "--root", str(root), "--rejected", "--json")
    (entry,) = json.loads(out)
    assert (entry["seq"], entry["state"], entry["workspace"]) == (2, "rejected", "default")
    assert entry["error"] == "HTTP 413: request body too large" and "data" not in entry

    code, out, _ = run(capsys, "journal", "ls", "--root", str(root), "--limit", "1", "--json")
    assert [(e["workspace"], e["seq"]) for e in json.loads(out)] == [("dev", 1), ("default", 1)]
    code, out, _ = run(capsys, "journal", "ls", "--root", str(root), "--org", "other")
    assert code == 0 and out == f"no journal under {root} matches --org/--workspace\n"


def test_empty_root_and_unreadable_journal(capsys, tmp_path):
    code, out, _ = run(capsys, "journal", "status", "--root", str(tmp_path / "none"))
    assert code == 0 and out == f"no journals under {tmp_path / 'none'}\n"
    bad = journal_path(tmp_path, "https://h", "o", "w")
    bad.write_bytes(b"not a database" * 100)
    for command in ("status", "ls"):
        code, out, err = run(capsys, "journal", command, "--root", str(tmp_path))
        assert code == 2
        assert f"journal file {bad} is unreadable" in err and "nothing was dropped" in err
    assert bad.read_bytes() == b"not a database" * 100


def test_default_root_comes_from_the_environment(capsys, root, monkeypatch):
    monkeypatch.setenv("DEEPLAKE_JOURNAL_DIR", str(root))
    code, out, _ = run(capsys, "journal", "status", "--json")
    assert code == 0 and len(json.loads(out)) == 2


def test_format_age():
    assert [format_age(s) for s in (None, -1, 5, 59.9, 60, 3599, 7200, 86400 * 3)] == [
        "-", "0s", "5s", "59s", "1m", "59m", "2h", "3d"
    ]  # fmt: skip
