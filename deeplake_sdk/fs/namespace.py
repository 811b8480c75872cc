"""Namespace operations of the filesystem: rm, mkdir, rmdir, cp, mv."""

from __future__ import annotations

import errno

from deeplake_sdk.errors import FsError
from deeplake_sdk.fs import paths
from deeplake_sdk.fs.base import FsBase
from deeplake_sdk.fs.tree import FileMeta
from deeplake_sdk.statements import files as st


class NamespaceMixin(FsBase):
    """rm, mkdir, rmdir, cp, mv."""

    def rm(self, path: str, recursive: bool = False, force: bool = False) -> None:
        """Remove a file, or a directory tree with ``recursive`` (journaled, see :meth:`flush`).

        Args:
            path: What to remove.
            recursive: Remove a directory and everything inside it.
            force: Ignore a missing path.

        Raises:
            FsError: ``ENOENT`` (missing, unless ``force``), ``EISDIR`` (a directory without
                ``recursive``), ``EPERM`` (session files, or the root).
        """
        self._check_open()
        p = paths.normalize(path)
        if self.tree.is_file(p):
            meta = self.tree.get(p)
            if meta is not None and meta.kind == "session":
                raise FsError(errno.EPERM, p, "session files are read-only")
            self.writer.delete(p)
        elif self.tree.is_dir(p):
            if not recursive:
                raise FsError(errno.EISDIR, p, "is a directory (use recursive=True)")
            self._rm_tree(p)
        elif self._stored(p):
            self.writer.delete(p)
        elif not force:
            raise FsError(errno.ENOENT, p)

    def _stored(self, p: str) -> bool:
        """Whether the table (or a pending write) has a file this view has not seen."""
        view = self.writer.view(p)
        if view is not None:
            return view.state != "deleted"
        sql, params = st.memory_probe(self.layout, p)
        return bool(self.api.query(sql, params))

    def _rm_tree(self, p: str) -> None:
        if p == paths.ROOT:
            raise FsError(errno.EPERM, p, "refusing to remove the root recursively")
        files = self.tree.files_under(p)
        if any(self.tree.files[f].kind == "session" for f in files):
            raise FsError(errno.EPERM, p, "contains session files, which are read-only")
        self.writer.delete_tree(p)
        for f in files:
            self.tree.remove(f)
            self._invalidate(f)
        for d in reversed(self.tree.dirs_under(p)):
            self.tree.remove_dir(d)
        self.tree.remove_dir(p)

    def mkdir(self, path: str, parents: bool = False, exist_ok: bool = False) -> None:
        """Create a directory.

        Directories are implicit in the tables: one created here lives while this filesystem
        is open, or for good once a file is written inside it.

        Raises:
            FsError: ``EEXIST``, ``ENOENT`` (missing parent without ``parents``), ``ENOTDIR``.
        """
        self._check_open()
        p = paths.normalize(path)
        if self.tree.is_dir(p):
            if exist_ok:
                return
            raise FsError(errno.EEXIST, p)
        if self.tree.is_file(p):
            raise FsError(errno.EEXIST, p, "a file exists at this path")
        for ancestor in paths.ancestors(p):
            if self.tree.is_file(ancestor) and not self.tree.is_dir(ancestor):
                raise FsError(errno.ENOTDIR, p, f"not a directory: {ancestor}")
            if not self.tree.is_dir(ancestor) and not parents:
                raise FsError(errno.ENOENT, p, f"parent directory missing: {ancestor}")
        for ancestor in paths.ancestors(p):
            if not self.tree.is_dir(ancestor):
                self.tree.add_dir(ancestor)
        self.tree.add_dir(p)

    def rmdir(self, path: str) -> None:
        """Remove an empty directory.

        Raises:
            FsError: ``ENOENT``, ``ENOTDIR``, ``ENOTEMPTY``, ``EPERM`` (the root).
        """
        self._check_open()
        p = paths.normalize(path)
        if p == paths.ROOT:
            raise FsError(errno.EPERM, p, "cannot remove the root")
        if not self.tree.is_dir(p):
            raise FsError(errno.ENOTDIR if self.tree.is_file(p) else errno.ENOENT, p)
        if not self.tree.is_empty_dir(p):
            raise FsError(errno.ENOTEMPTY, p)
        self.tree.remove_dir(p)

    def cp(self, src: str, dst: str, recursive: bool = False) -> None:
        """Copy a file, or a directory tree with ``recursive``; into ``dst`` if it is a dir.

        Raises:
            FsError: ``ENOENT``, ``EISDIR`` (a directory without ``recursive``), ``EPERM``
                (the target is a session file), ``EINVAL`` (a directory into itself).
        """
        self._check_open()
        s, d = paths.normalize(src), paths.normalize(dst)
        if self.tree.is_dir(s) and not self.tree.is_file(s):
            if not recursive:
                raise FsError(errno.EISDIR, s, "is a directory (use recursive=True)")
            if self.tree.is_dir(d):
                d = paths.join(d, paths.basename(s))
            if d == s or paths.is_under(d, s):
                raise FsError(errno.EINVAL, d, f"cannot copy {s} into itself")
            files = self.tree.files_under(s)
            self.prefetch(files)
            for f in files:
                target = paths.dir_prefix(d) + f[len(paths.dir_prefix(s)) :]
                self._copy_file(f, target)
            return
        if self.tree.is_dir(d):
            d = paths.join(d, paths.basename(s))
        self._copy_file(s, d)

    def _copy_file(self, s: str, d: str) -> None:
        data = self.read_bytes(s)
        meta = self.tree.get(s)
        mime = meta.mime_type if meta is not None and meta.kind == "memory" else None
        self.write_bytes(d, data, mime_type=mime)

    def mv(self, src: str, dst: str) -> None:
        """Move or rename a file or directory; into ``dst`` if it is an existing directory.

        A stored file is renamed in place with one ``UPDATE``; an existing file at the target
        is replaced.

        Raises:
            FsError: ``ENOENT``, ``EPERM`` (session files), ``ENOTEMPTY`` (non-empty target
                directory), ``ENOTDIR``, ``EINVAL`` (a directory into itself).
        """
        self._check_open()
        s, d = paths.normalize(src), paths.normalize(dst)
        if not (self.tree.is_file(s) or self.tree.is_dir(s)):
            raise FsError(errno.ENOENT, s)
        if s == paths.ROOT:
            raise FsError(errno.EPERM, s, "cannot move the root")
        if self.tree.is_dir(d) and d != s:
            d = paths.join(d, paths.basename(s))
        if d == s:
            return
        if self.tree.is_file(s):
            self._mv_file(s, d)
        else:
            self._mv_tree(s, d)

    def _mv_file(self, s: str, d: str) -> None:
        meta = self.tree.get(s)
        assert meta is not None
        if meta.kind == "session":
            raise FsError(errno.EPERM, s, "session files are read-only")
        self._check_writable(d)
        date = self.writer.move(s, d, tree=False)
        self.tree.remove(s)
        self.tree.remove(d)
        self._invalidate(s)
        self._invalidate(d)
        self.tree.put(FileMeta(d, meta.size, meta.mime_type, date, "memory", meta.description))

    def _mv_tree(self, s: str, d: str) -> None:
        if paths.is_under(d, s):
            raise FsError(errno.EINVAL, d, f"cannot move {s} into itself")
        if self.tree.is_file(d) and not self.tree.is_dir(d):
            raise FsError(errno.ENOTDIR, d)
        if self.tree.is_dir(d) and not self.tree.is_empty_dir(d):
            raise FsError(errno.ENOTEMPTY, d)
        files = self.tree.files_under(s)
        if any(self.tree.files[f].kind == "session" for f in files):
            raise FsError(errno.EPERM, s, "contains session files, which are read-only")
        date = self.writer.move(s, d, tree=True)
        dirs = self.tree.dirs_under(s)
        explicit = [x for x in [s, *dirs] if x in self.tree.explicit_dirs]
        for f in files:
            meta = self.tree.remove(f)
            self._invalidate(f)
            if meta is not None:
                target = paths.dir_prefix(d) + f[len(paths.dir_prefix(s)) :]
                self._invalidate(target)
                self.tree.put(
                    FileMeta(target, meta.size, meta.mime_type, date, "memory", meta.description)
                )
        for x in reversed([s, *dirs]):
            self.tree.remove_dir(x)
        for x in explicit:
            self.tree.add_dir(d + x[len(s) :])
