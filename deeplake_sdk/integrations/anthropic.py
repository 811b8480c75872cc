"""A backend of the ``anthropic`` package's memory tool storing ``/memories`` in the memory table.

Extra ``[anthropic]``. :class:`DeeplakeMemoryTool` subclasses the package's
``BetaAbstractMemoryTool``: give it to the tool runner and Claude's ``view``, ``create``,
``str_replace``, ``insert``, ``delete`` and ``rename`` commands become calls into
:class:`~deeplake_sdk.DeeplakeFs` on ``/memories/...`` files::

    from anthropic import Anthropic
    from deeplake_sdk import DeeplakeApi, DeeplakeFs
    from deeplake_sdk.integrations.anthropic import DeeplakeMemoryTool

    memory = DeeplakeMemoryTool(DeeplakeFs(DeeplakeApi()))
    runner = Anthropic().beta.messages.tool_runner(
        model="claude-sonnet-4-5", max_tokens=1024, tools=[memory], messages=[...]
    )

Results are the texts the memory tool documents (a numbered file view, a directory listing,
``File created successfully at: ...``); a command that cannot be done raises
:class:`MemoryCommandError` with the documented message, which the tool runner returns to
Claude as an error result. Paths outside ``/memories`` (``..`` included) are refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from anthropic.lib.tools import BetaAbstractMemoryTool

from deeplake_sdk.errors import FsError
from deeplake_sdk.fs import paths

if TYPE_CHECKING:
    from deeplake_sdk.fs import DeeplakeFs

__all__ = ["MEMORIES", "DeeplakeMemoryTool", "MemoryCommandError"]

#: The memory tool's root directory.
MEMORIES = "/memories"


class MemoryCommandError(ValueError):
    """A memory command that cannot be done; the message is for Claude."""


class DeeplakeMemoryTool(BetaAbstractMemoryTool):
    """The memory tool on a :class:`~deeplake_sdk.DeeplakeFs`.

    Args:
        fs: The filesystem; files live under ``/memories``.
        cache_control: Passed to ``BetaAbstractMemoryTool``.
    """

    def __init__(self, fs: DeeplakeFs, *, cache_control: Any = None) -> None:
        super().__init__(cache_control=cache_control)
        self.fs = fs

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _path(raw: str) -> str:
        if ".." in raw.split("/"):
            raise MemoryCommandError(f"Error: the path {raw} must not contain '..'")
        p = paths.normalize(raw)
        if p != MEMORIES and not paths.is_under(p, MEMORIES):
            raise MemoryCommandError(f"Error: the path {raw} is outside {MEMORIES}")
        return p

    def _read(self, p: str) -> str:
        try:
            return self.fs.read_text(p)
        except FsError as exc:
            raise MemoryCommandError(
                f"The path {p} does not exist. Please provide a valid path."
            ) from exc

    # -- commands -----------------------------------------------------------------------------
    def view(self, command: Any) -> str:
        """A directory listing (2 levels, sizes) or a file with numbered lines."""
        p = self._path(command.path)
        if p == MEMORIES and not self.fs.exists(p):
            self.fs.mkdir(p, parents=True, exist_ok=True)
        if self.fs.is_dir(p):
            lines = [f"{self._size(p)}\t{p}"]
            depth0 = p.count("/")
            for directory, dirs, files in self.fs.walk(p):
                if directory.count("/") - depth0 >= 2:
                    continue
                for name in sorted(dirs + files):
                    if name.startswith("."):
                        continue
                    child = paths.join(directory, name)
                    lines.append(f"{self._size(child)}\t{child}")
            lines = [lines[0], *sorted(lines[1:], key=lambda s: s.split("\t", 1)[1])]
            return (
                f"Here're the files and directories up to 2 levels deep in {p}, excluding "
                "hidden items:\n" + "\n".join(lines)
            )
        text = self._read(p)
        numbered = text.split("\n")
        if text.endswith("\n"):
            numbered.pop()
        start, end = 1, len(numbered)
        if command.view_range:
            start, end = command.view_range[0], command.view_range[1]
            if end == -1:
                end = len(numbered)
            if start < 1 or start > max(end, 1) or end > len(numbered):
                raise MemoryCommandError(
                    f"Error: invalid view_range {command.view_range}: the file has "
                    f"{len(numbered)} lines"
                )
        body = "\n".join(f"{n:6}\t{numbered[n - 1]}" for n in range(start, end + 1))
        return f"Here's the content of {p} with line numbers:\n{body}"

    def _size(self, p: str) -> str:
        size = self.fs.stat(p).size
        for unit in ("", "K", "M"):
            if size < 1024:
                return f"{size:.1f}{unit}" if unit else f"{size}"
            size /= 1024
        return f"{size:.1f}G"

    def create(self, command: Any) -> str:
        """Create a file; an existing file is an error."""
        p = self._path(command.path)
        if self.fs.exists(p):
            raise MemoryCommandError(f"Error: File {p} already exists")
        self.fs.write_text(p, command.file_text)
        return f"File created successfully at: {p}"

    def str_replace(self, command: Any) -> str:
        """Replace the one occurrence of ``old_str`` with ``new_str``."""
        p = self._path(command.path)
        text = self._read(p)
        count = text.count(command.old_str)
        if count == 0:
            raise MemoryCommandError(
                f"No replacement was performed, old_str `{command.old_str}` did not appear "
                f"verbatim in {p}."
            )
        if count > 1:
            lines = [i + 1 for i, line in enumerate(text.split("\n")) if command.old_str in line]
            raise MemoryCommandError(
                f"No replacement was performed. Multiple occurrences of old_str "
                f"`{command.old_str}` in lines: {lines}. Please ensure it is unique"
            )
        self.fs.write_text(p, text.replace(command.old_str, command.new_str))
        return "The memory file has been edited."

    def insert(self, command: Any) -> str:
        """Insert ``insert_text`` after line ``insert_line`` (0: at the top)."""
        p = self._path(command.path)
        text = self._read(p)
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        n = command.insert_line
        if n < 0 or n > len(lines):
            raise MemoryCommandError(
                f"Error: Invalid `insert_line` parameter: {n}. It should be within the range "
                f"of lines of the file: [0, {len(lines)}]"
            )
        new = command.insert_text.rstrip("\n").split("\n")
        out = lines[:n] + new + lines[n:]
        self.fs.write_text(p, "\n".join(out) + "\n")
        return f"The file {p} has been edited."

    def delete(self, command: Any) -> str:
        """Delete a file or directory (recursively); ``/memories`` itself is refused."""
        p = self._path(command.path)
        if p == MEMORIES:
            raise MemoryCommandError(f"Error: cannot delete the {MEMORIES} directory itself")
        if not self.fs.exists(p):
            raise MemoryCommandError(f"The path {p} does not exist. Please provide a valid path.")
        self.fs.rm(p, recursive=True)
        return f"Successfully deleted {p}"

    def rename(self, command: Any) -> str:
        """Rename (move) a file or directory; an existing destination is an error."""
        old, new = self._path(command.old_path), self._path(command.new_path)
        if not self.fs.exists(old):
            raise MemoryCommandError(f"The path {old} does not exist. Please provide a valid path.")
        if self.fs.exists(new):
            raise MemoryCommandError(f"Error: The destination {new} already exists")
        self.fs.mkdir(paths.parent(new), parents=True, exist_ok=True)
        self.fs.mv(old, new)
        return f"Successfully renamed {old} to {new}"

    def clear_all_memory(self) -> str:
        """Delete everything under ``/memories``."""
        if self.fs.exists(MEMORIES):
            self.fs.rm(MEMORIES, recursive=True)
        return "All memory cleared"
