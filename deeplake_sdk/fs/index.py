"""The virtual ``/index.md``: a listing of the files, served when no real file has that path."""

from __future__ import annotations

from deeplake_sdk.fs.tree import FileMeta, Tree

INDEX_PATH = "/index.md"


def render_index(tree: Tree) -> str:
    """Markdown listing every memory file with its size, date and description.

    Session files are listed in their own section with their event counts.
    """
    memory, sessions = [], []
    for meta in tree.files.values():
        (sessions if meta.kind == "session" else memory).append(meta)
    memory.sort(key=_path)
    sessions.sort(key=_path)
    lines = ["# Memory index", ""]
    if not memory:
        lines.append("_No memory files yet._")
    lines += [_memory_line(meta) for meta in memory]
    if sessions:
        lines += ["", "## Sessions", ""]
        lines += [f"- [{m.path}]({m.path}) ({m.rows} events)" for m in sessions]
    return "\n".join(lines) + "\n"


def _path(meta: FileMeta) -> str:
    return meta.path


def _memory_line(meta: FileMeta) -> str:
    detail = f"{meta.size} bytes"
    if meta.last_update_date:
        detail += f", updated {meta.last_update_date}"
    if meta.description:
        return f"- [{meta.path}]({meta.path}) ({detail}): {' '.join(meta.description.split())}"
    return f"- [{meta.path}]({meta.path}) ({detail})"
