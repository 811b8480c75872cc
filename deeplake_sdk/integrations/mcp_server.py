"""An MCP server over stdio exposing the memory: ``search``, ``read``, ``index``, ``write``...

``deeplake-sdk mcp`` runs it (extra ``[mcp]``, the ``mcp`` package, 2.x). The tools are thin
calls into :class:`~deeplake_sdk.DeeplakeFs` (:class:`MemoryTools`, usable without ``mcp``):

* ``search(query, limit)``: lines containing ``query`` (case-insensitive, literal), one round
  trip (:meth:`DeeplakeFs.grep <deeplake_sdk.DeeplakeFs.grep>`), as ``path:line:text``;
* ``read(path)``: a file's text;
* ``index(prefix, limit)``: files under a directory with size and description;
* ``write(path, text)``, ``append(path, text)``, ``delete(path)``: journaled changes (durable
  when the tool returns, stored by the background flusher).

Errors (a missing path, a directory, a read-only session file, a limit) are MCP tool errors
(``isError: true`` with the message), never a broken server. The SDK is synchronous: every
call runs on one dedicated thread that owns the filesystem, so the MCP SDK's event loop never
blocks and the SDK is never shared between threads; nothing is monkey-patched.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from deeplake_sdk.errors import DeeplakeError, FsError
from deeplake_sdk.fs import paths

if TYPE_CHECKING:
    from deeplake_sdk.fs import DeeplakeFs

__all__ = ["MemoryToolError", "MemoryTools", "ToolLimits", "build_server"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class MemoryToolError(ValueError):
    """A tool call that cannot be done (reported to the client as a tool error)."""


@dataclass(frozen=True)
class ToolLimits:
    """Bounds of the tools' answers and inputs.

    Attributes:
        max_results: Largest ``limit`` of ``search`` and ``index``.
        max_read_bytes: Largest file ``read`` returns.
        max_write_bytes: Largest ``text`` of ``write`` and ``append``.
    """

    max_results: int = 1000
    max_read_bytes: int = 1 << 20
    max_write_bytes: int = 8 << 20


class MemoryTools:
    """The MCP tools as plain methods over a filesystem.

    Args:
        fs: The filesystem.
        limits: Bounds of answers and inputs.
    """

    def __init__(self, fs: DeeplakeFs, limits: ToolLimits | None = None) -> None:
        self.fs = fs
        self.limits = limits or ToolLimits()

    def _limit(self, limit: int) -> int:
        if limit < 1 or limit > self.limits.max_results:
            raise MemoryToolError(f"limit must be between 1 and {self.limits.max_results}")
        return limit

    def _text(self, text: str) -> bytes:
        data = text.encode("utf-8")
        if len(data) > self.limits.max_write_bytes:
            raise MemoryToolError(
                f"text of {len(data):,} bytes is over the limit of "
                f"{self.limits.max_write_bytes:,} bytes"
            )
        return data

    def search(self, query: str, limit: int = 20) -> str:
        """Lines containing ``query`` (case-insensitive), as ``path:line:text``."""
        if not query:
            raise MemoryToolError("query must not be empty")
        # Settle appends whose base is not known here first: DeeplakeFs.grep leaves such a
        # file out of its answer even after waiting for it.
        for p, view in self.fs.writer.view_all().items():
            if view.state == "wait":
                self.fs.writer.settle(p, view, self.fs.flush_timeout)
        results = self.fs.grep(
            query, "/", fixed=True, ignore_case=True, max_results=self._limit(limit)
        )
        lines = [f"{r.path}:{m.line_number}:{m.line}" for r in results for m in r.matches]
        return "\n".join(lines) if lines else "no match"

    def read(self, path: str) -> str:
        """A file's text."""
        data = self.fs.read_bytes(path)
        if len(data) > self.limits.max_read_bytes:
            raise MemoryToolError(
                f"{path} is {len(data):,} bytes, over the {self.limits.max_read_bytes:,}-byte limit"
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MemoryToolError(f"{path} is a binary file") from exc

    def index(self, prefix: str = "/", limit: int = 100) -> str:
        """Files under ``prefix``: ``path<TAB>size<TAB>description`` per line, sorted."""
        top = paths.normalize(prefix)
        if not self.fs.is_dir(top):
            raise FsError(errno.ENOTDIR if self.fs.exists(top) else errno.ENOENT, top)
        rows = []
        for directory, _, files in self.fs.walk(top):
            for name in files:
                path = paths.join(directory, name)
                meta = self.fs.tree.get(path)  # as loaded by the walk: no call per file
                size, description = (meta.size, meta.description) if meta else (0, "")
                rows.append(f"{path}\t{size}\t{description}")
                if len(rows) >= self._limit(limit):
                    return "\n".join(rows)
        return "\n".join(rows) if rows else "no files"

    def write(self, path: str, text: str) -> str:
        """Create or replace a file."""
        self.fs.write_bytes(path, self._text(text))
        return f"wrote {paths.normalize(path)}"

    def append(self, path: str, text: str) -> str:
        """Append to a file (created if missing)."""
        self.fs.append_bytes(path, self._text(text))
        return f"appended to {paths.normalize(path)}"

    def delete(self, path: str) -> str:
        """Remove a file."""
        self.fs.rm(path)
        return f"deleted {paths.normalize(path)}"


class _Owner:
    """One thread that owns the filesystem and runs every call, opened on first use."""

    def __init__(self, open_fs: Callable[[], DeeplakeFs], limits: ToolLimits | None) -> None:
        self._open_fs = open_fs
        self._limits = limits
        self._tools: MemoryTools | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deeplake-mcp")

    def _call(self, name: str, kwargs: dict[str, Any]) -> str:
        if self._tools is None:
            self._tools = MemoryTools(self._open_fs(), self._limits)
        return getattr(self._tools, name)(**kwargs)

    async def call(self, name: str, **kwargs: Any) -> str:
        from mcp.server.mcpserver.exceptions import ToolError

        future = self._pool.submit(self._call, name, kwargs)
        try:
            return await asyncio.wrap_future(future)
        except FsError as exc:
            raise ToolError(str(exc)) from exc
        except (MemoryToolError, DeeplakeError, ValueError) as exc:
            raise ToolError(str(exc)) from exc

    def close(self) -> None:
        def close_fs() -> None:
            if self._tools is not None:
                self._tools.fs.close()

        self._pool.submit(close_fs).result()
        self._pool.shutdown()


def build_server(
    open_fs: Callable[[], DeeplakeFs], limits: ToolLimits | None = None
) -> tuple[Any, Callable[[], None]]:
    """The MCP server (``mcp.server.mcpserver.MCPServer``) and a function that closes it.

    Args:
        open_fs: Builds the filesystem (called once, on the first tool call, on the thread
            that then runs every call).
        limits: Bounds of answers and inputs.
    """
    from mcp.server.mcpserver import MCPServer

    owner = _Owner(open_fs, limits)
    server = MCPServer(
        "deeplake-memory",
        instructions="A durable memory filesystem: search it, read files, list a directory "
        "with index, and write, append or delete files. Paths are absolute, like /notes/a.md.",
    )

    @server.tool()
    async def search(query: str, limit: int = 20) -> str:
        """Find lines containing `query` (case-insensitive) in every file; path:line:text."""
        return await owner.call("search", query=query, limit=limit)

    @server.tool()
    async def read(path: str) -> str:
        """Read a file's text, e.g. /notes/a.md."""
        return await owner.call("read", path=path)

    @server.tool()
    async def index(prefix: str = "/", limit: int = 100) -> str:
        """List files under a directory: path, size and description, one per line."""
        return await owner.call("index", prefix=prefix, limit=limit)

    @server.tool()
    async def write(path: str, text: str) -> str:
        """Create or replace a file with `text`."""
        return await owner.call("write", path=path, text=text)

    @server.tool()
    async def append(path: str, text: str) -> str:
        """Append `text` to a file (created if missing)."""
        return await owner.call("append", path=path, text=text)

    @server.tool()
    async def delete(path: str) -> str:
        """Delete a file."""
        return await owner.call("delete", path=path)

    return server, owner.close
