"""The grep engine: GNU grep output equivalence, literal prefilter exactness, edge cases."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from deeplake_sdk.errors import DeeplakeError
from deeplake_sdk.grep import (
    FileResult,
    GrepOptions,
    GrepPatternError,
    Prefilter,
    compile_pattern,
    format_gnu,
    gnu_exit_status,
    grep_text,
    literal_prefilter,
    split_lines,
)

# ---------------------------------------------------------------------------------------------
# Comparison with the real GNU grep

FILES: dict[str, str] = {
    "a.txt": (
        "the cat sat on the mat\n"
        "concatenate strings\n"
        "Cat and CAT and cAt\n"
        "dog\n"
        "\n"
        "bobcat_x and cat-dog\n"
        "line with 123 and 45\n"
        "end\n"
    ),
    "b.txt": "café au lait\nCAFÉ NOIR\nnaïve café\n日本語 cat\ncaf é\nÜber straße",
    "c.txt": (
        "a.b and a*b\n"
        "(x) [y] {z}\n"
        "$5 costs ^caret\n"
        "back\\slash\n"
        "50% off_sale\n"
        "snake_case_name\n"
        "100%\n"
        "under_score and %_%\n"
        "axb\n"
    ),
    "d.txt": "",
    "e.txt": "\n\n\n",
    "f.txt": "cat\r\nCat\r\nbobcat\ncat_dog\ncats\n  cat  \ttab\n",
    "g.txt": "nothing to see here\nreally nothing",
    "sub/h.txt": "cat in a subdirectory\ndog in a subdirectory\n",
}

PATTERNS = [
    "cat",
    "Cat",
    "cat|dog",
    "c(a|o)t",
    "[0-9]+",
    "[[:digit:]]{2}",
    "^c",
    "t$",
    "^$",
    "a.b",
    "a\\.b",
    "",
    "_",
    "%",
    "%_%",
    "é",
    "café",
    "\\<cat\\>",
    "[[:space:]]$",
    "[^a-z ]",
    "(x)",
    "$5",
    "a*b",
    "x*",
    "cat\ndog",
    "s",
    "straße",
]

FLAG_SETS = [
    "",
    "-i",
    "-n",
    "-l",
    "-c",
    "-v",
    "-F",
    "-w",
    "-x",
    "-L",
    "-in",
    "-vc",
    "-lw",
    "-iF",
    "-vn",
    "-wi",
    "-cw",
    "-nw",
    "-Fw",
    "-ix",
    "-vl",
    "-vL",
    "-Fc",
    "-m1",
    "-m1 -v",
    "-m2 -c",
    "-m2 -vn",
    "-m0",
    "-m0 -c",
    "-m0 -L",
    "-vx",
    "-vw",
    "-vF",
]

_FLAG_FIELDS = {
    "i": "ignore_case",
    "n": "line_numbers",
    "l": "files_with_matches",
    "L": "files_without_match",
    "c": "count",
    "v": "invert",
    "F": "fixed",
    "w": "word",
    "x": "line_regexp",
}


def options_for(flags: str, pattern: str) -> GrepOptions:
    kwargs: dict[str, object] = {}
    for token in flags.split():
        if token.startswith("-m"):
            kwargs["max_count"] = int(token[2:])
            continue
        for letter in token.lstrip("-"):
            kwargs[_FLAG_FIELDS[letter]] = True
    return GrepOptions(pattern, **kwargs)  # type: ignore[arg-type]


def _gnu_grep() -> str | None:
    for candidate in ("/usr/bin/grep", shutil.which("grep")):
        if not candidate or not os.path.exists(candidate):
            continue
        version = subprocess.run(
            [candidate, "--version"], check=False, capture_output=True, text=True
        )
        if "GNU grep" in version.stdout:
            return candidate
    return None


GNU_GREP = _gnu_grep()
needs_gnu = pytest.mark.skipif(GNU_GREP is None, reason="GNU grep is not installed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grep-corpus")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return root


def run_gnu(root: Path, flags: str, pattern: str, files: list[str]) -> tuple[list[str], int]:
    assert GNU_GREP is not None
    env = dict(os.environ, LC_ALL="C.UTF-8")
    matcher = [] if "F" in flags else ["-E"]
    argv = [GNU_GREP, *matcher, *flags.split(), "-e", pattern, "--", *files]
    proc = subprocess.run(argv, check=False, cwd=root, env=env, capture_output=True)
    assert proc.returncode in (0, 1), proc.stderr.decode()
    out = proc.stdout.decode("utf-8")
    return (out.split("\n")[:-1] if out else []), proc.returncode


def run_ours(root: Path, flags: str, pattern: str, files: list[str]) -> tuple[list[str], int]:
    opts = options_for(flags, pattern)
    results = [grep_text(f, (root / f).read_bytes().decode("utf-8"), opts) for f in files]
    return format_gnu(results, opts, with_filename=len(files) > 1), gnu_exit_status(results, opts)


@needs_gnu
@pytest.mark.parametrize("flags", FLAG_SETS)
def test_output_equals_gnu_grep(corpus: Path, flags: str) -> None:
    files = sorted(FILES)
    mismatches = []
    for pattern in PATTERNS:
        expected = run_gnu(corpus, flags, pattern, files)
        got = run_ours(corpus, flags, pattern, files)
        if got != expected:
            mismatches.append((pattern, expected, got))
    assert not mismatches, mismatches


@needs_gnu
@pytest.mark.parametrize("flags", ["", "-n", "-c", "-l", "-v", "-in", "-cv", "-L"])
@pytest.mark.parametrize("name", ["a.txt", "b.txt", "d.txt", "f.txt"])
def test_single_file_output_equals_gnu_grep(corpus: Path, flags: str, name: str) -> None:
    for pattern in ("cat", "^$", "é|[0-9]"):
        assert run_ours(corpus, flags, pattern, [name]) == run_gnu(corpus, flags, pattern, [name])


# ---------------------------------------------------------------------------------------------
# Matching details


def test_line_splitting_like_gnu() -> None:
    assert split_lines("") == []
    assert split_lines("\n") == [""]
    assert split_lines("a") == ["a"]
    assert split_lines("a\n") == ["a"]
    assert split_lines("a\n\nb") == ["a", "", "b"]
    assert split_lines("a\r\nb\r\n") == ["a\r", "b\r"]


def test_grep_text_structured_result() -> None:
    opts = GrepOptions("o", max_count=2)
    result = grep_text("/notes/x.md", "one\ntwo\nthree\nfour\n", opts)
    assert result.count == 2 and result.matched
    assert [(m.path, m.line_number, m.line) for m in result.matches] == [
        ("/notes/x.md", 1, "one"),
        ("/notes/x.md", 2, "two"),
    ]
    inverted = grep_text("p", "one\ntwo\nthree\n", GrepOptions("o", invert=True))
    assert [m.line_number for m in inverted.matches] == [3]
    assert not grep_text("p", "", GrepOptions("")).matched
    assert grep_text("p", b"caf\xc3\xa9\n", GrepOptions("é")).count == 1


def test_files_with_matches_stops_at_first_selected_line() -> None:
    result = grep_text("p", "a\na\na\n", GrepOptions("a", files_with_matches=True))
    assert result.count == 1


def test_count_lists_every_file_including_prefiltered_ones() -> None:
    opts = GrepOptions("x", count=True)
    results = [grep_text("/a", "x\nx\n", opts), FileResult("/b")]
    assert format_gnu(results, opts, with_filename=True) == ["/a:2", "/b:0"]
    assert format_gnu(results, opts, with_filename=False) == ["2", "0"]


def test_option_validation() -> None:
    with pytest.raises(ValueError):
        GrepOptions("x", files_with_matches=True, files_without_match=True)
    assert GrepOptions("x", max_count=-1).max_count is None


@pytest.mark.parametrize("pattern", ["(", "a)", "[z-a]", "*a", "a{2,1}", "\\", "[[:nope:]]"])
def test_invalid_pattern_raises_clear_error(pattern: str) -> None:
    with pytest.raises(GrepPatternError) as info:
        compile_pattern(GrepOptions(pattern))
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, DeeplakeError)
    assert repr(pattern) in str(info.value)
    with pytest.raises(GrepPatternError):
        literal_prefilter(GrepOptions(pattern))
    with pytest.raises(GrepPatternError):
        grep_text("p", "text", GrepOptions(pattern))


def test_fixed_strings_are_not_regexes() -> None:
    assert compile_pattern(GrepOptions("(", fixed=True)).search("a(b")
    assert not compile_pattern(GrepOptions("a.b", fixed=True)).search("axb")


def test_word_regexp_semantics() -> None:
    rx = compile_pattern(GrepOptions("cat", word=True))
    assert rx.search("a cat.")
    assert rx.search("cat")
    assert rx.search("cat-dog")
    assert not rx.search("cat_dog")
    assert not rx.search("bobcat")
    assert not rx.search("cats")
    assert not rx.search("caté")
    # GNU tries later matches when the first one is not a whole word.
    assert rx.search("bobcat cat")


# ---------------------------------------------------------------------------------------------
# Literal prefilter


def prefilter_text(pattern: str, **kwargs: object) -> str | None:
    found = literal_prefilter(GrepOptions(pattern, **kwargs))  # type: ignore[arg-type]
    return None if found is None else found.text


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("hello", "hello"),
        ("ab|cd", None),
        ("(foo)+bar", "foobar"),
        ("x?yz", "yz"),
        (r"\.", "."),
        ("[ab]c", "c"),
        ("a.b", "a"),
        ("abc.de", "abc"),
        ("ab.cde", "cde"),
        ("(ab){2,}c", "ababc"),
        ("a{3}", "aaa"),
        ("(abc)*d", "d"),
        ("(abc)?", None),
        (".*", None),
        ("[0-9]+", None),
        ("", None),
        ("^start", "start"),
        ("end$", "end"),
        (r"\bword\b", "word"),
        ("(xab|yab)c", "abc"),
        ("(?:x|)yz", "yz"),
        ("foo(?=bar)baz", "foobaz"),
        (r"(a)\1bc", "bc"),
        ("[[:digit:]]+ms", "ms"),
        (r"\<cat\>", "cat"),
        ("cat\ndog", None),
        ("foo\nfoobar", "foo"),
        ("100%_off", "100%_off"),
    ],
)
def test_prefilter_cases(pattern: str, expected: str | None) -> None:
    assert prefilter_text(pattern) == expected


def test_prefilter_alternative_inside_required_group() -> None:
    # Every match of a(bc|bd)e contains "a", "b" and "e"; the parser factors the common
    # prefix, so the longest required literal is "ab".
    found = prefilter_text("a(bc|bd)e")
    assert found in {"a", "b", "e", "ab"}
    assert found == "ab"


def test_prefilter_none_when_inverted_or_without_match() -> None:
    assert literal_prefilter(GrepOptions("hello", invert=True)) is None
    assert literal_prefilter(GrepOptions("hello", files_without_match=True)) is None


def test_prefilter_flags_and_modes() -> None:
    plain = literal_prefilter(GrepOptions("Hello"))
    assert plain == Prefilter("Hello", False)
    assert plain.operator == "LIKE"
    folded = literal_prefilter(GrepOptions("Hello", ignore_case=True))
    assert folded == Prefilter("Hello", True)
    assert folded.operator == "ILIKE"
    inline = literal_prefilter(GrepOptions("(?i)Hello"))
    assert inline is not None and inline.case_insensitive
    scoped = literal_prefilter(GrepOptions("Hel(?i:lo)"))
    assert scoped is not None and scoped.case_insensitive
    # Under -i, letters that also match non-ASCII characters (k: KELVIN SIGN, s: LONG S,
    # i: dotted/dotless I) and non-ASCII letters cannot be part of an ILIKE literal.
    assert prefilter_text("book_shelf", ignore_case=True) == "helf"
    assert prefilter_text("book_shelf") == "book_shelf"
    assert prefilter_text("café", ignore_case=True) == "caf"
    assert prefilter_text("café") == "café"
    assert prefilter_text("x", word=True) == "x"
    assert prefilter_text("line", line_regexp=True) == "line"


def test_prefilter_fixed_strings_and_like_escaping() -> None:
    found = literal_prefilter(GrepOptions("50%_a.b(c)\\", fixed=True))
    assert found == Prefilter("50%_a.b(c)\\", False)
    assert found.like_pattern() == "%50\\%\\_a.b(c)\\\\%"
    assert literal_prefilter(GrepOptions("a.b", fixed=True, ignore_case=True)) == Prefilter(
        "a.b", True
    )
    assert literal_prefilter(GrepOptions("", fixed=True)) is None
    assert Prefilter("%_\\x", False).like_pattern() == "%\\%\\_\\\\x%"


def ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def like_matches(prefilter: Prefilter, text: str) -> bool:
    """A small LIKE/ILIKE evaluator honouring ESCAPE '\\', as the SQL prefilter is run.

    ILIKE folds ASCII letters only, like PostgreSQL under the "C" collation (the weakest
    folding a server may apply).
    """
    pattern = prefilter.like_pattern()
    parts, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append({"%": ".*", "_": "."}.get(c, re.escape(c)))
        i += 1
    regex = "".join(parts)
    if prefilter.case_insensitive:
        return re.fullmatch(ascii_lower(regex), ascii_lower(text), re.DOTALL) is not None
    return re.fullmatch(regex, text, re.DOTALL) is not None


ATOMS = ["a", "b", "c", "A", "k", "S", "I", ".", "[ab]", "[^a]", r"\.", "%", "_", "^", "$", "é"]


def _regexes() -> st.SearchStrategy[str]:
    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(children, children).map("".join),
            st.tuples(children, children).map(lambda t: f"{t[0]}|{t[1]}"),
            st.tuples(children, children).map(lambda t: f"({t[0]}|{t[1]})"),
            children.map(lambda s: f"({s})"),
            st.tuples(children, st.sampled_from(["?", "*", "+", "{2}", "{1,2}", "{0}"])).map(
                lambda t: f"(?:{t[0]}){t[1]}"
            ),
        )

    return st.recursive(st.sampled_from(ATOMS), extend, max_leaves=8)


TEXT_ALPHABET = "abcAB.%_ kKSs\u017f\u212a\u0130\u0131éÉ\n"


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=_regexes(),
    text=st.text(alphabet=TEXT_ALPHABET, max_size=40),
    ignore_case=st.booleans(),
    word=st.booleans(),
    fixed=st.booleans(),
)
@example(pattern="a(bc|bd)e", text="xabde", ignore_case=False, word=False, fixed=False)
@example(pattern="sk", text="\u017f\u212a", ignore_case=True, word=False, fixed=False)
@example(pattern="%_", text="a%_b", ignore_case=False, word=False, fixed=True)
@example(pattern="(?:a.)?b", text="b", ignore_case=False, word=False, fixed=False)
@example(pattern="(?:ab)*c", text="c", ignore_case=False, word=False, fixed=False)
@example(pattern="é", text="É", ignore_case=True, word=False, fixed=False)
def test_prefilter_never_excludes_a_match(
    pattern: str, text: str, ignore_case: bool, word: bool, fixed: bool
) -> None:
    opts = GrepOptions(pattern, ignore_case=ignore_case, word=word, fixed=fixed)
    try:
        regex = compile_pattern(opts)
    except GrepPatternError:
        assume(False)
    prefilter = literal_prefilter(opts)
    if prefilter is None:
        return
    assert prefilter.text
    for line in split_lines(text):
        if regex.search(line):
            assert prefilter.matches(line), (prefilter, line)
            assert prefilter.matches(text)
            assert like_matches(prefilter, text), (prefilter, text)
    # The engine's own result agrees: a file rejected by the prefilter has no match.
    if not like_matches(prefilter, text):
        assert not grep_text("p", text, opts).matched
