"""Pure units: path normalisation and the directory tree."""

from __future__ import annotations

import errno
import random

import pytest

from deeplake_sdk import FsError
from deeplake_sdk.fs import paths
from deeplake_sdk.fs.tree import FileMeta, Tree


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("a/b", "/a/b"),
        ("/a//b/", "/a/b"),
        ("//a", "/a"),
        ("/a/./b/../c", "/a/c"),
        ("/../..", "/"),
        ("/", "/"),
        ("x_y%.md", "/x_y%.md"),
    ],
)
def test_normalize(raw, norm):
    assert paths.normalize(raw) == norm


@pytest.mark.parametrize("bad", ["", "a\x00b"])
def test_normalize_rejects(bad):
    with pytest.raises(FsError) as info:
        paths.normalize(bad)
    assert info.value.errno == errno.EINVAL


def test_ancestors_and_is_under():
    assert paths.ancestors("/a/b/c") == ["/", "/a", "/a/b"]
    assert paths.ancestors("/") == []
    assert paths.is_under("/a/b", "/a") and not paths.is_under("/ab", "/a")
    assert paths.is_under("/x", "/") and not paths.is_under("/", "/")


def test_tree_links_and_prunes_implicit_dirs():
    tree = Tree()
    tree.put(FileMeta("/a/b/c.txt", 1))
    tree.put(FileMeta("/a/d.txt", 1))
    tree.add_dir("/a/empty")
    assert tree.listdir("/") == ["a"] and tree.listdir("/a") == ["b", "d.txt", "empty"]
    tree.remove("/a/b/c.txt")
    assert not tree.is_dir("/a/b")  # implicit and now empty: gone
    tree.remove("/a/d.txt")
    assert tree.is_dir("/a")  # still holds the explicit /a/empty
    tree.remove_dir("/a/empty")
    assert tree.listdir("/") == [] and tree.is_dir("/")


def test_tree_walk_and_file_under_directory_name():
    tree = Tree()
    tree.put_many([FileMeta("/x/1", 1), FileMeta("/x/y/2", 1), FileMeta("/x/y", 5)])
    assert tree.is_file("/x/y") and tree.is_dir("/x/y")
    assert list(tree.walk("/x")) == [("/x", ["y"], ["1", "y"]), ("/x/y", [], ["2"])]
    tree.remove("/x/y/2")
    assert tree.is_file("/x/y") and not tree.is_dir("/x/y")
    assert tree.files_under("/x") == ["/x/1", "/x/y"]


def test_put_many_builds_the_same_tree_as_put_one_by_one():
    metas = [
        FileMeta(p, 1)
        for p in ("/a/b/c.md", "/a/b/d.md", "/a/e.md", "/f.md", "/a/b/c.md", "/x/y/z/w.md")
    ]
    one, many = Tree(), Tree()
    for meta in metas:
        one.put(meta)
    many.put_many(metas)
    assert many.files == one.files and many._children == one._children
    assert list(many.walk("/")) == list(one.walk("/"))
    many.remove("/x/y/z/w.md")  # implicit directories go with their last file
    assert not many.is_dir("/x") and many.is_dir("/a/b")


@pytest.mark.parametrize(
    "raw", ["/a/b", "/a/.b", "/a/./b", "/a//b", "/a/b/", "a/b", "/a/b/..", "/"]
)
def test_the_fast_path_of_normalize_agrees_with_posixpath(raw):
    import posixpath

    assert paths.normalize(raw) == posixpath.normpath(posixpath.join("/", raw)).replace("//", "/")


def _contents(tree: Tree) -> tuple[dict[str, FileMeta], dict[str, list[str]]]:
    dirs = [paths.ROOT, *tree.dirs_under(paths.ROOT)]
    return dict(tree.files), {d: tree.listdir(d) for d in dirs}


def _apply(tree: Tree, op: tuple[str, str]) -> None:
    kind, p = op
    if kind == "put":
        tree.put(FileMeta(p, len(p)))
    elif kind == "many":
        tree.put_many([FileMeta(p, 1), FileMeta(p + "x/y", 2)])
    elif kind == "remove":
        tree.remove(p)
    elif kind == "mkdir":
        tree.add_dir(p)
    elif tree.is_empty_dir(p):
        tree.remove_dir(p)


def test_copies_share_until_either_changes_and_never_see_each_others_changes():
    rng = random.Random(7)
    names = ["/a/b", "/a/c", "/d", "/a/b/e", "/f/g/h", "/a"]
    kinds = ["put", "many", "remove", "mkdir", "rmdir"]
    for _ in range(200):
        base = Tree()
        for p in rng.sample(names, 3):
            base.put(FileMeta(p, 1))
        copy = Tree()
        copy.copy_from(base)
        assert copy.frozen_files() is base.frozen_files() is base.files
        ops = [(rng.choice(kinds), rng.choice(names)) for _ in range(6)]
        # the same operations on a tree built from scratch, for the expected contents
        expected = Tree()
        expected.put_many(base.files.values())
        before = _contents(base)
        for op in ops:
            _apply(copy, op)
            _apply(expected, op)
        assert _contents(copy) == _contents(expected)
        assert _contents(base) == before  # the tree copied from is untouched
        for op in ops[:3]:  # and it may change in turn without touching the copy
            _apply(base, op)
        assert _contents(copy) == _contents(expected)
