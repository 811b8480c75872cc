"""``fsspec.open("deeplake://...")`` and pandas through the registered entry point."""

from __future__ import annotations

import re

import pytest
from integrations_support import run_example, service_env

fsspec = pytest.importorskip("fsspec")
pd = pytest.importorskip("pandas")


@pytest.fixture
def env(srv, workspace, tmp_path, monkeypatch):
    values = service_env(srv, workspace, tmp_path)
    for key, value in values.items():
        if key.startswith("DEEPLAKE_"):
            monkeypatch.setenv(key, value)
    cls = fsspec.get_filesystem_class("deeplake")
    cls.clear_instance_cache()  # instances are cached per arguments: one per test here
    yield values
    for fs in list(cls._cache.values()):
        fs.flush()
    cls.clear_instance_cache()


def test_entry_point_registers_the_protocol():
    from deeplake_sdk.integrations.fsspec import DeeplakeFileSystem

    assert fsspec.get_filesystem_class("deeplake") is DeeplakeFileSystem


def test_open_read_write_ls_rm(env, raw):
    with fsspec.open("deeplake://memory/notes/a.md", "w") as f:
        f.write("alpha\nbeta\n")
    with fsspec.open("deeplake://memory/notes/a.md", "r") as f:
        assert f.read() == "alpha\nbeta\n"
    fs = fsspec.filesystem("deeplake")
    fs.pipe_file("memory/notes/b.md", b"bee")
    assert fs.cat_file("deeplake://memory/notes/b.md", 1) == b"ee"
    assert fs.ls("memory/notes", detail=False) == ["memory/notes/a.md", "memory/notes/b.md"]
    info = fs.info("memory/notes/a.md")
    assert (info["type"], info["size"]) == ("file", 11)
    assert fs.info("memory/notes")["type"] == "directory"
    fs.cp_file("memory/notes/b.md", "memory/copy/b.md")
    assert fs.cat("memory/copy/b.md") == b"bee"
    fs.mkdir("memory/empty")
    assert fs.isdir("memory/empty")
    fs.rm("memory/notes/b.md")
    assert not fs.exists("memory/notes/b.md")
    with pytest.raises(FileNotFoundError):
        fs.cat_file("memory/notes/b.md")
    with pytest.raises(FileNotFoundError):
        fs.info("memory/nope.md")
    fs.rm("memory/copy", recursive=True)
    fs.flush()
    rows = raw.rows("SELECT path FROM memory ORDER BY path")
    assert rows == [["/notes/a.md"]]


def test_changes_of_another_process_show_after_invalidate_cache_or_on_their_own(env, api, srv):
    from deeplake_sdk import DeeplakeFs

    def another_process_writes(path: str, text: str) -> None:
        with DeeplakeFs(api, cache=False, journal=False) as other:
            other.write_text(path, text)

    another_process_writes("/shared/a.csv", "x\n1\n")
    kept = fsspec.filesystem("deeplake", skip_instance_cache=True)
    fresh = fsspec.filesystem("deeplake", skip_instance_cache=True, use_listings_cache=False)
    for fs in (kept, fresh):
        assert fs.cat_file("memory/shared/a.csv") == b"x\n1\n"
        assert fs.ls("memory/shared", detail=False) == ["memory/shared/a.csv"]
    another_process_writes("/shared/a.csv", "x\n2\n")
    another_process_writes("/shared/b.csv", "y\n")
    assert fresh.cat_file("memory/shared/a.csv") == b"x\n2\n"
    before = srv.stats()["requests"]
    assert fresh.ls("memory/shared", detail=False) == ["memory/shared/a.csv", "memory/shared/b.csv"]
    assert srv.stats()["requests"] - before <= 6  # two refreshes (is it a file? its entries)
    assert kept.ls("memory/shared", detail=False) == ["memory/shared/a.csv"]  # its snapshot
    kept.invalidate_cache("memory/shared")
    assert kept.ls("memory/shared", detail=False) == ["memory/shared/a.csv", "memory/shared/b.csv"]
    assert kept.cat_file("memory/shared/a.csv") == b"x\n2\n"
    assert (
        fsspec.filesystem("deeplake", skip_instance_cache=True, listings_expiry_time=30).max_age
        == 30
    )


def test_pandas_reads_and_writes_csv(env):
    with fsspec.open("deeplake://memory/data/cities.csv", "w") as f:
        f.write("city,population\nLisbon,545000\nOslo,709000\n")
    df = pd.read_csv("deeplake://memory/data/cities.csv")
    assert df.to_dict("list") == {"city": ["Lisbon", "Oslo"], "population": [545000, 709000]}
    df.assign(big=df.population > 600000).to_csv("deeplake://memory/data/out.csv", index=False)
    back = pd.read_csv("deeplake://memory/data/out.csv")
    assert back["big"].tolist() == [False, True]


def test_example(srv, workspace, tmp_path):
    out = run_example("fsspec_pandas.py", service_env(srv, workspace, tmp_path))
    assert re.search(r"Lisbon\s+545000\n\s*Oslo\s+709000", out)
    assert "ls: ['example_memory/data/cities.csv']" in out
