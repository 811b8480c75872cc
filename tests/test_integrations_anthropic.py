"""The Anthropic memory tool's command dispatch (``tool.call(input)``) on DeeplakeFs."""

from __future__ import annotations

import pytest
from integrations_support import run_example, service_env

pytest.importorskip("anthropic")

from deeplake_sdk.integrations.anthropic import (
    DeeplakeMemoryTool,
    MemoryCommandError,
)


@pytest.fixture
def tool(fs):
    return DeeplakeMemoryTool(fs)


def test_to_dict_is_the_memory_tool(tool):
    assert tool.to_dict()["type"].startswith("memory_") and tool.name == "memory"


def test_commands_as_the_package_dispatches_them(tool, fs, raw):
    call = tool.call
    assert call({"command": "create", "path": "/memories/a.md", "file_text": "one\ntwo\n"}) == (
        "File created successfully at: /memories/a.md"
    )
    assert call({"command": "view", "path": "/memories/a.md"}) == (
        "Here's the content of /memories/a.md with line numbers:\n     1\tone\n     2\ttwo"
    )
    assert call({"command": "view", "path": "/memories/a.md", "view_range": [2, -1]}).endswith(
        "     2\ttwo"
    )
    listing = call({"command": "view", "path": "/memories"})
    assert listing.splitlines() == [
        "Here're the files and directories up to 2 levels deep in /memories, excluding "
        "hidden items:",
        "0\t/memories",
        "8\t/memories/a.md",
    ]
    call({"command": "str_replace", "path": "/memories/a.md", "old_str": "two", "new_str": "2"})
    call({"command": "insert", "path": "/memories/a.md", "insert_line": 0, "insert_text": "zero"})
    assert fs.read_text("/memories/a.md") == "zero\none\n2\n"
    assert call(
        {"command": "rename", "old_path": "/memories/a.md", "new_path": "/memories/b/c.md"}
    ) == ("Successfully renamed /memories/a.md to /memories/b/c.md")
    assert call({"command": "delete", "path": "/memories/b/c.md"}) == (
        "Successfully deleted /memories/b/c.md"
    )
    assert not fs.exists("/memories/b/c.md")
    fs.flush()
    assert raw.rows("SELECT path FROM memory WHERE path LIKE '/memories/%'") == []


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ({"command": "view", "path": "/memories/none.md"}, "does not exist"),
        ({"command": "create", "path": "/memories/x.md", "file_text": "x"}, "already exists"),
        ({"command": "create", "path": "/etc/passwd", "file_text": "x"}, "outside /memories"),
        ({"command": "view", "path": "/memories/../etc"}, "must not contain '..'"),
        (
            {"command": "str_replace", "path": "/memories/x.md", "old_str": "q", "new_str": ""},
            "did not appear verbatim",
        ),
        (
            {"command": "str_replace", "path": "/memories/x.md", "old_str": "a", "new_str": ""},
            "Multiple occurrences of old_str `a` in lines: [1, 2]",
        ),
        (
            {"command": "insert", "path": "/memories/x.md", "insert_line": 9, "insert_text": "z"},
            "should be within the range of lines of the file: [0, 2]",
        ),
        (
            {"command": "rename", "old_path": "/memories/x.md", "new_path": "/memories/x.md"},
            "already exists",
        ),
        ({"command": "delete", "path": "/memories/none.md"}, "does not exist"),
    ],
)
def test_documented_errors(tool, command, message):
    tool.call({"command": "create", "path": "/memories/x.md", "file_text": "a\na\n"})
    with pytest.raises(MemoryCommandError, match=None) as info:
        tool.call(command)
    assert message in str(info.value)


def test_clear_all_memory(tool, fs):
    tool.call({"command": "create", "path": "/memories/x.md", "file_text": "a"})
    fs.write_text("/other.md", "kept")
    tool.clear_all_memory()
    assert not fs.exists("/memories/x.md") and fs.exists("/other.md")


def test_example(srv, workspace, tmp_path):
    out = run_example("anthropic_memory_tool.py", service_env(srv, workspace, tmp_path))
    assert "File created successfully at: /memories/prefs.md" in out
    assert "     1\tprefers tea" in out
    assert "error: No replacement was performed" in out
