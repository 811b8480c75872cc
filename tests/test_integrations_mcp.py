"""``deeplake-sdk mcp`` driven by the ``mcp`` package's own stdio client."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from integrations_support import run_example, service_env

mcp = pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from deeplake_sdk.integrations.mcp_server import MemoryTools, ToolLimits  # noqa: E402


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def session_calls(env: dict[str, str], between: Any = None) -> dict[str, Any]:
    """The tool calls of one session; ``between()`` runs (in a thread) after the first index."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "deeplake_sdk.cli", "mcp", "--max-age", "0"],
        env=env,
    )
    out: dict[str, Any] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
        out["write"] = await session.call_tool(
            "write", {"path": "/notes/a.md", "text": "alpha\nShip on Friday\n"}
        )
        await session.call_tool("append", {"path": "/notes/a.md", "text": "ship again\n"})
        out["search"] = await session.call_tool("search", {"query": "ship", "limit": 10})
        out["read"] = await session.call_tool("read", {"path": "/notes/a.md"})
        out["index"] = await session.call_tool("index", {"prefix": "/notes"})
        if between is not None:
            await asyncio.to_thread(between)
            out["index_after"] = await session.call_tool("index", {"prefix": "/notes"})
            out["read_after"] = await session.call_tool("read", {"path": "/notes/a.md"})
        out["missing"] = await session.call_tool("read", {"path": "/notes/nope.md"})
        out["bad_limit"] = await session.call_tool("search", {"query": "x", "limit": 10**6})
        out["delete"] = await session.call_tool("delete", {"path": "/notes/a.md"})
        out["gone"] = await session.call_tool("read", {"path": "/notes/a.md"})
    return out


def test_stdio_client_lists_writes_searches_reads_and_gets_errors(srv, workspace, tmp_path, raw):
    out = asyncio.run(session_calls(service_env(srv, workspace, tmp_path)))
    assert out["tools"] == ["append", "delete", "index", "read", "search", "write"]
    assert not out["write"].is_error and text_of(out["write"]) == "wrote /notes/a.md"
    assert text_of(out["search"]).splitlines() == [
        "/notes/a.md:2:Ship on Friday",
        "/notes/a.md:3:ship again",
    ]
    assert text_of(out["read"]) == "alpha\nShip on Friday\nship again\n"
    assert text_of(out["index"]).split("\t")[:2] == ["/notes/a.md", "32"]
    assert out["missing"].is_error
    assert "ENOENT" in text_of(out["missing"]) and "/notes/nope.md" in text_of(out["missing"])
    assert out["bad_limit"].is_error and "limit" in text_of(out["bad_limit"])
    assert not out["delete"].is_error and out["gone"].is_error
    # The server closed its filesystem, which waited for the journal: the table agrees.
    assert raw.rows("SELECT path FROM memory WHERE path = '/notes/a.md'") == []


def test_the_server_sees_what_another_process_changed_between_two_calls(srv, workspace, tmp_path):
    from deeplake_sdk import DeeplakeApi, DeeplakeFs

    def another_process_writes() -> None:
        api = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
        with DeeplakeFs(api, cache=False, journal=False) as other:
            other.write_text("/notes/a.md", "rewritten elsewhere\n")
            other.write_text("/notes/b.md", "new elsewhere\n")
        api.close()

    env = service_env(srv, workspace, tmp_path)
    out = asyncio.run(session_calls(env, between=another_process_writes))
    assert [line.split("\t")[0] for line in text_of(out["index_after"]).splitlines()] == [
        "/notes/a.md",
        "/notes/b.md",
    ]
    assert text_of(out["read_after"]) == "rewritten elsewhere\n"


def test_tools_enforce_their_limits(fs):
    tools = MemoryTools(fs, ToolLimits(max_results=5, max_read_bytes=4, max_write_bytes=8))
    with pytest.raises(ValueError, match="over the limit"):
        tools.write("/a.md", "123456789")
    tools.write("/a.md", "12345")
    with pytest.raises(ValueError, match="over the 4-byte limit"):
        tools.read("/a.md")
    with pytest.raises(ValueError, match="between 1 and 5"):
        tools.index("/", limit=6)
    assert tools.index("/", limit=5).startswith("/a.md\t5\t")


def test_example(srv, workspace, tmp_path):
    out = run_example("mcp_client.py", service_env(srv, workspace, tmp_path))
    assert "tools: append, delete, index, read, search, write" in out
    assert "search: /notes/plan.md:1:ship on Friday" in out
    assert "error: Error executing tool read: [ENOENT] No such file" in out
