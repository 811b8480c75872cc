"""What ``DeeplakeFs(max_age=...)`` costs and what it fixes, in statements sent.

Another filesystem (as another process would) writes notes; the filesystem measured reads a
note, indexes the directory and greps once (warm: metadata loaded, content cached). Then the
other one changes a note and adds one, and each MCP tool call (:class:`MemoryTools`) runs
again: the statements the server saw for each call, and whether the answer shows the change,
with ``max_age`` None (a snapshot until ``refresh()``), 0 and ``--max-age`` seconds (each
call after sleeping past it, as an agent's tool calls are seconds apart).

Usage::

    python benchmarks/max_age_cost.py [--files 20] [--max-age 1.0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from deeplake_sdk import ContentCache, DeeplakeApi, DeeplakeFs
from deeplake_sdk.integrations.mcp_server import MemoryTools
from deeplake_sdk.server import local


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20, help="notes in the directory")
    parser.add_argument("--max-age", type=float, default=1.0, help="the timed variant")
    args = parser.parse_args()
    os.environ.setdefault("DEEPLAKE_JOURNAL_DIR", tempfile.mkdtemp())
    os.environ.setdefault("DEEPLAKE_STATE_DIR", tempfile.mkdtemp())
    with local(faults="none", durable=False) as server:
        api = DeeplakeApi(server.token, server.org, "bench", server.url)
        other = DeeplakeFs(api, cache=False, journal=False)
        for age in (None, 0.0, args.max_age):
            for i in range(args.files):
                other.write_text(f"/notes/n{i}.md", f"note {i}\n")
            other.rm("/notes/new.md", force=True)
            other.flush()
            fs = DeeplakeFs(api, cache=ContentCache(tempfile.mkdtemp()), max_age=age)
            tools = MemoryTools(fs)
            tools.read("/notes/n1.md"), tools.index("/notes", 1000), tools.search("note 3", 10)
            other.write_text("/notes/n1.md", "note 1, changed elsewhere\n")
            other.write_text("/notes/new.md", "new elsewhere\n")
            other.flush()
            calls = {
                "read": lambda t=tools: "changed" in t.read("/notes/n1.md"),
                "index": lambda t=tools: "/notes/new.md" in t.index("/notes", 1000),
                "search": lambda t=tools: "/notes/new.md" in t.search("elsewhere", 10),
            }
            out = []
            for name, call in calls.items():
                if age:
                    time.sleep(age * 1.1)
                before = server.stats()["requests"]
                shows = call()
                sent = server.stats()["requests"] - before
                out.append(f"{name} {sent} statement(s), {'sees' if shows else 'misses'} it")
            print(f"max_age={age}: " + "; ".join(out))
            fs.close()
        other.close()
        api.close()


if __name__ == "__main__":
    main()
