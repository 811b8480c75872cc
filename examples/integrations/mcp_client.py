"""An MCP client (the ``mcp`` package) talking to ``deeplake-sdk mcp`` over stdio.

Run it with no arguments: it needs a configured service (``DEEPLAKE_TOKEN``,
``DEEPLAKE_ORG_ID``...; the server process reads the same environment), else it starts a
local server and points the MCP server at it. Register the server with Claude Code with
``claude mcp add deeplake -- deeplake-sdk mcp``.
"""

import asyncio
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from deeplake_sdk.server import connect


async def main(env: dict) -> None:
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "deeplake_sdk.cli", "mcp"], env=env
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = (await session.list_tools()).tools
        print("tools:", ", ".join(sorted(t.name for t in tools)))
        await session.call_tool("write", {"path": "/notes/plan.md", "text": "ship on Friday\n"})
        found = await session.call_tool("search", {"query": "friday", "limit": 5})
        print("search:", found.content[0].text)
        missing = await session.call_tool("read", {"path": "/notes/none.md"})
        print("error:" if missing.is_error else "no error:", missing.content[0].text)
        await session.call_tool("delete", {"path": "/notes/plan.md"})


with connect() as api:
    creds = api.credentials
    env = {k: v for k, v in os.environ.items() if k.startswith("DEEPLAKE_")}
    env.update(
        DEEPLAKE_API_URL=creds.api_url,
        DEEPLAKE_TOKEN=creds.token,
        DEEPLAKE_ORG_ID=creds.org_id,
        DEEPLAKE_WORKSPACE_ID=creds.workspace_id,
    )
    asyncio.run(main(env))
print("done")
