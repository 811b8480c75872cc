"""The virtual ``/index.md``: a listing of the files, served when no real file has that path."""

from __future__ import annotations

from deeplake_sdk.fs.tree import FileMeta, Tree

INDEX_PATH = "/index.md"

#: The last listing rendered from a shared (hence unchanging) files dictionary, and that
#: dictionary: the filesystems that loaded the same read share it.
_last: tuple[dict[str, FileMeta], str] | None = None


def render_index(tree: Tree) -> str:
    """Markdown listing every memory file with its size, date and description.

    Session files are listed in their own section with their event counts. The listing of a
    tree whose files are shared with other trees (:meth:`Tree.frozen_files`) is rendered once
    for all of them.
    """
    global _last
    frozen = tree.frozen_files()
    last = _last
    if frozen is not None and last is not None and last[0] is frozen:
        return last[1]
    text = _render(tree.files)
    if frozen is not None:
        _last = (frozen, text)
    return text


def _render(files: dict[str, FileMeta]) -> str:
    memory, sessions = [], []
    for path in sorted(files):
        meta = files[path]
        (sessions if meta.kind == "session" else memory).append(meta)
    lines = ["# Memory index", ""]
    if not memory:
        lines.append("_No memory files yet._")
    lines += [meta.listing for meta in memory]
    if sessions:
        lines += ["", "## Sessions", ""]
        lines += [meta.listing for meta in sessions]
    return "\n".join(lines) + "\n"
