"""The in-memory view of the filesystem: file metadata and the directory tree.

Directories are implicit: a directory exists while a file lives under it, or while it was
created with ``mkdir`` in this process. The tree is kept up to date incrementally as files are
added and removed, so ``ls``/``walk``/``stat`` never touch the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from deeplake_sdk.fs import paths

Kind = Literal["memory", "session"]


@dataclass(frozen=True)
class FileMeta:
    """Metadata of one file, as loaded from its table or set by a local write.

    Immutable: a change puts a new value in the tree (trees loaded from one shared read share
    their values).

    Attributes:
        path: Normalised absolute path.
        size: Size in bytes.
        mime_type: MIME type stored with the file.
        last_update_date: ISO-8601 timestamp of the last change (part of the cache version).
        kind: ``"memory"`` for rows of the memory table, ``"session"`` for session logs.
        description: Free-text description stored with a memory file.
        persisted: Whether a row for this path is known to exist in the table.
        rows: Number of rows behind a session file.
    """

    path: str
    size: int
    mime_type: str = "application/octet-stream"
    last_update_date: str = ""
    kind: Kind = "memory"
    description: str = ""
    persisted: bool = True
    rows: int = 1

    @property
    def version(self) -> tuple[int, str]:
        """The cache version of the file's content: ``(size, last_update_date)``."""
        return (self.size, self.last_update_date)

    @cached_property
    def listing(self) -> str:
        """The line of this file in ``/index.md`` (computed once per value)."""
        if self.kind == "session":
            return f"- [{self.path}]({self.path}) ({self.rows} events)"
        detail = f"{self.size} bytes"
        if self.last_update_date:
            detail += f", updated {self.last_update_date}"
        line = f"- [{self.path}]({self.path}) ({detail})"
        if self.description:
            return f"{line}: {' '.join(self.description.split())}"
        return line


@dataclass
class Tree:
    """Files by path plus the children of every directory.

    :meth:`copy_from` shares the other tree's dictionaries instead of copying them; whichever
    tree changes first copies them then (copy on write), so a shared dictionary never changes
    again (:meth:`frozen_files`).
    """

    files: dict[str, FileMeta] = field(default_factory=dict)
    explicit_dirs: set[str] = field(default_factory=set)
    _children: dict[str, set[str]] = field(default_factory=lambda: {paths.ROOT: set()})
    _shared: bool = field(default=False, repr=False, compare=False)
    _borrowed: set[str] = field(default_factory=set, repr=False, compare=False)

    # -- queries ---------------------------------------------------------------------------
    def is_file(self, path: str) -> bool:
        """Whether ``path`` is a known file."""
        return path in self.files

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory (the root, implicit or explicit)."""
        return path in self._children

    def get(self, path: str) -> FileMeta | None:
        """Metadata of a file, or None."""
        return self.files.get(path)

    def listdir(self, path: str) -> list[str]:
        """Sorted names of the entries of a directory (empty if it is not one)."""
        return sorted(self._children.get(path, ()))

    def is_empty_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory without entries."""
        return self.is_dir(path) and not self._children[path]

    def files_under(self, directory: str) -> list[str]:
        """Sorted paths of every file strictly inside ``directory``."""
        prefix = paths.dir_prefix(directory)
        return sorted(p for p in self.files if p.startswith(prefix) and p != directory)

    def dirs_under(self, directory: str) -> list[str]:
        """Sorted paths of every directory strictly inside ``directory``."""
        return sorted(d for d in self._children if paths.is_under(d, directory))

    def frozen_files(self) -> dict[str, FileMeta] | None:
        """The files, if they are shared with another tree (then they never change), else None.

        Lets a reader keep something derived from the files for as long as the same
        dictionary comes back.
        """
        return self.files if self._shared else None

    def walk(self, top: str) -> Iterator[tuple[str, list[str], list[str]]]:
        """Yield ``(dirpath, dirnames, filenames)`` top-down, like :func:`os.walk`."""
        if not self.is_dir(top):
            return
        stack = [top]
        while stack:
            current = stack.pop()
            dirnames, filenames = [], []
            for name in self.listdir(current):
                child = paths.join(current, name)
                if self.is_dir(child):
                    dirnames.append(name)
                if child in self.files:
                    filenames.append(name)
            yield current, dirnames, filenames
            stack.extend(paths.join(current, d) for d in reversed(dirnames))

    # -- updates ---------------------------------------------------------------------------
    def put(self, meta: FileMeta) -> None:
        """Add or replace a file, creating its ancestor directories."""
        self._own()
        self.files[meta.path] = meta
        self._link(meta.path)

    def put_many(self, metas: Iterable[FileMeta]) -> None:
        """Add or replace several files (:meth:`put` for each, inlined: a load adds thousands)."""
        self._own()
        files, children, root = self.files, self._children, paths.ROOT
        for meta in metas:
            child = meta.path
            files[child] = meta
            while child != root:
                cut = child.rfind("/")
                parent, name = child[:cut] or root, child[cut + 1 :]
                siblings = self._names(parent)
                if siblings is None:
                    siblings = children[parent] = set()
                elif name in siblings:
                    break
                siblings.add(name)
                child = parent

    def remove(self, path: str) -> FileMeta | None:
        """Forget a file; empty implicit ancestors disappear with it."""
        if path not in self.files:
            return None
        self._own()
        meta = self.files.pop(path, None)
        if meta is not None and not self.is_dir(path):
            self._unlink(path)
        return meta

    def add_dir(self, path: str) -> None:
        """Create an explicit directory (and its ancestors)."""
        self._own()
        self.explicit_dirs.add(path)
        self._children.setdefault(path, set())
        self._link(path)

    def remove_dir(self, path: str) -> None:
        """Remove an empty directory."""
        self._own()
        self.explicit_dirs.discard(path)
        if path != paths.ROOT and not self._children.get(path):
            self._children.pop(path, None)
            if path not in self.files:
                self._unlink(path)

    def copy_from(self, other: Tree) -> None:
        """Become a copy of ``other`` (files and directories), keeping explicit directories.

        Nothing is copied until either tree changes (see the class); ``other``'s contents are
        not changed.
        """
        explicit = self.explicit_dirs | other.explicit_dirs
        self.files, self._children = other.files, other._children
        self._shared = other._shared = True
        self.explicit_dirs = set()
        for d in sorted(explicit):
            self.add_dir(d)

    def clear(self) -> None:
        """Forget everything except explicit directories."""
        explicit = set(self.explicit_dirs)
        self.files = {}
        self._children = {paths.ROOT: set()}
        self._shared, self._borrowed = False, set()
        self.explicit_dirs = set()
        for d in sorted(explicit):
            self.add_dir(d)

    def _own(self) -> None:
        """Copy the dictionaries shared with another tree (:meth:`copy_from`) before a change."""
        if self._shared:
            self.files = dict(self.files)
            self._borrowed = set(self._children)
            self._children = dict(self._children)
            self._shared = False

    def _names(self, directory: str) -> set[str] | None:
        """The children of ``directory`` as a set this tree may change (None: no directory).

        After :meth:`_own`, the sets are still those of the tree copied from; each is copied
        when first changed.
        """
        names = self._children.get(directory)
        if names is not None and directory in self._borrowed:
            names = self._children[directory] = set(names)
            self._borrowed.discard(directory)
        return names

    def _link(self, path: str) -> None:
        child = path
        while child != paths.ROOT:
            parent = paths.parent(child)
            siblings = self._names(parent)
            if siblings is None:
                siblings = self._children[parent] = set()
            name = paths.basename(child)
            if name in siblings:
                break
            siblings.add(name)
            child = parent

    def _unlink(self, path: str) -> None:
        child = path
        while child != paths.ROOT:
            parent = paths.parent(child)
            siblings = self._names(parent)
            if siblings is None:
                break
            siblings.discard(paths.basename(child))
            if siblings or parent == paths.ROOT or parent in self.explicit_dirs:
                break
            if parent in self.files:
                # A file sits at this directory's path: keep the file, drop the directory.
                del self._children[parent]
                break
            del self._children[parent]
            child = parent
