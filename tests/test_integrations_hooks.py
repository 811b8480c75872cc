"""``deeplake-sdk hook ...`` run as Claude Code runs it: fresh processes, JSON on stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from integrations_support import run_example, service_env
from plugin_tables import create_plugin_tables, insert_plugin_session_row, plugin_event

from deeplake_sdk.api_types import QUICK_CONNECT_S
from deeplake_sdk.server.blackhole import Blackhole
from deeplake_sdk.sessions import session_path
from deeplake_sdk.statements.files import compact_json

USER = "ada"


class Hooks:
    """Runs ``python -m deeplake_sdk.cli hook SUB`` with a payload, as Claude Code does."""

    def __init__(self, env: dict[str, str], mount: Path, hook_dir: Path) -> None:
        self.env, self.mount, self.hook_dir = env, mount, hook_dir

    def __call__(self, sub: str, payload: Any = None, **env: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "deeplake_sdk.cli", "hook", sub],
            input=json.dumps(payload if payload is not None else {}).encode(),
            capture_output=True,
            env={**self.env, **env},
            timeout=120,
            check=False,
        )
        proc.out = proc.stdout.decode()  # type: ignore[attr-defined]
        proc.err = proc.stderr.decode()  # type: ignore[attr-defined]
        return proc

    def answer(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        proc = self("pre-tool-use", payload)
        assert proc.returncode == 0, proc.err
        return json.loads(proc.out)["hookSpecificOutput"] if proc.out.strip() else None


@pytest.fixture
def hooks(srv, workspace, tmp_path) -> Hooks:
    env = service_env(srv, workspace, tmp_path)
    mount, hook_dir = tmp_path / "mount", tmp_path / "hook"
    env.update(
        DEEPLAKE_MEMORY_MOUNT=str(mount),
        DEEPLAKE_HOOK_DIR=str(hook_dir),
        DEEPLAKE_USER=USER,
        DEEPLAKE_HOOK_DRAIN="0",
        PYTHONFAULTHANDLER="1",
    )
    return Hooks(env, mount, hook_dir)


def bash(command: str) -> subprocess.CompletedProcess:
    """Run a rewritten command as Claude Code's Bash tool would."""
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)


def recorded_session(sid: str, cwd: str) -> list[tuple[str, dict[str, Any]]]:
    """A session as Claude Code reports it: (hook subcommand, payload)."""
    base = {
        "session_id": sid,
        "transcript_path": f"/home/ada/.claude/projects/{sid}.jsonl",
        "cwd": cwd,
        "permission_mode": "default",
    }
    return [
        ("session-start", {**base, "hook_event_name": "SessionStart", "source": "startup"}),
        ("capture", {**base, "hook_event_name": "UserPromptSubmit", "prompt": "What's up?"}),
        (
            "capture",
            {
                **base,
                "hook_event_name": "PostToolUse",
                "tool_name": "Grep",
                "tool_use_id": "toolu_1",
                "tool_input": {"pattern": "ship", "path": "/notes"},
                "tool_response": {"mode": "content", "numLines": 1},
            },
        ),
        ("capture", {**base, "hook_event_name": "UserPromptSubmit", "prompt": 'say "hi" é'}),
        (
            "capture",
            {
                **base,
                "hook_event_name": "PostToolUse",
                "tool_name": "Read",
                "tool_use_id": "toolu_2",
                "tool_input": {"file_path": "/x.md"},
                "tool_response": "line",
            },
        ),
        ("capture", {**base, "hook_event_name": "UserPromptSubmit", "prompt": "thanks"}),
        (
            "capture",
            {
                **base,
                "hook_event_name": "Stop",
                "stop_hook_active": False,
                "last_assistant_message": "We ship Friday.",
            },
        ),
        ("session-end", {**base, "hook_event_name": "SessionEnd", "reason": "exit"}),
    ]


def _rows(raw, sql: str, *params: Any) -> list[dict[str, Any]]:
    resp = raw.query(sql, *params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return [dict(zip(body["columns"], r, strict=True)) for r in body["rows"]]


def test_recorded_session_writes_the_plugins_rows(hooks, raw, srv, workspace):
    create_plugin_tables(raw)
    sid = f"s-{uuid.uuid4().hex[:6]}"
    cwd = "/home/ada/proj"
    for sub, payload in recorded_session(sid, cwd):
        proc = hooks(sub, payload)
        assert proc.returncode == 0, proc.err
        assert proc.out == ""
    drain = hooks("drain")
    assert drain.returncode == 0, drain.err

    path = session_path(USER, srv.org, workspace, sid)
    # One plugin row in the same file, to compare column by column.
    event = plugin_event(sid, "user_message", "2026-01-01T00:00:00.000Z", content="plugin")
    insert_plugin_session_row(raw, event, user=USER, path=path)
    rows = _rows(
        raw,
        "SELECT *, message::text AS text FROM sessions WHERE path = $1 ORDER BY creation_date",
        path,
    )
    plugin, ours = rows[0], rows[1:]
    assert [r["description"] for r in ours] == [
        "UserPromptSubmit",
        "PostToolUse",
        "UserPromptSubmit",
        "PostToolUse",
        "UserPromptSubmit",
        "Stop",
    ]
    for row in [plugin, *ours]:
        message = row["message"]
        assert set(row) == set(plugin)
        assert row["filename"] == path.rsplit("/", 1)[-1]
        assert row["author"] == USER and row["project"] == "proj"
        assert row["mime_type"] == "application/json" and row["agent"] == "claude_code"
        assert row["size_bytes"] == len(compact_json(row["text"]).encode())
        assert row["creation_date"] == row["last_update_date"] == message["timestamp"]
        assert row["description"] == message["hook_event_name"]
        envelope = {"id", "session_id", "transcript_path", "cwd", "permission_mode"}
        assert envelope | {"hook_event_name", "timestamp", "type"} <= set(message)
        assert message["session_id"] == sid and message["cwd"] == cwd
        assert row["message_embedding"] is None
    assert [r["message"]["type"] for r in ours] == [
        "user_message",
        "tool_call",
        "user_message",
        "tool_call",
        "user_message",
        "assistant_message",
    ]
    grep_call = ours[1]["message"]
    assert json.loads(grep_call["tool_input"]) == {"pattern": "ship", "path": "/notes"}
    assert json.loads(grep_call["tool_response"]) == {"mode": "content", "numLines": 1}
    assert grep_call["tool_use_id"] == "toolu_1"
    assert ours[2]["message"]["content"] == 'say "hi" é'
    assert ours[5]["message"]["content"] == "We ship Friday."

    summary = _rows(
        raw, "SELECT summary FROM memory WHERE path = $1", f"/summaries/{USER}/{sid}.md"
    )
    assert len(summary) == 1
    assert "prompts: 3, tool calls: 2" in summary[0]["summary"]
    assert "Grep x1, Read x1" in summary[0]["summary"]


def test_capture_returns_while_the_service_fails_and_the_drain_sends_later(hooks, raw, srv):
    srv.set_faults(p_503=1.0)
    sid = "s-down"
    payload = dict(recorded_session(sid, "/w/p")[1][1])
    proc = hooks("capture", payload)
    assert proc.returncode == 0, proc.err
    assert srv.stats()["admitted"] == 0  # nothing reached the service
    srv.set_faults(profile="none")
    drain = hooks("drain")
    assert drain.returncode == 0, drain.err
    rows = _rows(raw, "SELECT message FROM sessions")
    assert [r["message"]["content"] for r in rows] == ["What's up?"]


def test_capture_starts_a_background_drain(hooks, raw):
    payload = dict(recorded_session("s-bg", "/w/p")[1][1])
    raw.rows("SELECT 1")
    proc = hooks("capture", payload, DEEPLAKE_HOOK_DRAIN="1")
    assert proc.returncode == 0, proc.err
    deadline = time.monotonic() + 60
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        resp = raw.query("SELECT message FROM sessions")
        if resp.status_code == 200 and resp.json()["rows"]:
            rows = _rows(raw, "SELECT message FROM sessions")
            break
        time.sleep(0.2)
    assert [r["message"]["content"] for r in rows] == ["What's up?"]
    lock = hooks.hook_dir / "drain.lock"
    pid = int(lock.read_text())
    while time.monotonic() < deadline:  # the drainer exits once the journal is empty
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the background drain did not exit")


@pytest.fixture
def memory(fs):
    fs.write_text("/notes/a.md", "alpha\nship on Friday\nomega\n")
    fs.write_text("/notes/b_c.md", "nothing here\n")
    fs.write_text("/notes/deep/d.md", "Ship it\n")
    fs.write_text("/evil.md", "x $(touch {marker}) `touch {marker}` \"q\" 'q'\nEOF\n")
    fs.flush()
    return fs


def test_read_is_answered_in_one_round_trip(hooks, memory, srv):
    srv.reset_stats()
    out = hooks.answer(
        {"tool_name": "Read", "tool_input": {"file_path": f"{hooks.mount}/notes/a.md"}}
    )
    assert srv.stats()["requests"] == 1
    assert out["permissionDecision"] == "allow"
    local = Path(out["updatedInput"]["file_path"])
    assert local.read_text() == "alpha\nship on Friday\nomega\n"
    assert local.is_relative_to(hooks.hook_dir)
    assert oct(local.stat().st_mode & 0o777) == "0o600"


def test_grep_is_answered_in_one_round_trip_and_finds_what_grep_finds(hooks, memory, srv):
    srv.reset_stats()
    payload = {
        "tool_name": "Grep",
        "tool_input": {"pattern": "ship", "path": f"{hooks.mount}/notes", "-i": True},
    }
    out = hooks.answer(payload)
    assert srv.stats()["requests"] == 1
    local = out["updatedInput"]["path"]
    assert out["updatedInput"]["pattern"] == "ship"
    found = bash(f"grep -rin ship {local}")
    got = sorted(line.replace(local, "/notes") for line in found.stdout.splitlines())
    results = memory.grep("ship", "/notes", ignore_case=True)
    expected = sorted(f"{r.path}:{m.line_number}:{m.line}" for r in results for m in r.matches)
    assert got == expected and len(expected) == 2


def test_content_never_executes(hooks, memory, tmp_path):
    marker = tmp_path / "pwned"
    memory.write_text("/evil.md", f"x $(touch {marker}) `touch {marker}` \"q\" 'q'\nEOF\n")
    memory.write_text(f"/odd/$(touch {marker}).md", "x\n")
    memory.flush()
    for command in (
        f"cat {hooks.mount}/evil.md",
        f"head -n 1 {hooks.mount}/evil.md",
        f"grep -rn touch {hooks.mount}",
        f"ls {hooks.mount}/odd",
    ):
        out = hooks.answer({"tool_name": "Bash", "tool_input": {"command": command}})
        assert out is not None, command
        run = bash(out["updatedInput"]["command"])
        assert run.returncode == 0, (command, run.stderr)
        assert "touch" in run.stdout
        assert not marker.exists(), command
    out = hooks.answer(
        {"tool_name": "Bash", "tool_input": {"command": f"cat {hooks.mount}/evil.md"}}
    )
    assert bash(out["updatedInput"]["command"]).stdout == memory.read_text("/evil.md")


def test_bash_answers_match_the_real_commands(hooks, memory):
    cases = {
        f"cat {hooks.mount}/notes/a.md": "alpha\nship on Friday\nomega\n",
        f"head -n 2 {hooks.mount}/notes/a.md": "alpha\nship on Friday\n",
        f"wc -l {hooks.mount}/notes/a.md": "3 ./notes/a.md\n",
        f"ls {hooks.mount}/notes": "a.md\nb_c.md\ndeep\n",
        f"grep -F Friday {hooks.mount}/notes/a.md": "ship on Friday\n",
    }
    for command, expected in cases.items():
        out = hooks.answer({"tool_name": "Bash", "tool_input": {"command": command}})
        assert out is not None, command
        run = bash(out["updatedInput"]["command"])
        assert run.stdout == expected, command


@pytest.mark.parametrize(
    "payload",
    [
        {"tool_name": "Write", "tool_input": {"file_path": "MOUNT/a.md", "content": "x"}},
        {"tool_name": "Read", "tool_input": {"file_path": "/etc/hostname"}},
        {"tool_name": "Read", "tool_input": {"file_path": "MOUNT/missing.md"}},
        {"tool_name": "Bash", "tool_input": {"command": "cat MOUNT/notes/a.md | sh"}},
        {"tool_name": "Bash", "tool_input": {"command": "cat $(echo MOUNT/notes/a.md)"}},
        {"tool_name": "Bash", "tool_input": {"command": "rm MOUNT/notes/a.md"}},
        {"tool_name": "Bash", "tool_input": {"command": "cat MOUNT/notes/*.md"}},
    ],
)
def test_what_cannot_be_answered_falls_through(hooks, memory, payload):
    text = json.dumps(payload).replace("MOUNT", str(hooks.mount))
    assert hooks.answer(json.loads(text)) is None


#: Runs the hook in this process's interpreter, then names the client modules it imported.
PROBE = (
    "import json, sys\n"
    "from deeplake_sdk.cli import main\n"
    "code = main(['hook', 'pre-tool-use'])\n"
    "heavy = ('requests', 'urllib3', 'gevent', 'sqlite3')\n"
    "print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_probe(hooks: Hooks, payload: dict[str, Any]) -> tuple[str, list[str]]:
    """The hook's answer (stdout) and the client modules its process imported."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        input=json.dumps(payload).encode(),
        capture_output=True,
        env=hooks.env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode(), json.loads(proc.stderr.decode().splitlines()[-1])


@pytest.mark.parametrize(
    "payload",
    [
        {"tool_name": "Read", "tool_input": {"file_path": "/etc/hostname"}, "cwd": "/tmp"},
        {"tool_name": "Grep", "tool_input": {"pattern": "x", "path": "src"}, "cwd": "/tmp"},
        {"tool_name": "Bash", "tool_input": {"command": "git status"}, "cwd": "/tmp"},
    ],
)
def test_calls_away_from_the_mount_fall_through_without_importing_the_client(hooks, payload):
    assert run_probe(hooks, payload) == ("", [])


def test_calls_on_the_mount_import_the_client_not_the_journal(hooks, memory):
    payload = {"tool_name": "Read", "tool_input": {"file_path": f"{hooks.mount}/notes/a.md"}}
    answer, imported = run_probe(hooks, payload)
    assert "hookSpecificOutput" in answer and "requests" in imported
    assert "sqlite3" not in imported  # a read needs no journal
    assert "gevent" not in imported  # nor greenlets: one request, sent from the hook's thread


def test_capture_journals_without_importing_the_http_stack(hooks, raw):
    payload = {"session_id": "s-imports", "hook_event_name": "UserPromptSubmit", "prompt": "hi"}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "deeplake_sdk.cli", "hook", "capture"],
        input=json.dumps(payload).encode(),
        capture_output=True,
        env=hooks.env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines()}
    assert "sqlite3" in imported  # the journal was written
    assert not imported & {"requests", "urllib3", "deeplake_sdk.transport", "gevent"}


def test_unreachable_service_falls_through_quickly(hooks, tmp_path):
    hooks.env["DEEPLAKE_API_URL"] = "http://127.0.0.1:9"  # discard port: connection refused
    payload = {"tool_name": "Read", "tool_input": {"file_path": f"{hooks.mount}/a.md"}}
    assert hooks.answer(payload) is None


def test_a_service_whose_connections_hang_falls_through_within_the_hooks_budget(hooks):
    """pre-tool-use gives its query 5 s: its connect timeout is within that (3 s), not the
    10 s of a client that waits for connections."""
    with Blackhole() as hole:
        hooks.env["DEEPLAKE_API_URL"] = hole.url
        payload = {"tool_name": "Read", "tool_input": {"file_path": f"{hooks.mount}/a.md"}}
        proc = subprocess.run(
            [sys.executable, "-m", "deeplake_sdk.cli", "-vv", "hook", "pre-tool-use"],
            input=json.dumps(payload).encode(),
            capture_output=True,
            env=hooks.env,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0 and proc.stdout == b"", proc.stderr.decode()
    assert f"within {QUICK_CONNECT_S:g}s" in proc.stderr.decode()


def test_hooks_where_nothing_listens_retry_no_connection(hooks, tmp_path):
    """session-start and session-end need the service: they fail at once (no retry logged)
    instead of holding the agent; capture journals its event (exit 0)."""
    hooks.env["DEEPLAKE_API_URL"] = "http://127.0.0.1:9"  # discard port: connection refused
    payload = {"session_id": "s-off", "cwd": str(tmp_path), "prompt": "hi"}
    for sub, event, code in (
        ("session-start", "SessionStart", 1),
        ("capture", "UserPromptSubmit", 0),
        ("session-end", "SessionEnd", 1),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "deeplake_sdk.cli", "-v", "hook", sub],
            input=json.dumps({**payload, "hook_event_name": event}).encode(),
            capture_output=True,
            env=hooks.env,
            timeout=120,
            check=False,
        )
        err = proc.stderr.decode()
        assert proc.returncode == code, err
        assert "retrying in" not in err
        assert code == 0 or "cannot connect" in err


def test_a_hook_leaves_no_entry_in_the_hosts_shared_budget(hooks, tmp_path):
    """A hook ends with os._exit (no exit handlers): it removes its entry itself, and, the only
    process of the origin, the file and its directory."""
    limits = tmp_path / "limits"
    payload = {"session_id": "s-share", "cwd": str(tmp_path), "hook_event_name": "SessionStart"}
    proc = hooks("session-start", payload, DEEPLAKE_LIMIT_DIR=str(limits))
    assert proc.returncode == 0, proc.err
    assert not limits.exists() or list(limits.iterdir()) == []


def test_install_prints_and_merges_the_hooks_section(hooks, tmp_path):
    proc = hooks("install")
    section = json.loads(proc.out)["hooks"]
    assert set(section) == {
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Stop",
        "SubagentStop",
        "SessionEnd",
    }
    assert section["PreToolUse"][0]["matcher"] == "Read|Grep|Bash"
    settings = tmp_path / "settings.json"
    other = {"matcher": "Bash", "hooks": [{"type": "command", "command": "my-check"}]}
    settings.write_text(json.dumps({"model": "x", "hooks": {"PreToolUse": [other]}}))
    for _ in range(2):  # idempotent
        assert hooks("install", None).returncode == 0
        proc = subprocess.run(
            [sys.executable, "-m", "deeplake_sdk.cli", "hook", "install", "--write", str(settings)],
            capture_output=True,
            env=hooks.env,
            check=True,
        )
    merged = json.loads(settings.read_text())
    assert merged["model"] == "x"
    assert merged["hooks"]["PreToolUse"][0] == other
    assert len(merged["hooks"]["PreToolUse"]) == 2
    assert merged["hooks"]["SessionEnd"] == section["SessionEnd"]


def test_example(srv, workspace, tmp_path):
    out = run_example("claude_code_hooks.py", service_env(srv, workspace, tmp_path))
    assert "Read answered with a private copy: 'ship on Friday'" in out
    assert "cat printed, unexpanded: say $(whoami) and `id`" in out
    assert "Write falls through: True" in out
