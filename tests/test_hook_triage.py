"""Which ``pre-tool-use`` payloads may concern the memory mount (pure, no I/O)."""

from __future__ import annotations

import pytest

from deeplake_sdk.integrations.claude_code_paths import HookSettings, may_concern_mount

SETTINGS = HookSettings(mount="/home/ada/.deeplake/memory")
MOUNT = SETTINGS.mount_dir


def payload(tool: str, cwd: str = "/home/ada/project", **tool_input: str) -> dict:
    return {"tool_name": tool, "tool_input": tool_input, "cwd": cwd}


@pytest.mark.parametrize(
    "call",
    [
        payload("Read", file_path=f"{MOUNT}/notes/a.md"),
        payload("Read", file_path="notes/a.md", cwd=MOUNT),
        payload("Read", file_path="../memory/notes/a.md", cwd=f"{MOUNT}/../memory"),
        payload("Grep", pattern="x", path=MOUNT),
        payload("Grep", pattern="x", cwd=f"{MOUNT}/notes"),
        payload("Bash", command=f"cat {MOUNT}/notes/a.md"),
        payload("Bash", command=f"head -n 3 '{MOUNT}/notes/a b.md'"),
        payload("Bash", command="ls notes", cwd=MOUNT),
        payload("Bash", command=f"grep -rn ship {MOUNT}"),
    ],
)
def test_calls_on_the_mount_may_be_answered(call):
    assert may_concern_mount(call, SETTINGS)


@pytest.mark.parametrize(
    "call",
    [
        payload("Read", file_path="/etc/hostname"),
        payload("Read", file_path="notes/a.md"),  # relative to a project directory
        payload("Read", file_path=f"{MOUNT}-other/a.md"),
        payload("Grep", pattern="x", path="src"),
        payload("Grep", pattern="x"),
        payload("Bash", command="git status"),
        payload("Bash", command=f"rm {MOUNT}/notes/a.md"),  # not an answered command
        payload("Bash", command=f"cat $(echo {MOUNT}/notes/a.md)"),  # not a simple command
        payload("Bash", command="cat README.md"),
        payload("Write", file_path=f"{MOUNT}/a.md"),
        {"tool_name": "Read", "tool_input": "not a mapping"},
        {},
    ],
)
def test_calls_away_from_the_mount_fall_through(call):
    assert not may_concern_mount(call, SETTINGS)
