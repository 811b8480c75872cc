r"""Regex-syntax internals of :mod:`deeplake_sdk.grep`.

GNU-only constructs are translated into Python :mod:`re` syntax, and the parse tree of a
pattern is walked to find the longest literal every match consumes (the SQL prefilter).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

try:  # Python >= 3.11
    from re import _constants as _sre_c  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

__all__ = ["required_literal", "translate"]


_POSIX_CLASSES = {
    "alpha": r"[^\W\d_]",
    "digit": r"[0-9]",
    "alnum": r"[^\W_]",
    "upper": r"[A-Z]",
    "lower": r"[a-z]",
    "space": r"[ \t\n\r\f\v]",
    "blank": r"[ \t]",
    "punct": r"[!-/:-@\[-`{-~]",
    "cntrl": r"[\x00-\x1f\x7f]",
    "print": r"[^\x00-\x1f\x7f]",
    "graph": r"[^\x00-\x20\x7f]",
    "xdigit": r"[0-9A-Fa-f]",
}


def _translate_bracket(pattern: str, start: int) -> tuple[str, int]:
    """Translate the bracket expression at ``start``; return (regex, index after it)."""
    i = start + 1
    negate = pattern.startswith("^", i)
    if negate:
        i += 1
    rest: list[str] = []
    classes: list[str] = []
    first = True
    while i < len(pattern):
        c = pattern[i]
        if c == "]" and not first:
            break
        first = False
        if c == "\\":
            rest.append(pattern[i : i + 2])
            i += 2
        elif c == "[" and pattern[i + 1 : i + 2] in (":", "=", "."):
            kind = pattern[i + 1]
            end = pattern.find(kind + "]", i + 2)
            if end < 0:
                rest.append(c)
                i += 1
                continue
            name = pattern[i + 2 : end]
            if kind != ":" or name not in _POSIX_CLASSES:
                raise ValueError(f"unsupported bracket item [{kind}{name}{kind}]")
            classes.append(_POSIX_CLASSES[name])
            i = end + 2
        else:
            rest.append(c)
            i += 1
    if i >= len(pattern) or not classes:  # unterminated (let re report it) or nothing to do
        end = min(i + 1, len(pattern))
        return pattern[start:end], end
    body = "".join(rest)
    if body.startswith("^"):
        body = "\\" + body
    alternatives = ([f"[{body}]"] if body else []) + classes
    union = "|".join(alternatives)
    return (f"(?:(?!{union})(?s:.))" if negate else f"(?:{union})"), i + 1


def translate(pattern: str) -> str:
    r"""Rewrite the GNU-only constructs of one pattern into Python regex syntax.

    ``\<`` and ``\>`` become word-boundary assertions and POSIX classes inside brackets
    (``[[:digit:]_]``) become alternations; everything else is copied unchanged.

    Args:
        pattern: One GNU ``-E`` style pattern.

    Returns:
        The Python regex source.

    Raises:
        ValueError: On an equivalence class, collating symbol or unknown class name.
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            pair = pattern[i : i + 2]
            out.append({"\\<": r"\b(?=\w)", "\\>": r"\b(?<=\w)"}.get(pair, pair))
            i += 2
        elif c == "[":
            text, i = _translate_bracket(pattern, i)
            out.append(text)
        else:
            out.append(c)
            i += 1
    return "".join(out)


_CAP = 1024  # longest literal the analysis builds
# ASCII letters that also match non-ASCII characters under re.IGNORECASE (U+0130, U+0131,
# U+212A, U+017F) which SQL's ILIKE does not fold to them: they cannot be part of a
# case-insensitive literal.
_CI_UNSAFE = frozenset("iIkKsS")


@dataclass(frozen=True)
class _Info:
    """What is known about the text any match of a regex node consumes."""

    exact: str | None  # the node always consumes exactly this text
    prefix: str  # every match starts with it
    suffix: str  # every match ends with it
    best: str  # longest literal every match contains


_UNKNOWN = _Info(None, "", "", "")
_EMPTY = _Info("", "", "", "")


def _longest(*texts: str) -> str:
    return max(texts, key=len)


def _exact(text: str) -> _Info:
    if len(text) > _CAP:
        return _Info(None, text[:_CAP], text[-_CAP:], text[:_CAP])
    return _Info(text, text, text, text)


def _concat(a: _Info, b: _Info) -> _Info:
    if a.exact is not None and b.exact is not None:
        return _exact(a.exact + b.exact)
    prefix = (a.exact + b.prefix)[:_CAP] if a.exact is not None else a.prefix
    suffix = (a.suffix + b.exact)[-_CAP:] if b.exact is not None else b.suffix
    joint = (a.suffix + b.prefix)[:_CAP]
    return _Info(None, prefix, suffix, _longest(a.best, b.best, joint, prefix, suffix))


def _repeat(item: _Info, low: int, high: int) -> _Info:
    if high == 0 or item.exact == "":
        return _EMPTY
    if low == 0:
        return _UNKNOWN
    if item.exact is not None:
        times = min(low, _CAP // len(item.exact) + 1)
        text = item.exact * times
        if low == high and times == low:
            return _exact(text)
        return _Info(None, text[:_CAP], text[-_CAP:], text[:_CAP])
    return _Info(None, item.prefix, item.suffix, item.best)


def _branch(items: Sequence[_Info]) -> _Info:
    exacts = {i.exact for i in items}
    if len(exacts) == 1 and None not in exacts:
        return items[0]
    prefix = _common_prefix([i.prefix for i in items])
    suffix = _common_prefix([i.suffix[::-1] for i in items])[::-1]
    return _Info(None, prefix, suffix, _longest(prefix, suffix))


def _common_prefix(texts: Sequence[str]) -> str:
    first, last = min(texts), max(texts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _subpatterns(av: object) -> Iterable:
    """The sub-patterns nested anywhere in a node's argument."""
    if isinstance(av, _sre_parse.SubPattern):
        yield av
    elif isinstance(av, (list, tuple)):
        for item in av:
            yield from _subpatterns(item)


def _uses_ignorecase(nodes: Iterable) -> bool:
    """Whether a scoped ``(?i:...)`` group occurs anywhere in the parsed pattern."""
    for op, av in nodes:
        if op is _sre_c.SUBPATTERN and av[1] & _sre_c.SRE_FLAG_IGNORECASE:
            return True
        if any(_uses_ignorecase(sub) for sub in _subpatterns(av)):
            return True
    return False


def _analyze(nodes: Iterable, ci: bool) -> _Info:
    info = _EMPTY
    for op, av in nodes:
        info = _concat(info, _analyze_node(op, av, ci))
    return info


def _analyze_node(op, av, ci: bool) -> _Info:
    c = _sre_c
    if op is c.LITERAL:
        char = chr(av)
        if ci and (not char.isascii() or char in _CI_UNSAFE):
            return _UNKNOWN
        return _exact(char)
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):  # zero-width: consumes nothing
        return _EMPTY
    if op is c.SUBPATTERN:
        return _analyze(av[3], ci)
    if op in (c.MAX_REPEAT, c.MIN_REPEAT) or op is getattr(c, "POSSESSIVE_REPEAT", None):
        low, high, item = av
        return _repeat(_analyze(item, ci), low, high)
    if op is c.BRANCH:
        return _branch([_analyze(b, ci) for b in av[1]])
    if op is getattr(c, "ATOMIC_GROUP", None):
        return _analyze(av, ci)
    return _UNKNOWN  # ANY, IN, NOT_LITERAL, GROUPREF, GROUPREF_EXISTS, ...


@functools.lru_cache(maxsize=256)
def required_literal(source: str, ignore_case: bool) -> tuple[str, bool] | None:
    """The longest literal every match of a regex consumes (remembered for 256 patterns).

    Args:
        source: Python regex source.
        ignore_case: Whether the regex is compiled with ``re.IGNORECASE``.

    Returns:
        ``(literal, case_insensitive)``, or ``None`` if no literal is required. The literal
        is case-insensitive when any part of the pattern ignores case; it then holds only
        ASCII characters that case-fold the same way in SQL ``ILIKE`` and in :mod:`re`.

    Raises:
        re.error: If the source is not a valid regex.
    """
    parsed = _sre_parse.parse(source, re.IGNORECASE if ignore_case else 0)
    ci = bool(parsed.state.flags & re.IGNORECASE) or _uses_ignorecase(parsed)
    try:
        best = _analyze(parsed, ci).best
    except RecursionError:  # pragma: no cover - absurdly nested pattern
        return None
    return (best, ci) if best else None
