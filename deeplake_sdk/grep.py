r"""Server-independent grep engine: pattern compilation, SQL prefilter, matching, GNU output.

The filesystem runs a grep in two steps: one SQL query narrows the candidate files with a
``LIKE``/``ILIKE`` test on the longest literal that every match must contain
(:func:`literal_prefilter`), then :func:`grep_text` matches the candidates line by line in
memory and :func:`format_gnu` renders the result exactly as GNU ``grep -E`` would.

Patterns use Python's :mod:`re` syntax, which agrees with GNU ``grep -E`` for the usual
constructs (literals, ``.``, classes, anchors, alternation, groups, ``* + ? {m,n}``). The GNU
word anchors ``\<`` / ``\>`` and POSIX classes such as ``[[:digit:]]`` are translated;
``[:upper:]``, ``[:lower:]``, ``[:punct:]``, ``[:cntrl:]``, ``[:print:]`` and ``[:graph:]``
follow their ASCII meaning. As with GNU grep, a pattern containing newlines is a list of
patterns, any of which may match.

The cost of a match is bounded by refusing the patterns that make a backtracking engine take
exponential time: a repetition of something that itself repeats without bound (``(a+)+``,
``(x*y*)*``, ``(\w+\s?)+$``), and a repetition of an alternation two of whose branches match
the same text (``(a|a)*``, ``(ab|a.)+x``: each repetition of that text can be matched two
ways). Such patterns raise :class:`GrepPatternError` before any line is read; rewrite them
without the outer repetition (``a+``), make it possessive (``(a+)++``), or make the branches
distinct.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from deeplake_sdk._grep_syntax import required_literal, translate
from deeplake_sdk.errors import DeeplakeError
from deeplake_sdk.sql import like_escape

__all__ = [
    "FileResult",
    "GrepOptions",
    "GrepPatternError",
    "Match",
    "Prefilter",
    "compile_pattern",
    "format_gnu",
    "gnu_exit_status",
    "grep_text",
    "literal_prefilter",
    "split_lines",
]


class GrepPatternError(DeeplakeError, ValueError):
    """The grep pattern is not a valid regular expression.

    Attributes:
        pattern: The pattern as given.
    """

    def __init__(self, pattern: str, reason: str) -> None:
        self.pattern = pattern
        super().__init__(f"invalid grep pattern {pattern!r}: {reason}")


@dataclass(frozen=True)
class GrepOptions:
    """What to search for and how, mirroring GNU grep's flags.

    Attributes:
        pattern: Regular expression (Python :mod:`re` syntax) or, with ``fixed``, a plain
            string. Newlines separate alternative patterns, as in GNU grep.
        ignore_case: ``-i``: match letters regardless of case.
        line_numbers: ``-n``: prefix output lines with their 1-based line number.
        files_with_matches: ``-l``: print only the names of files with a selected line.
        files_without_match: ``-L``: print only the names of files without a selected line.
        count: ``-c``: print the number of selected lines of every file.
        invert: ``-v``: select the lines that do *not* match.
        fixed: ``-F``: the pattern is a literal string, not a regular expression.
        word: ``-w``: a match must be neither preceded nor followed by a word constituent
            (letter, digit or underscore).
        line_regexp: ``-x``: a match must span the whole line.
        max_count: ``-m NUM``: stop reading a file after ``NUM`` selected lines; ``None`` (or
            a negative number, as in GNU grep) means no limit.

    Raises:
        ValueError: If both ``files_with_matches`` and ``files_without_match`` are set.
    """

    pattern: str
    ignore_case: bool = False
    line_numbers: bool = False
    files_with_matches: bool = False
    files_without_match: bool = False
    count: bool = False
    invert: bool = False
    fixed: bool = False
    word: bool = False
    line_regexp: bool = False
    max_count: int | None = None

    def __post_init__(self) -> None:
        if self.files_with_matches and self.files_without_match:
            raise ValueError("files_with_matches (-l) and files_without_match (-L) are exclusive")
        if self.max_count is not None and self.max_count < 0:
            object.__setattr__(self, "max_count", None)


@dataclass(frozen=True)
class Match:
    r"""One selected line.

    Attributes:
        path: The file the line belongs to.
        line_number: 1-based line number.
        line: The line's text, without its newline (a ``'\r'`` stays part of it).
    """

    path: str
    line_number: int
    line: str


@dataclass
class FileResult:
    """The outcome of grepping one file.

    Attributes:
        path: The file's path.
        matches: The selected lines (the non-matching ones under ``invert``), in order.
        count: Number of selected lines, capped by ``max_count``. With ``-l``/``-L`` the scan
            stops at the first selected line, so it is then at most 1.
    """

    path: str
    matches: list[Match] = field(default_factory=list)
    count: int = 0

    @property
    def matched(self) -> bool:
        """Whether the file has at least one selected line."""
        return self.count > 0


@dataclass(frozen=True)
class Prefilter:
    """A literal that every matching line contains, usable as a SQL ``LIKE`` test.

    Attributes:
        text: The literal (original case).
        case_insensitive: Compare with ``ILIKE`` (``True``) or ``LIKE`` (``False``).
    """

    text: str
    case_insensitive: bool

    @property
    def operator(self) -> str:
        """The SQL operator to use: ``"ILIKE"`` or ``"LIKE"``."""
        return "ILIKE" if self.case_insensitive else "LIKE"

    def like_pattern(self) -> str:
        r"""The ``LIKE`` pattern ``%<text>%``, escaped for ``ESCAPE '\'``.

        Returns:
            The pattern, with ``\``, ``%`` and ``_`` in the literal escaped by a backslash.
        """
        return f"%{like_escape(self.text)}%"

    def matches(self, text: str) -> bool:
        """Evaluate the SQL test in memory.

        Args:
            text: A file's content.

        Returns:
            Whether ``text`` would pass the ``LIKE``/``ILIKE`` test.
        """
        if self.case_insensitive:
            return self.text.lower() in text.lower()
        return self.text in text


# ---------------------------------------------------------------------------------------------
# Pattern compilation and prefilter


def _body_source(opts: GrepOptions) -> str:
    """The regex source of the pattern list, before -w/-x wrapping."""
    parts = opts.pattern.split("\n")
    sources = [re.escape(p) if opts.fixed else translate(p) for p in parts]
    if len(sources) == 1:
        return sources[0]
    return "|".join(f"(?:{s})" for s in sources)


@functools.lru_cache(maxsize=256)
def _compile(opts: GrepOptions) -> re.Pattern[str]:
    try:
        body = _body_source(opts)
        if opts.line_regexp:
            body = rf"\A(?:{body})\Z"
        elif opts.word:
            body = rf"(?<!\w)(?:{body})(?!\w)"
        flags = re.IGNORECASE if opts.ignore_case else 0
        compiled = re.compile(body, flags)
        parsed = _sre()[0].parse(body, flags)  # once, for both checks
        nested = _nested_repetition(parsed)
        ambiguous = not nested and _overlapping_branches(parsed, flags)
    except (re.error, ValueError, OverflowError, RecursionError) as exc:
        raise GrepPatternError(opts.pattern, str(exc)) from None
    if nested:
        raise GrepPatternError(
            opts.pattern,
            "a repeated group that itself repeats without bound (like (a+)+) can take "
            "exponential time on a long line; drop the outer repetition or make it possessive",
        )
    if ambiguous:
        raise GrepPatternError(
            opts.pattern,
            "a repeated alternation whose branches can match the same text (like (a|a)*) can "
            "take exponential time on a long line; make the branches distinct",
        )
    return compiled


_UNBOUNDED_REPEATS = ("MAX_REPEAT", "MIN_REPEAT")


def _sre() -> tuple[Any, Any]:
    """Python's regex parser and compiler modules (private, stable since 3.0)."""
    try:
        from re import _compiler as sre_compile  # type: ignore[attr-defined]
        from re import _parser as sre_parse  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_compile  # type: ignore[no-redef]
        import sre_parse  # type: ignore[no-redef]
    return sre_parse, sre_compile


def _nested_repetition(parsed: Any) -> bool:
    """Whether an unbounded repetition holds another one (exponential backtracking)."""
    sre_parse, _ = _sre()
    unbounded = sre_parse.MAXREPEAT

    def walk(node: object, inside: bool) -> bool:
        if isinstance(node, sre_parse.SubPattern):
            return any(walk(item, inside) for item in node)
        if isinstance(node, (list, tuple)):
            if len(node) == 2 and str(node[0]) in _UNBOUNDED_REPEATS:
                _, high, body = node[1]
                if high == unbounded:
                    return inside or walk(body, True)
                return walk(body, inside)
            return any(walk(item, inside) for item in node)
        return False

    return walk(parsed, False)


#: Characters a common text of two branches is looked for with, besides the pattern's literals:
#: one of each kind a class or a category may hold.
_WITNESS_CHARS = "aA0 _-.\u00e9\t"
#: Longest common text looked for, and most alphabet characters.
_WITNESS_LENGTH = 3
_WITNESS_ALPHABET = 14
#: Most match attempts for one alternation; a larger one is not checked.
_WITNESS_BUDGET = 200_000


def _overlapping_branches(parsed: Any, flags: int = 0) -> bool:
    """Whether a repeated alternation has two branches that match a common text.

    Each repetition of that text can then be matched two ways: 2**n ways to try on a line
    that fails after n of them. The parsed pattern is what Python runs (``a|a`` is parsed as
    ``a`` then a choice between two empty branches), and the common text is looked for among
    the texts of up to :data:`_WITNESS_LENGTH` characters drawn from the pattern's literals
    and a few of each kind, so a longer common text, or an alternation with too many
    branches to try, goes unnoticed (a bound on the check, not on the match).
    """
    sre_parse, sre_compile = _sre()
    texts: list[str] = []

    def overlap(branches: list[Any]) -> bool:
        if not texts:  # only for patterns with a repeated alternation
            alphabet = _witness_alphabet(parsed, sre_parse)
            texts.append("")
            texts.extend(
                "".join(chars)
                for n in range(1, _WITNESS_LENGTH + 1)
                for chars in itertools.product(alphabet, repeat=n)
            )
        if len(branches) * len(texts) > _WITNESS_BUDGET:
            return False
        seen: set[str] = set()
        for branch in branches:
            fullmatch = sre_compile.compile(branch, flags).fullmatch
            matched = {t for t in texts if fullmatch(t)}
            if matched & seen:
                return True
            seen |= matched
        return False

    def walk(node: object, inside: bool) -> bool:
        if isinstance(node, sre_parse.SubPattern):
            return any(walk(item, inside) for item in node)
        if not isinstance(node, (list, tuple)):
            return False
        if len(node) == 2 and str(node[0]) in _UNBOUNDED_REPEATS:
            _, high, body = node[1]
            return walk(body, inside or high == sre_parse.MAXREPEAT)
        if len(node) == 2 and str(node[0]) == "BRANCH":
            branches = node[1][1]
            return (inside and overlap(branches)) or any(walk(b, inside) for b in branches)
        return any(walk(item, inside) for item in node)

    return walk(parsed, False)


def _witness_alphabet(parsed: Any, sre_parse: Any) -> str:
    """The characters common texts are made of: a few of each kind, then the literals."""
    found: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, sre_parse.SubPattern):
            for item in node:
                collect(item)
        elif isinstance(node, (list, tuple)):
            if len(node) == 2 and str(node[0]) in ("LITERAL", "NOT_LITERAL"):
                found.append(chr(node[1]))
            elif len(node) == 2 and str(node[0]) == "RANGE":
                found.extend(chr(c) for c in node[1])
            else:
                for item in node:
                    collect(item)

    collect(parsed)
    literals = [c for c in dict.fromkeys(found) if c not in _WITNESS_CHARS]
    room = max(0, _WITNESS_ALPHABET - len(_WITNESS_CHARS))
    return _WITNESS_CHARS + "".join(literals[:room])


def compile_pattern(opts: GrepOptions) -> re.Pattern[str]:
    """Compile the options' pattern into the regex that selects a line.

    ``-F`` escapes the pattern, ``-w`` requires that the match is neither preceded nor
    followed by a word constituent, ``-x`` that it spans the line, ``-i`` ignores case.
    Use ``.search(line)`` on one line at a time. Results are cached.

    Args:
        opts: The grep options.

    Returns:
        The compiled pattern.

    Raises:
        GrepPatternError: If the pattern is not a valid regular expression.
    """
    return _compile(opts)


def literal_prefilter(opts: GrepOptions) -> Prefilter | None:
    r"""The longest literal that every matching line must contain, for a SQL prefilter.

    Derived from the parsed pattern: runs of consecutive literals (groups included) inside
    parts that must match; optional or repeated-zero parts, classes, ``.``, and alternatives
    (except their common prefix or suffix) break runs. A file without the literal has no
    matching line, so ``WHERE content LIKE <like_pattern()> ESCAPE '\'`` never drops a match.
    With ``-i`` only ASCII characters that case-fold the same way in SQL and in the regex
    (every one except ``i``, ``k``, ``s``) may be part of the literal.

    Note that with ``-c`` GNU grep also prints ``path:0`` for the files the prefilter left
    out; a caller rendering ``-c`` output must add them (as empty :class:`FileResult`).

    Args:
        opts: The grep options.

    Returns:
        The prefilter, or ``None`` when no literal of length >= 1 is required, and always
        with ``-v`` or ``-L`` (files without a match are wanted then).

    Raises:
        GrepPatternError: If the pattern is not a valid regular expression.
    """
    compile_pattern(opts)  # validate
    if opts.invert or opts.files_without_match or opts.max_count == 0:
        return None
    found = required_literal(_body_source(opts), opts.ignore_case)
    return Prefilter(*found) if found else None


# ---------------------------------------------------------------------------------------------
# Matching and output


def split_lines(text: str) -> list[str]:
    r"""Split text into lines as GNU grep does.

    Args:
        text: File content.

    Returns:
        The lines, split on ``'\n'`` only; a trailing newline does not start an extra
        empty line and ``'\r'`` stays part of its line.
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def grep_text(path: str, text: str | bytes, opts: GrepOptions) -> FileResult:
    """Grep one file's content.

    Args:
        path: The file's path (copied into the result).
        text: The content; bytes are decoded as UTF-8 (invalid sequences replaced).
        opts: The grep options.

    Returns:
        The selected lines and their count, honouring ``-v`` and ``-m``; with ``-l``/``-L``
        the scan stops at the first selected line.

    Raises:
        GrepPatternError: If the pattern is not a valid regular expression.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return grep_lines(path, enumerate(split_lines(text), 1), opts)


def grep_lines(
    path: str, numbered_lines: Iterable[tuple[int, str]], opts: GrepOptions
) -> FileResult:
    """Grep lines that carry their own 1-based line numbers (e.g. prefiltered log lines).

    Args:
        path: The file's path (copied into the result).
        numbered_lines: ``(line_number, line)`` pairs in file order.
        opts: The grep options.

    Returns:
        As :func:`grep_text`.

    Raises:
        GrepPatternError: If the pattern is not a valid regular expression.
    """
    search = compile_pattern(opts).search
    result = FileResult(path)
    limit = opts.max_count
    if opts.files_with_matches or opts.files_without_match:
        limit = 1 if limit is None else min(limit, 1)
    if limit == 0:
        return result
    invert = opts.invert
    matches = result.matches
    for number, line in numbered_lines:
        if (search(line) is None) is invert:
            matches.append(Match(path, number, line))
            if len(matches) == limit:
                break
    result.count = len(matches)
    return result


def _selects_nothing(opts: GrepOptions) -> bool:
    """Whether GNU grep exits before reading any file, printing nothing (not even counts).

    It does so when no line can be selected: ``-m 0``, or ``-v`` with an empty pattern and
    neither ``-w`` nor ``-x``; with ``-L`` it still lists every file.
    """
    trivially_inverted = opts.invert and opts.pattern == "" and not opts.word
    return (opts.max_count == 0 or (trivially_inverted and not opts.line_regexp)) and (
        not opts.files_without_match
    )


def format_gnu(
    results: Iterable[FileResult], opts: GrepOptions, *, with_filename: bool
) -> list[str]:
    """Render results as the lines GNU ``grep -E`` prints for the same files.

    Args:
        results: One result per file, in output order (files the prefilter left out must be
            included as empty results for ``-c`` and ``-L``).
        opts: The options the results were produced with.
        with_filename: Prefix lines with ``path:`` (GNU's default for several files, ``-H``);
            ``False`` gives the single-file form (``-h``). ``-l``/``-L`` always print paths.

    Returns:
        Output lines without newlines: ``path:line``, ``path:n:line``, ``path`` (``-l``,
        ``-L``) or ``path:count`` (``-c``, every file, including 0).
    """
    results = list(results)
    if opts.files_without_match:
        return [r.path for r in results if not r.matched]
    if opts.files_with_matches:
        return [r.path for r in results if r.matched]
    if opts.count:
        if _selects_nothing(opts):
            return []
        return [f"{r.path}:{r.count}" if with_filename else str(r.count) for r in results]
    out: list[str] = []
    for r in results:
        prefix = f"{r.path}:" if with_filename else ""
        for m in r.matches:
            number = f"{m.line_number}:" if opts.line_numbers else ""
            out.append(f"{prefix}{number}{m.line}")
    return out


def gnu_exit_status(results: Iterable[FileResult], opts: GrepOptions) -> int:
    """The exit status GNU grep would return (errors aside).

    Args:
        results: The per-file results.
        opts: The options the results were produced with.

    Returns:
        0 if a line was selected in any file (also with ``-L``, as GNU grep >= 3.5), else 1.
    """
    if _selects_nothing(opts):
        return 1
    return 0 if any(r.matched for r in results) else 1
