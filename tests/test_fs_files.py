"""``fs.open(path, mode)`` file objects, and the deprecated constructor alias."""

from __future__ import annotations

import errno

import pytest

from deeplake_sdk import DeeplakeFs, FsError


def test_text_and_binary_files_read_write_append(fs):
    with fs.open("/f/a.md", "w") as f:
        f.write("line 1\n")
    with fs.open("/f/a.md", "a") as f:
        f.write("line 2\n")
    with fs.open("/f/a.md") as f:
        assert [line.rstrip() for line in f] == ["line 1", "line 2"]
    with fs.open("/f/b.bin", "wb") as f:
        f.write(b"\x00\xff")
    with fs.open("/f/b.bin", "rb") as f:
        assert f.read() == b"\x00\xff"
    fs.flush()
    assert fs.read_text("/f/a.md") == "line 1\nline 2\n"


def test_exclusive_creation_and_bad_modes(fs):
    with fs.open("/x.md", "x") as f:
        f.write("first")
    with pytest.raises(FileExistsError) as info:
        fs.open("/x.md", "x")
    assert isinstance(info.value, FsError) and info.value.errno == errno.EEXIST
    for mode in ("r+", "rw", "wbt", "q"):
        with pytest.raises(ValueError, match="invalid mode"):
            fs.open("/x.md", mode)
    with pytest.raises(FileNotFoundError):
        fs.open("/missing.md")


def test_a_failed_with_block_stores_nothing(fs):
    with pytest.raises(RuntimeError), fs.open("/half.md", "w") as f:
        f.write("half written")
        raise RuntimeError("boom")
    assert not fs.exists("/half.md")


def test_the_former_constructor_name_still_works_with_a_warning(api):
    with pytest.warns(DeprecationWarning, match="DeeplakeFs"):
        fs = DeeplakeFs.open(api, cache=False)
    assert isinstance(fs, DeeplakeFs)
    fs.close()
