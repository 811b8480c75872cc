"""grep's bounded cost: patterns that backtrack exponentially are refused before matching."""

from __future__ import annotations

import pytest

from deeplake_sdk.grep import GrepOptions, GrepPatternError, grep_text


@pytest.mark.parametrize("pattern", ["(a+)+$", "(x*y*)*z", r"(\w+\s?)+$", "((ab)*c*)+d"])
def test_nested_unbounded_repetition_is_refused_with_a_clear_error(pattern):
    line = "a" * 40 + "!"  # would take hours with (a+)+$ on a backtracking engine
    with pytest.raises(GrepPatternError, match="exponential time"):
        grep_text("/f", line, GrepOptions(pattern))


@pytest.mark.parametrize("pattern", ["(a|a)*c", "(ab|a.)+x", "(cat|dog|cat)+x", "((a|a)b)*c"])
def test_repeated_alternation_whose_branches_overlap_is_refused(pattern):
    line = "ab" * 30 + "cat" * 30 + "!"  # 2**30 ways to try for the first three
    with pytest.raises(GrepPatternError, match="branches can match the same text"):
        grep_text("/f", line, GrepOptions(pattern))


@pytest.mark.parametrize(
    ("pattern", "line"),
    [
        ("a+b*", "xaab"),
        ("(foo|bar)*baz", "foobarbaz"),
        ("(ab|ac)*d", "abacd"),
        ("(a|ab)*c", "aabc"),
        (r"(\w|\d)*!", "ab1!"),  # single characters: Python makes it one class
        ("(https?|ftp)://", "see https://x"),
        ("(a|)*c", "aac"),
        ("(ab)+", "abab"),
        ("(a+)++$", "aaa"),
        (r"\d{1,3}(\.\d{1,3}){3}", "ip 10.0.0.1"),
        ("(?:foo|bar)*baz", "foobarbaz"),
    ],
)
def test_ordinary_repetition_still_matches(pattern, line):
    assert grep_text("/f", line, GrepOptions(pattern)).count == 1
