"""The virtual ``/index.md``: a listing of the files, served when no real file has that path."""

from __future__ import annotations

from deeplake_sdk.fs.tree import Tree

INDEX_PATH = "/index.md"


def render_index(tree: Tree) -> str:
    """Markdown listing every memory file with its size, date and description.

    Session files are listed in their own section with their event counts.
    """
    memory = sorted((m for m in tree.files.values() if m.kind == "memory"), key=lambda m: m.path)
    sessions = sorted((m for m in tree.files.values() if m.kind == "session"), key=lambda m: m.path)
    lines = ["# Memory index", ""]
    if not memory:
        lines.append("_No memory files yet._")
    for meta in memory:
        detail = f"{meta.size} bytes"
        if meta.last_update_date:
            detail += f", updated {meta.last_update_date}"
        line = f"- [{meta.path}]({meta.path}) ({detail})"
        if meta.description:
            line += f": {' '.join(meta.description.split())}"
        lines.append(line)
    if sessions:
        lines += ["", "## Sessions", ""]
        for meta in sessions:
            lines.append(f"- [{meta.path}]({meta.path}) ({meta.rows} events)")
    return "\n".join(lines) + "\n"
