"""What a query does, read from its text: statements, kinds, target tables, LIKE clauses.

Everything here works on :func:`~deeplake_sdk.server.shims.mask` ed text (literals, quoted
identifiers and comments blanked, same length), so keywords inside strings never count and
spans map back to the original text. It serves the dialect rewrites and the seeded faults
that depend on what a statement touches (the ALTER window, coalesced UPDATEs, read lag); it
is not a parser and never decides anything about security.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from deeplake_sdk.server.shims import mask

READ = "read"
WRITE = "write"
OTHER = "other"

_READ_HEADS = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
_WRITE_HEADS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})
_WRITE_WORDS = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)
_HEAD = re.compile(r"[\s(]*([A-Za-z]+)")
_IDENT = r'(?:"[^"]*"|[A-Za-z_][A-Za-z0-9_$]*)'
_QNAME = rf"(?P<name>{_IDENT}(?:\s*\.\s*{_IDENT})?)"
_INSERT = re.compile(rf"\s*INSERT\s+INTO\s+{_QNAME}", re.IGNORECASE)
_UPDATE = re.compile(rf"\s*UPDATE\s+(?:ONLY\s+)?{_QNAME}", re.IGNORECASE)
_ALTER = re.compile(rf"\s*ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_QNAME}", re.I)
_ADD_COLUMN = re.compile(
    r"\bADD\s+(?:COLUMN\s+)?(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?!CONSTRAINT\b|PRIMARY\b|UNIQUE\b|"
    r"CHECK\b|FOREIGN\b|EXCLUDE\b)",
    re.IGNORECASE,
)
_CREATE_INDEX = re.compile(
    r"\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?P<ine>IF\s+NOT\s+EXISTS\s+)?",
    re.IGNORECASE,
)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    """One statement of a query: its span in the text and its first keyword."""

    start: int
    end: int
    head: str


@dataclass
class Scan:
    """What a query is made of (see :func:`scan`).

    Attributes:
        text: the query as sent.
        masked: ``mask(text)``.
        statements: its non-empty statements, in order.
        kind: ``read`` (only SELECT-like statements), ``write`` (INSERT/UPDATE/DELETE/MERGE,
            possibly with SELECTs; no DDL nor transaction control) or ``other``.
        insert_tables: tables its INSERTs write to (unquoted, without schema).
        added_column_tables: tables it adds columns to (``ALTER TABLE .. ADD ..``).
        creates_index: it holds a ``CREATE INDEX``.
        creates_relation: it holds a ``CREATE`` of a table, view, sequence or the like.
    """

    text: str
    masked: str
    statements: list[Statement] = field(default_factory=list)
    kind: str = OTHER
    insert_tables: list[str] = field(default_factory=list)
    added_column_tables: list[str] = field(default_factory=list)
    creates_index: bool = False
    creates_relation: bool = False

    def single_update(self) -> str | None:
        """The table of a query that is exactly one ``UPDATE`` statement, else None."""
        if len(self.statements) != 1 or self.statements[0].head != "UPDATE":
            return None
        st = self.statements[0]
        m = _UPDATE.match(self.masked, st.start, st.end)
        return None if m is None else self._name(m)

    def has_returning(self) -> bool:
        """Whether the (single) statement has a ``RETURNING`` clause at its top level."""
        st = self.statements[0]
        return _top_level(self.masked, _RETURNING, st.start, st.end) is not None

    def statement_end(self) -> int:
        """End of the single statement's code (before trailing blanks and ``;``)."""
        st = self.statements[0]
        return len(self.masked[: st.end].rstrip())

    def _name(self, m: re.Match[str]) -> str:
        return table_name(self.text[m.start("name") : m.end("name")], self.masked)


def table_name(qualified: str, masked: str | None = None) -> str:
    """The bare table name of ``[schema.]table`` as PostgreSQL folds it."""
    masked_q = mask(qualified)
    dot = masked_q.rfind(".")
    name = qualified[dot + 1 :].strip() if dot >= 0 else qualified.strip()
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


def split(masked: str) -> list[tuple[int, int]]:
    """Spans of the non-empty statements of masked text (split on ``;``)."""
    spans = []
    start = 0
    for i, ch in enumerate(masked + ";"):
        if ch == ";":
            if masked[start:i].strip():
                spans.append((start, i))
            start = i + 1
    return spans


def scan(text: str) -> Scan:
    """Scan ``text`` (see :class:`Scan`)."""
    masked = mask(text)
    result = Scan(text, masked)
    for start, end in split(masked):
        m = _HEAD.match(masked, start, end)
        head = m.group(1).upper() if m else ""
        result.statements.append(Statement(start, end, head))
        if head == "INSERT":
            ins = _INSERT.match(masked, start, end)
            if ins is not None:
                result.insert_tables.append(result._name(ins))
        elif head == "ALTER":
            alt = _ALTER.match(masked, start, end)
            if alt is not None and _ADD_COLUMN.search(masked, alt.end(), end):
                result.added_column_tables.append(result._name(alt))
        elif head == "CREATE":
            if _CREATE_INDEX.match(masked, start, end):
                result.creates_index = True
            else:
                result.creates_relation = True
    heads = {st.head for st in result.statements}
    if heads and heads <= _READ_HEADS | _WRITE_HEADS:
        writes = heads & _WRITE_HEADS or any(
            st.head == "WITH" and _WRITE_WORDS.search(masked, st.start, st.end)
            for st in result.statements
        )
        result.kind = WRITE if writes else READ
    return result


def without_if_not_exists(text: str) -> str:
    """``text`` with ``IF NOT EXISTS`` blanked out of ``ADD COLUMN`` and ``CREATE INDEX``.

    The words become spaces (positions in error messages stay right), so PostgreSQL answers
    "already exists" as the service does, whatever the clause says.
    """
    masked = mask(text)
    spans: list[tuple[int, int]] = []
    for start, end in split(masked):
        idx = _CREATE_INDEX.match(masked, start, end)
        if idx is not None and idx.group("ine"):
            spans.append(idx.span("ine"))
        alt = _ALTER.match(masked, start, end)
        if alt is not None:
            spans += [
                m.span("ine")
                for m in _ADD_COLUMN.finditer(masked, alt.end(), end)
                if m.group("ine")
            ]
    if not spans:
        return text
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def _top_level(masked: str, pattern: re.Pattern[str], start: int, end: int) -> int | None:
    """Position of the first match of ``pattern`` outside parentheses, or None."""
    depth = 0
    pos = start
    for m in re.finditer(r"[()]", masked[start:end]):
        i = start + m.start()
        if depth == 0:
            hit = pattern.search(masked, pos, i)
            if hit:
                return hit.start()
        depth += 1 if m.group() == "(" else -1
        pos = i + 1
    if depth == 0:
        hit = pattern.search(masked, pos, end)
        if hit:
            return hit.start()
    return None


# ----------------------------------------------------------------------------- LIKE escape
_TOKEN = re.compile(
    r"""
      (?P<string>(?:[eEbBxXnN]|[uU]&)?'[^']*(?:''[^']*)*'?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<ident>"[^"]*"?)
    | (?P<dollar>\$\$_*\$\$|\$[A-Za-z_][A-Za-z0-9_]*\$_*\$[A-Za-z_][A-Za-z0-9_]*\$)
    | (?P<param>\$\d+)
    | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
    | (?P<cast>::)
    | (?P<open>[(\[])
    | (?P<close>[)\]])
    | (?P<punct>[,;])
    | (?P<dot>\.)
    | (?P<op>[-+*/<>=~!@#%^&|`?:]+)
    | (?P<space>\s+)
    """,
    re.VERBOSE,
)
_LIKE_WORDS = frozenset({"LIKE", "ILIKE"})
_QUANTIFIERS = frozenset({"ANY", "ALL", "SOME"})
# words that end the pattern operand of LIKE (lower precedence, or the next clause)
_STOP_WORDS = frozenset(
    [
        "AND",
        "OR",
        "NOT",
        "IS",
        "ISNULL",
        "NOTNULL",
        "BETWEEN",
        "IN",
        "LIKE",
        "ILIKE",
        "SIMILAR",
        "ESCAPE",
        "THEN",
        "ELSE",
        "WHEN",
        "FROM",
        "WHERE",
        "GROUP",
        "ORDER",
        "HAVING",
        "LIMIT",
        "OFFSET",
        "FETCH",
        "UNION",
        "INTERSECT",
        "EXCEPT",
        "RETURNING",
        "ON",
        "USING",
        "JOIN",
        "INNER",
        "LEFT",
        "RIGHT",
        "FULL",
        "CROSS",
        "NATURAL",
        "WINDOW",
        "FOR",
        "INTO",
        "AS",
        "ASC",
        "DESC",
        "NULLS",
        "SET",
        "DO",
        "OVER",
        "FILTER",
        "WITHIN",
    ]
)
_COMPARISONS = frozenset({"=", "<", ">", "<=", ">=", "<>", "!="})


def _tokens(masked: str) -> list[tuple[str, str, int, int]]:
    """(kind, upper-cased text, start, end) of the non-blank tokens of masked text."""
    out = []
    pos = 0
    n = len(masked)
    while pos < n:
        m = _TOKEN.match(masked, pos)
        if m is None:  # a character no token starts with: skip it
            pos += 1
            continue
        kind = m.lastgroup or "op"
        if kind != "space":
            out.append((kind, m.group().upper(), m.start(), m.end()))
        pos = m.end()
    return out


def _pattern_end(tokens: list[tuple[str, str, int, int]], i: int) -> tuple[int, bool] | None:
    """Scan the pattern operand starting at token ``i``.

    Returns:
        (end offset of its last token, whether an ``ESCAPE`` follows it), or None when there is
        no operand to escape.
    """
    depth = 0
    expect_operand = True
    last_end = None
    j = i
    while j < len(tokens):
        kind, up, _, end = tokens[j]
        if depth == 0:
            if kind == "punct" or (kind == "word" and up in _STOP_WORDS):
                return (last_end, up == "ESCAPE") if last_end is not None else None
            if kind == "op" and up in _COMPARISONS:
                break
            if kind == "close" or (kind == "word" and up == "END"):
                break
            operand = kind in ("word", "string", "ident", "param", "number", "dollar")
            if operand and not expect_operand:
                break  # an alias follows the operand
        if kind == "open" or (kind == "word" and up == "CASE"):
            depth += 1
            expect_operand = True
        elif kind == "close" or (kind == "word" and up == "END"):
            depth -= 1
            expect_operand = False
        elif kind in ("op", "dot"):
            expect_operand = True
        elif kind == "cast":
            # a type name, possibly several words (double precision), then [] or (n)
            j += 1
            while j < len(tokens) and tokens[j][0] == "word" and tokens[j][1] not in _STOP_WORDS:
                last_end = tokens[j][3]
                j += 1
            expect_operand = False
            continue
        elif kind == "punct":  # a comma between arguments (depth > 0 here)
            expect_operand = True
        else:  # an operand
            expect_operand = False
        last_end = end
        j += 1
    return None if last_end is None else (last_end, False)


def like_without_default_escape(text: str) -> str:
    """``text`` with ``ESCAPE ''`` after each ``LIKE``/``ILIKE`` pattern that has no ESCAPE.

    PostgreSQL treats a backslash in a LIKE pattern as an escape by default; the service does
    not. ``NOT LIKE`` and ``NOT ILIKE`` are covered; ``LIKE ANY/ALL (..)``, ``SIMILAR TO``, the
    ``~~`` operators and SQL inside function bodies are left alone.
    """
    if "like" not in text.lower():
        return text
    masked = mask(text)
    tokens = _tokens(masked)
    inserts = []
    for i, (kind, up, _, _) in enumerate(tokens):
        if kind != "word" or up not in _LIKE_WORDS or i + 1 >= len(tokens):
            continue
        nxt = tokens[i + 1]
        if nxt[0] == "word" and nxt[1] in _QUANTIFIERS:
            continue
        found = _pattern_end(tokens, i + 1)
        if found is not None and not found[1]:
            inserts.append(found[0])
    if not inserts:
        return text
    out = []
    prev = 0
    for pos in sorted(inserts):
        out += [text[prev:pos], " ESCAPE ''"]
        prev = pos
    out.append(text[prev:])
    return "".join(out)
