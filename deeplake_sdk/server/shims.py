"""pg_deeplake compatibility on stock PostgreSQL.

- ``CREATE TABLE .. USING deeplake``: ``deeplake`` is a real table access method (an alias of
  ``heap``), so the statement runs unchanged.
- ``SELECT deeplake_sync_table('t')``: a function in the shared ``deeplake`` schema; true when
  ``t`` exists in the caller's schema, an ``undefined_table`` error otherwise.
- ``CREATE INDEX .. USING deeplake_index ("c") [WITH (index_type = 'bm25')]``: rewritten by
  :func:`rewrite` into a real index (bm25/inverted/text -> GIN over ``to_tsvector('simple')``,
  exact_text or none -> hash for one column, btree otherwise) whose type is recorded in the
  index comment (``deeplake_index:<type>``) and listed by the ``deeplake.indexes`` view
  (indexes of the caller's workspace).
- ``a <#> b``: an operator returning a float score: text vs text -> full-text rank of the
  document ``a`` for the words of ``b`` (0 when nothing matches); numeric arrays (``real[]``
  as in ``FLOAT4[]`` columns, ``double precision[]``, ``numeric[]``, ``integer[]``, mixed)
  -> cosine similarity; NULL when an array is empty (0 in the ``postgres`` dialect, told by
  the connection's ``deeplake.dialect`` setting).

The rewriting is for compatibility only, not security (isolation is enforced by PostgreSQL
roles); it never touches string literals, quoted identifiers or comments.
"""

from __future__ import annotations

import re

SHIM_SCHEMA = "deeplake"
INDEX_COMMENT_PREFIX = "deeplake_index:"

#: index_type -> index method (text search types use GIN over a 'simple' tsvector).
INDEX_TYPES = {
    "bm25": "gin",
    "inverted": "gin",
    "text": "gin",
    "fulltext": "gin",
    "exact_text": "hash",
    "exact": "hash",
    "hash": "hash",
    "btree": "btree",
}
_DEFAULT_INDEX_TYPE = "exact_text"
_TSVECTOR_MAX_CHARS = 200_000  # keeps huge values under PostgreSQL's 1 MB tsvector limit


class ShimError(ValueError):
    """A pg_deeplake statement that cannot be mapped (answered as a 400 SQL error)."""

    sqlstate = "0A000"  # feature_not_supported


def mask(sql: str) -> str:
    """``sql`` with the insides of literals, quoted identifiers and comments blanked out.

    The result has the same length; string and identifier contents become ``_`` (delimiters
    kept), comments become spaces, so regexes can find keywords in code only and the spans map
    back to the original text. Linear time, mostly in the regex engine (large literals are
    common: inline bytea).
    """
    out: list[str] = []
    pos = i = 0
    n = len(sql)
    while True:
        m = _SPECIAL.search(sql, i)
        if m is None:
            break
        start, tok = m.start(), m.group()
        if tok == "$":
            tag = None if _word_char_before(sql, start) else _DOLLAR_TAG.match(sql, start)
            if tag is None:
                i = start + 1
                continue
            t = tag.group()
            close = sql.find(t, tag.end())
            inner_end = n if close < 0 else close
            out += [sql[pos : tag.end()], "_" * (inner_end - tag.end())]
            if close >= 0:
                out.append(t)
                pos = i = close + len(t)
            else:
                pos = i = n
            continue
        if tok == "--":
            close = sql.find("\n", start)
            end = n if close < 0 else close
            out += [sql[pos:start], " " * (end - start)]
            pos = i = end
            continue
        if tok == "/*":
            depth, j = 1, start + 2
            while depth:
                c = _COMMENT_TOKEN.search(sql, j)
                if c is None:
                    j = n
                    break
                depth += 1 if c.group() == "/*" else -1
                j = c.end()
            out += [sql[pos:start], " " * (j - start)]
            pos = i = j
            continue
        if tok == "'":
            e_string = (
                start > 0 and sql[start - 1] in "eE" and not _word_char_before(sql, start - 1)
            )
            body = (_E_STRING_BODY if e_string else _STRING_BODY).match(sql, start + 1)
        else:
            body = _IDENT_BODY.match(sql, start + 1)
        assert body is not None  # the patterns match the empty string
        inner_end = body.end()
        closed = inner_end < n and sql[inner_end] == tok
        out += [sql[pos : start + 1], "_" * (inner_end - start - 1)]
        pos = i = inner_end
        if closed:
            out.append(tok)
            pos = i = inner_end + 1
    out.append(sql[pos:])
    return "".join(out)


def _word_char_before(sql: str, i: int) -> bool:
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] in "_$")


_SPECIAL = re.compile(r"--|/\*|['\"$]")
_COMMENT_TOKEN = re.compile(r"/\*|\*/")
_STRING_BODY = re.compile(r"[^']*(?:''[^']*)*")
_E_STRING_BODY = re.compile(r"[^'\\]*(?:(?:\\.|'')[^'\\]*)*", re.DOTALL)
_IDENT_BODY = re.compile(r'[^"]*(?:""[^"]*)*')
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_IDENT = r'(?:"[^"]*"|[A-Za-z_][A-Za-z0-9_$]*)'
_QNAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT})?"
_INDEX_RE = re.compile(
    r"\bCREATE\s+(?P<unique>UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?"
    r"(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?:(?P<name>" + _IDENT + r")\s+)?"
    r"ON\s+(?P<only>ONLY\s+)?(?P<table>" + _QNAME + r")\s*"
    r'USING\s+(?:deeplake_index|"deeplake_index")\s*\((?P<cols>[^()]*)\)'
    r"(?:\s*WITH\s*\((?P<opts>[^()]*)\))?",
    re.IGNORECASE,
)
_USING_INDEX_RE = re.compile(r'\bUSING\s+(?:deeplake_index|"deeplake_index")', re.IGNORECASE)
_INDEX_TYPE_OPT = re.compile(r"\bindex_type\s*=\s*(?:'([^']*)'|\"([^\"]*)\"|(\w+))", re.I)


def rewrite(sql: str) -> str:
    """Map pg_deeplake-only syntax in ``sql`` to stock PostgreSQL (identity when none).

    Raises:
        ShimError: a ``deeplake_index`` with an unknown index_type or non-column keys.
    """
    if "deeplake_index" not in sql.lower():
        return sql
    masked = mask(sql)
    matches = list(_INDEX_RE.finditer(masked))
    if len(matches) != len(_USING_INDEX_RE.findall(masked)):
        raise ShimError(
            "unsupported use of deeplake_index; expected CREATE [UNIQUE] INDEX [IF NOT EXISTS] "
            "[name] ON table USING deeplake_index (column, ...) [WITH (index_type = '...')]"
        )
    parts: list[str] = []
    pos = 0
    for m in matches:
        end = masked.find(";", m.end())
        end = len(sql) if end < 0 else end
        create, comment = _index_statements(sql, m)
        parts += [sql[pos : m.start()], create, sql[m.end() : end], f"; {comment}"]
        pos = end
    parts.append(sql[pos:])
    return "".join(parts)


def _index_statements(sql: str, m: re.Match[str]) -> tuple[str, str]:
    def span(group: str) -> str:
        start, end = m.span(group)
        return sql[start:end] if start >= 0 else ""

    index_type = _DEFAULT_INDEX_TYPE
    opts = span("opts")
    if opts:
        t = _INDEX_TYPE_OPT.search(opts)
        if t is None:
            raise ShimError(f"deeplake_index: unsupported WITH options ({opts.strip()})")
        index_type = next(g for g in t.groups() if g is not None).strip().lower()
    if index_type not in INDEX_TYPES:
        raise ShimError(
            f"deeplake_index: unknown index_type {index_type!r}; "
            f"supported: {', '.join(INDEX_TYPES)}"
        )
    cols = [c.strip() for c in span("cols").split(",")]
    if not cols or not all(re.fullmatch(_IDENT, c) for c in cols):
        raise ShimError("deeplake_index: index columns must be plain column names")
    unique = bool(m.group("unique"))
    method = INDEX_TYPES[index_type]
    if method == "gin":
        if unique:
            raise ShimError(f"deeplake_index: a {index_type} index cannot be UNIQUE")
        exprs = [
            f"to_tsvector('simple'::regconfig, left(({c})::text, {_TSVECTOR_MAX_CHARS}))"
            for c in cols
        ]
    else:
        if method == "hash" and (len(cols) > 1 or unique):
            method = "btree"
        exprs = cols
    table = span("table").strip()
    schema_prefix = ""
    if "." in mask(table):
        dot = mask(table).index(".")
        schema_prefix = table[:dot].strip() + "."
    name = span("name") or _quote_ident(_default_index_name(table, cols, index_type))
    create = (
        f"CREATE {'UNIQUE ' if unique else ''}INDEX {span('ine')}{name} ON {span('only')}"
        f"{table} USING {method} ({', '.join(exprs)})"
    )
    comment = f"COMMENT ON INDEX {schema_prefix}{name} IS '{INDEX_COMMENT_PREFIX}{index_type}'"
    return create, comment


def _unquote(ident: str) -> str:
    ident = ident.strip()
    if ident.startswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident.lower()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _default_index_name(table: str, cols: list[str], index_type: str) -> str:
    masked = mask(table)
    base = _unquote(table[masked.index(".") + 1 :] if "." in masked else table)
    name = "_".join([base, *(_unquote(c) for c in cols), index_type, "idx"])
    encoded = name.encode()
    if len(encoded) > 63:
        name = encoded[:63].decode(errors="ignore")
    return name


def bootstrap_sql() -> str:
    """SQL (run by the superuser, under a lock) that installs the shared ``deeplake`` schema."""
    return _BOOTSTRAP


_BOOTSTRAP = r"""
CREATE SCHEMA IF NOT EXISTS deeplake;
REVOKE ALL ON SCHEMA deeplake FROM PUBLIC;
GRANT USAGE ON SCHEMA deeplake TO PUBLIC;
DO $do$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_am WHERE amname = 'deeplake') THEN
    CREATE ACCESS METHOD deeplake TYPE TABLE HANDLER heap_tableam_handler;
  END IF;
END $do$;

CREATE OR REPLACE FUNCTION deeplake.deeplake_sync_table(table_name text) RETURNS boolean
LANGUAGE plpgsql AS $fn$
BEGIN
  IF table_name IS NULL OR NOT (
       EXISTS (SELECT 1 FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
               WHERE s.nspname = pg_catalog.current_schema() AND c.relname = table_name
                 AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))
       OR (pg_catalog.strpos(table_name, '.') > 0 OR pg_catalog.strpos(table_name, '"') > 0)
          AND pg_catalog.to_regclass(table_name) IS NOT NULL) THEN
    RAISE EXCEPTION 'table "%" does not exist', table_name
      USING ERRCODE = 'undefined_table',
            HINT = 'create it first (CREATE TABLE ... USING deeplake)';
  END IF;
  RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION deeplake.text_score(document text, query text)
RETURNS double precision LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $fn$
  SELECT COALESCE(pg_catalog.ts_rank(pg_catalog.to_tsvector('simple'::regconfig,
           pg_catalog.left(document, 1000000)), q), 0)::double precision
  FROM (SELECT pg_catalog.string_agg(
                 '''' || pg_catalog.replace(pg_catalog.replace(lexeme, '\', '\\'), '''', '''''')
                 || '''', ' | ')::tsquery AS q
        FROM pg_catalog.unnest(pg_catalog.tsvector_to_array(
               pg_catalog.to_tsvector('simple'::regconfig, query))) AS lexeme) AS words
$fn$;

CREATE OR REPLACE FUNCTION deeplake.cosine_similarity(a double precision[], b double precision[])
RETURNS double precision LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $fn$
DECLARE dot double precision; na double precision; nb double precision;
BEGIN
  IF pg_catalog.cardinality(a) = 0 OR pg_catalog.cardinality(b) = 0 THEN
    -- the service scores an empty array NULL; the plain postgres dialect keeps 0
    IF pg_catalog.current_setting('deeplake.dialect', true) = 'postgres' THEN
      RETURN 0;
    END IF;
    RETURN NULL;
  END IF;
  IF pg_catalog.cardinality(a) <> pg_catalog.cardinality(b) THEN
    RAISE EXCEPTION 'different vector dimensions % and %',
      pg_catalog.cardinality(a), pg_catalog.cardinality(b) USING ERRCODE = 'data_exception';
  END IF;
  SELECT sum(x * y), sum(x * x), sum(y * y) INTO dot, na, nb FROM unnest(a, b) AS v(x, y);
  IF na IS NULL OR na = 0 OR nb = 0 THEN
    RETURN 0;
  END IF;
  RETURN dot / sqrt(na * nb);
END
$fn$;

CREATE OR REPLACE FUNCTION deeplake.cosine_similarity(a real[], b real[])
RETURNS double precision LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $fn$
  SELECT deeplake.cosine_similarity(a::double precision[], b::double precision[])
$fn$;
CREATE OR REPLACE FUNCTION deeplake.cosine_similarity(a numeric[], b numeric[])
RETURNS double precision LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $fn$
  SELECT deeplake.cosine_similarity(a::double precision[], b::double precision[])
$fn$;
CREATE OR REPLACE FUNCTION deeplake.cosine_similarity(a integer[], b integer[])
RETURNS double precision LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $fn$
  SELECT deeplake.cosine_similarity(a::double precision[], b::double precision[])
$fn$;

DO $do$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['text', 'real[]', 'double precision[]', 'numeric[]', 'integer[]'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_operator o
                   WHERE o.oprnamespace = 'deeplake'::regnamespace AND o.oprname = '<#>'
                     AND o.oprleft = t::regtype AND o.oprright = t::regtype) THEN
      EXECUTE pg_catalog.format(
        'CREATE OPERATOR deeplake.<#> (LEFTARG = %s, RIGHTARG = %s, FUNCTION = deeplake.%s)',
        t, t, CASE WHEN t = 'text' THEN 'text_score' ELSE 'cosine_similarity' END);
    END IF;
  END LOOP;
END $do$;

CREATE OR REPLACE VIEW deeplake.indexes WITH (security_invoker = true) AS
  SELECT i.schemaname, i.tablename, i.indexname,
         pg_catalog.substr(d.description, pg_catalog.length('deeplake_index:') + 1) AS index_type,
         i.indexdef
  FROM pg_catalog.pg_indexes i
  JOIN pg_catalog.pg_namespace s ON s.nspname = i.schemaname
  JOIN pg_catalog.pg_class c ON c.relnamespace = s.oid AND c.relname = i.indexname
  JOIN pg_catalog.pg_description d
    ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
  WHERE d.description LIKE 'deeplake\_index:%' AND i.schemaname = pg_catalog.current_schema();
GRANT SELECT ON deeplake.indexes TO PUBLIC;
"""
