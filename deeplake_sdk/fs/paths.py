"""Virtual paths of the memory filesystem: POSIX, normalised, absolute inside the mount."""

from __future__ import annotations

import errno
import mimetypes
import posixpath

from deeplake_sdk.errors import FsError

ROOT = "/"


def normalize(path: str) -> str:
    """Return the canonical absolute form of ``path``.

    Relative paths are taken from the root; ``.``/``..`` and repeated or trailing slashes are
    resolved (``..`` never climbs above the root).

    Raises:
        FsError: ``EINVAL`` for an empty path or one containing a NUL character.
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be str, not {type(path).__name__}")
    if not path or "\x00" in path:
        raise FsError(errno.EINVAL, path, "invalid path (empty or contains NUL)")
    if _is_canonical(path):
        return path
    return posixpath.normpath(posixpath.join(ROOT, path)).replace("//", "/")


def _is_canonical(path: str) -> bool:
    """Whether ``normalize`` would return ``path`` unchanged (the common case, checked fast)."""
    return (
        path[0] == "/"
        and (path == ROOT or path[-1] != "/")
        and "//" not in path
        and "/." not in path
    )


def parent(path: str) -> str:
    """Parent directory of a normalised path (the root is its own parent)."""
    return path[: path.rfind("/")] or ROOT


def basename(path: str) -> str:
    """Last component of a normalised path (empty for the root)."""
    return path[path.rfind("/") + 1 :]


def join(directory: str, name: str) -> str:
    """Join a directory and a name and normalise the result."""
    return normalize(posixpath.join(directory, name))


def ancestors(path: str) -> list[str]:
    """Every proper ancestor directory of ``path``, root first (empty for the root)."""
    result = []
    current = parent(path)
    while True:
        result.append(current)
        if current == ROOT:
            break
        current = parent(current)
    if path == ROOT:
        return []
    result.reverse()
    return result


def is_under(path: str, directory: str) -> bool:
    """Whether ``path`` is strictly inside ``directory``."""
    if directory == ROOT:
        return path != ROOT
    return path.startswith(directory + "/")


def dir_prefix(directory: str) -> str:
    """The string every path inside ``directory`` starts with (``/`` or ``/dir/``)."""
    return ROOT if directory == ROOT else directory + "/"


def guess_mime(path: str, binary: bool) -> str:
    """MIME type from the file name; text/plain or application/octet-stream otherwise."""
    guessed, _ = mimetypes.guess_type(path)
    if guessed:
        return guessed
    if path.endswith((".md", ".markdown")):
        return "text/markdown"
    return "application/octet-stream" if binary else "text/plain"
