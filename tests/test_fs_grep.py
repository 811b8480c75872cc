"""fs.grep: one round trip over 500 files, output identical to GNU grep's."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest

from deeplake_sdk import DeeplakeFs, SessionLog
from deeplake_sdk.bench.reference import ReferenceFs
from deeplake_sdk.grep import GrepOptions, format_gnu

GNU_GREP = shutil.which("grep")
WORDS = [
    "alpha",
    "beta",
    "error",
    "Error",
    "ERROR",
    "errno",
    "warn",
    "x_y",
    "xay",
    "50%",
    "a.b",
    "aXb",
    "word",
    "words",
    "sword",
    "café",
    "naïve",
    "path/to",
    "tab\tsep",
    "",
]
FLAGS = {
    "-i": "ignore_case",
    "-n": "line_numbers",
    "-l": "files_with_matches",
    "-c": "count",
    "-v": "invert",
    "-F": "fixed",
    "-w": "word",
}
CASES = [
    ([], "error"),
    (["-i"], "error"),
    (["-n"], "err(or|no)"),
    (["-l"], "x_y"),
    (["-c"], "warn"),
    (["-v"], "a|e"),
    (["-F"], "a.b"),
    (["-F"], "50%"),
    (["-w"], "word"),
    (["-i", "-n"], "^error"),
    (["-v", "-c"], "beta"),
    (["-l", "-w"], "errno"),
    (["-i", "-F"], "CAFÉ"),
    (["-n"], "b$"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(1234)
    files = {}
    for i in range(500):
        lines = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 6)))
            for _ in range(rng.randint(1, 8))
        ]
        text = "\n".join(lines) + ("\n" if i % 3 else "")
        files[f"g/f{i:03d}.txt"] = text
    root = tmp_path_factory.mktemp("gnu")
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root, files


@pytest.fixture
def loaded_fs(api, corpus, tmp_path):
    _, files = corpus
    with DeeplakeFs(api, cache=False) as fs:
        for rel, text in files.items():
            fs.write_text("/" + rel, text)
        fs.flush()
        fs.ls("/")  # metadata loaded: -c lists the files in scope without a query
        yield fs


@pytest.mark.skipif(GNU_GREP is None, reason="GNU grep is not installed")
@pytest.mark.parametrize(("flags", "pattern"), CASES, ids=[" ".join(f) + " " + p for f, p in CASES])
def test_grep_matches_gnu_grep_in_one_round_trip(srv, loaded_fs, corpus, flags, pattern):
    root, files = corpus
    options = {FLAGS[f]: True for f in flags}
    before = srv.stats()["requests"]
    results = loaded_fs.grep(pattern, "/g", **options)
    assert srv.stats()["requests"] == before + 1
    opts = GrepOptions(pattern=pattern, **options)
    ours = [line[1:] for line in format_gnu(results, opts, with_filename=True)]
    gnu = subprocess.run(
        [GNU_GREP, *([] if "-F" in flags else ["-E"]), *flags, "--", pattern, *sorted(files)],
        cwd=root,
        capture_output=True,
        text=True,
        env={"LC_ALL": "C.UTF-8"},
        check=False,
    )
    assert gnu.returncode in (0, 1), gnu.stderr
    assert ours == gnu.stdout.splitlines()


def test_grep_sees_queued_writes_and_session_logs(api):
    log = SessionLog(api, "g1", user="ada")
    log.log({"type": "prompt", "text": "where is the needle?"})
    log.log({"type": "response", "text": "no idea"})
    log.log({"type": "prompt", "text": "needle again"})
    log.flush()  # grep searches stored events; queued memory writes it searches at once
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/queued.md", "a needle in the queue\n")
        results = fs.grep("needle", include_sessions=True)
        assert [(r.path, [m.line_number for m in r.matches]) for r in results] == [
            ("/queued.md", [1]),
            (log.path, [1, 3]),
        ]
        assert [r.path for r in fs.grep("needle")] == ["/queued.md"]


def test_grep_per_file_strategy_reads_every_file(srv, api):
    with DeeplakeFs(api, cache=False) as fs:
        for i in range(5):
            fs.write_text(f"/p/{i}.md", f"line {i}\n")
    with ReferenceFs(api, cache=False) as fs:
        fs.ls("/")
        before = srv.stats()["requests"]
        results = fs.grep("line [13]", "/p")
        assert srv.stats()["requests"] == before + 5
    assert [r.path for r in results] == ["/p/1.md", "/p/3.md"]


def test_grep_rejects_a_bad_pattern_before_any_round_trip(srv, api):
    from deeplake_sdk.grep import GrepPatternError

    with DeeplakeFs(api, cache=False) as fs:
        before = srv.stats()["requests"]
        with pytest.raises(GrepPatternError):
            fs.grep("(unclosed")
        assert srv.stats()["requests"] == before


def test_grep_after_an_append_to_a_stored_file_finds_both_parts(api):
    with DeeplakeFs(api, cache=False) as fs:
        fs.write_text("/log.md", "first needle\n")
    with DeeplakeFs(api, cache=False) as fs:  # the append's base is the stored row
        fs.append_text("/log.md", "second needle\n")
        results = fs.grep("needle")
        assert [(r.path, [m.line_number for m in r.matches]) for r in results] == [
            ("/log.md", [1, 2])
        ]
