"""grep over the filesystem: one round trip for candidates, then line matching in memory."""

from __future__ import annotations

from typing import Any

from deeplake_sdk.fs import paths
from deeplake_sdk.fs.base import FsBase
from deeplake_sdk.fs.writer import text_copy
from deeplake_sdk.grep import (
    FileResult,
    GrepOptions,
    compile_pattern,
    grep_lines,
    grep_text,
    literal_prefilter,
)
from deeplake_sdk.statements import files as st
from deeplake_sdk.statements.layout import oldest_per_path


class SearchMixin(FsBase):
    """grep."""

    def grep(
        self,
        pattern: str,
        path: str = "/",
        *,
        ignore_case: bool = False,
        invert: bool = False,
        fixed: bool = False,
        word: bool = False,
        count: bool = False,
        files_with_matches: bool = False,
        line_numbers: bool = True,
        include_sessions: bool = False,
        max_results: int | None = None,
    ) -> list[FileResult]:
        """Search file contents with a regular expression, in one round trip.

        The tables are filtered server-side by the longest literal that every match must
        contain (``LIKE``/``ILIKE``), then lines are matched here. Queued writes are searched
        too; binary files are skipped. Format the results like GNU grep with
        :func:`deeplake_sdk.grep.format_gnu`.

        Args:
            pattern: Python regular expression (with ``fixed``: a literal string).
            path: Directory (or single file) to search.
            ignore_case: ``-i``.
            invert: ``-v``: select the lines that do not match.
            fixed: ``-F``: the pattern is a literal.
            word: ``-w``: match whole words only.
            count: ``-c``: also report files in scope that have no matching line.
            files_with_matches: ``-l``.
            line_numbers: ``-n`` (line numbers are always recorded in the results).
            include_sessions: Search session logs as well (one JSON event per line).
            max_results: Stop after this many matching lines in total.

        Returns:
            One :class:`~deeplake_sdk.grep.FileResult` per file with a match (with ``count``:
            per file in scope), sorted by path.

        Raises:
            GrepPatternError: The pattern is not a valid regular expression.
        """
        self._check_open()
        opts = GrepOptions(
            pattern=pattern,
            ignore_case=ignore_case,
            invert=invert,
            fixed=fixed,
            word=word,
            count=count,
            files_with_matches=files_with_matches,
            line_numbers=line_numbers,
        )
        compile_pattern(opts)  # reject a bad pattern before any round trip
        scope = paths.normalize(path)
        sessions = include_sessions and self.sessions_enabled
        pending = {p: v for p, v in self.writer.view_all().items() if _in_scope(p, scope)}
        for p, view in pending.items():
            if view.state == "wait":
                self.writer.settle(p, view, self.flush_timeout)
        texts, lines = self._grep_candidates(opts, scope, sessions)
        for p, view in pending.items():
            text = text_copy(view.data) if view.state == "full" else None
            if text is None:
                texts.pop(p, None)
            else:
                texts[p] = text
        results: list[FileResult] = []
        budget = max_results
        for p in sorted({*texts, *lines}):
            result = grep_text(p, texts[p], opts) if p in texts else grep_lines(p, lines[p], opts)
            if budget is not None:
                if result.count > budget:
                    result.matches, result.count = result.matches[:budget], budget
                budget -= result.count
            if result.matched:
                results.append(result)
            if budget is not None and budget <= 0:
                break
        if count and budget is None:
            seen = {r.path for r in results}
            for p in self._files_in_scope(scope, sessions):
                if p not in seen:
                    results.append(FileResult(path=p))
            results.sort(key=lambda r: r.path)
        return results

    def _grep_candidates(
        self, opts: GrepOptions, scope: str, sessions: bool
    ) -> tuple[dict[str, str], dict[str, list[tuple[int, str]]]]:
        """Texts of the memory files and lines of the session files that may match."""
        pre = literal_prefilter(opts)
        sql, params = st.grep_candidates(
            self.layout,
            self.sessions_layout if sessions else None,
            scope,
            pre.like_pattern() if pre else None,
            pre.case_insensitive if pre else False,
        )
        return _assemble(self.api.query(sql, params))

    def _files_in_scope(self, scope: str, sessions: bool) -> list[str]:
        return sorted(
            p
            for p, meta in self.tree.files.items()
            if _in_scope(p, scope) and (meta.kind == "memory" or sessions)
        )


def _in_scope(path: str, scope: str) -> bool:
    return path == scope or paths.is_under(path, scope)


def _assemble(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, str], dict[str, list[tuple[int, str]]]]:
    """Whole texts of memory files, and numbered candidate lines of session files."""
    memory = [row for row in rows if row["kind"] == "memory"]
    texts = {
        paths.normalize(p): row["text"]
        for p, row in oldest_per_path(memory).items()
        if row["text"]  # '' for a binary file: nothing to search
    }
    lines: dict[str, list[tuple[int, str]]] = {}
    for row in rows:
        if row["kind"] != "memory":
            numbered = (int(row["n"]), st.compact_json(row["message"]))
            lines.setdefault(paths.normalize(row["path"]), []).append(numbered)
    for numbered in lines.values():
        numbered.sort()
    return texts, lines
