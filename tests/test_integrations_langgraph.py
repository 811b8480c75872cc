"""LangGraph's BaseStore methods (sync and async) on DeeplakeStore over the real server."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from integrations_support import run_example, service_env

pytest.importorskip("langgraph")

from langgraph.store.base import BaseStore, GetOp, Item, ListNamespacesOp, PutOp, SearchItem

from deeplake_sdk.integrations.langgraph import DeeplakeStore, decode_label, encode_label


@pytest.fixture
def store(fs):
    return DeeplakeStore(fs)


def test_is_a_base_store(store):
    assert isinstance(store, BaseStore) and not store.supports_ttl


def test_put_get_update_delete_and_stored_rows(store, fs, raw):
    store.put(("users", "ada"), "prefs", {"drink": "tea", "n": 1})
    item = store.get(("users", "ada"), "prefs")
    assert isinstance(item, Item)
    assert (item.namespace, item.key, item.value) == (
        ("users", "ada"),
        "prefs",
        {"drink": "tea", "n": 1},
    )
    assert item.created_at == item.updated_at and item.created_at.tzinfo is not None
    store.put(("users", "ada"), "prefs", {"drink": "coffee"})
    again = store.get(("users", "ada"), "prefs")
    assert again.value == {"drink": "coffee"}
    assert again.created_at == item.created_at and again.updated_at > item.updated_at
    assert store.get(("users", "ada"), "missing") is None
    fs.flush()
    [[text]] = raw.rows("SELECT summary FROM memory WHERE path = '/langgraph/users/ada/prefs.json'")
    stored = json.loads(text)
    assert stored["value"] == {"drink": "coffee"}
    assert stored["created_at"] == item.created_at.isoformat()
    store.delete(("users", "ada"), "prefs")
    assert store.get(("users", "ada"), "prefs") is None
    store.delete(("users", "ada"), "prefs")  # deleting a missing item is not an error
    fs.flush()
    assert raw.rows("SELECT path FROM memory WHERE path LIKE '/langgraph/%'") == []


def test_get_sees_items_another_filesystem_wrote(store, api, tmp_path):
    from deeplake_sdk import ContentCache, DeeplakeFs

    with DeeplakeFs(api, cache=ContentCache(tmp_path / "other")) as other:
        DeeplakeStore(other).put(("shared",), "k", {"from": "other"})
    assert store.get(("shared",), "k").value == {"from": "other"}


def test_special_characters_round_trip(store, fs):
    namespace = ("a/b", "with space", "ünïcödé 日本", "50%", "-~_")
    key = "k/../é.json"
    store.put(namespace, key, {"v": 1})
    store.put(("a/b",), "plain", {"v": 2})
    assert store.get(namespace, key).value == {"v": 1}
    [found] = store.search(namespace)
    assert (found.namespace, found.key) == (namespace, key)
    assert store.list_namespaces() == [("a/b",), namespace]
    assert store.list_namespaces(prefix=("a/b", "with space"), max_depth=2) == [
        ("a/b", "with space")
    ]
    # Every label and key is one path component under the root, none starting with ".".
    files = sorted(p for p in fs.tree.files if p.startswith("/langgraph/"))
    assert [len(p.split("/")) for p in files] == [4, 8]
    assert all(c and not c.startswith(".") for p in files for c in p.split("/")[2:])
    store.delete(namespace, key)
    assert store.get(namespace, key) is None


def test_labels_with_periods_through_batch(store):
    # BaseStore's methods refuse "." in labels; batch takes them and they stay distinct.
    dotted, split = ("a.b", "..", "x.json"), ("a", "b")
    store.batch([PutOp(dotted, "k", {"v": "dotted"}), PutOp(split, "k", {"v": "split"})])
    [got, listed] = store.batch([GetOp(dotted, "k"), ListNamespacesOp()])
    assert got.value == {"v": "dotted"}
    assert listed == [("a", "b"), dotted]


@pytest.mark.parametrize(
    "label", ["", "a", "a/b", ".", "..", "%2E", "x.json", "日本 語", "~_-", "%", "a%2Fb"]
)
def test_encode_label_is_reversible(label):
    component = encode_label(label)
    assert "/" not in component and "." not in component
    assert decode_label(component) == label


def test_search_filter_query_limit_offset(store):
    for i in range(7):
        colour = "red" if i % 2 else "blue"
        store.put(("docs", f"g{i % 2}"), f"k{i}", {"colour": colour, "n": i, "text": f"Note {i}"})
    store.put(("other",), "k", {"colour": "red", "text": "note elsewhere"})
    everything = store.search(("docs",), limit=100)
    assert [(r.namespace[1], r.key) for r in everything] == [
        ("g0", "k0"),
        ("g0", "k2"),
        ("g0", "k4"),
        ("g0", "k6"),
        ("g1", "k1"),
        ("g1", "k3"),
        ("g1", "k5"),
    ]
    assert all(isinstance(r, SearchItem) and r.score is None for r in everything)
    page = store.search(("docs",), limit=2, offset=3)
    assert [r.key for r in page] == ["k6", "k1"]
    assert len(store.search(())) == 8  # default limit 10, the whole store
    red = store.search(("docs",), filter={"colour": "red"})
    assert [r.key for r in red] == ["k1", "k3", "k5"]
    assert [
        r.key for r in store.search(("docs",), filter={"colour": "red"}, offset=1, limit=1)
    ] == ["k3"]
    assert [r.key for r in store.search(("docs",), filter={"n": {"$gte": 5}})] == ["k6", "k5"]
    assert store.search(("docs",), filter={"colour": "green"}) == []
    assert [r.key for r in store.search(("docs",), query="NOTE 3")] == ["k3"]
    assert len(store.search((), query="note")) == 8
    assert [
        r.key for r in store.search(("docs",), query="note", filter={"colour": "blue"}, limit=2)
    ] == [
        "k0",
        "k2",
    ]
    # The query is looked for in the value only, not in the stored timestamps.
    assert store.search((), query="created_at") == []
    assert store.search(("docs", "g0"), query="Note 3") == []


def test_round_trips_of_gets_and_search(store, fs, api, srv, tmp_path):
    from deeplake_sdk import ContentCache, DeeplakeFs

    for i in range(3):
        store.put(("rt",), f"k{i}", {"text": f"note {i}"})
    fs.flush()
    with DeeplakeFs(api, cache=ContentCache(tmp_path / "cold")) as cold:
        fresh = DeeplakeStore(cold)
        srv.reset_stats()
        got = fresh.batch([GetOp(("rt",), f"k{i}") for i in range(3)])
        assert [g.value["text"] for g in got] == ["note 0", "note 1", "note 2"]
        assert srv.stats()["requests"] == 1  # the batch's gets in one query
        cold.cache.clear()
        srv.reset_stats()
        assert len(fresh.search(("rt",), query="NOTE")) == 3
        # the metadata under the namespace's directory (both tables, one statement), the
        # grep, the values
        assert srv.stats()["requests"] == 3


def test_query_with_quotes_and_newlines(store):
    store.put(("q",), "a", {"text": 'he said "hi"\nthen left'})
    store.put(("q",), "b", {"text": "nothing"})
    assert [r.key for r in store.search(("q",), query='said "HI"')] == ["a"]
    assert [r.key for r in store.search(("q",), query='"\nthen')] == ["a"]


def test_list_namespaces_prefix_suffix_depth_paging(store):
    for ns in [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("b", "v1"), ("c", "d", "v1")]:
        store.put(ns, "k", {"x": 1})
    assert store.list_namespaces() == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "x"),
        ("b", "v1"),
        ("c", "d", "v1"),
    ]
    assert store.list_namespaces(prefix=("a",)) == [("a", "b", "c"), ("a", "b", "d"), ("a", "x")]
    assert store.list_namespaces(suffix=("v1",)) == [("b", "v1"), ("c", "d", "v1")]
    assert store.list_namespaces(prefix=("a", "*", "d")) == [("a", "b", "d")]
    assert store.list_namespaces(max_depth=2) == [("a", "b"), ("a", "x"), ("b", "v1"), ("c", "d")]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "b", "d"), ("a", "x")]
    store.delete(("a", "x"), "k")
    assert ("a", "x") not in store.list_namespaces()


class _ThreadRecordingStore(DeeplakeStore):
    """Records the thread of every batch."""

    def __init__(self, fs):
        super().__init__(fs)
        self.threads = []

    def batch(self, ops):
        self.threads.append(threading.get_ident())
        return super().batch(ops)


def test_async_methods_run_in_worker_threads(fs):
    store = _ThreadRecordingStore(fs)

    async def main():
        await store.aput(("async", "ns"), "k1", {"text": "async hello"})
        await store.aput(("async", "ns"), "k2", {"text": "bye"})
        got = await store.aget(("async", "ns"), "k1")
        found = await store.asearch(("async",), query="HELLO")
        spaces = await store.alist_namespaces(prefix=("async",))
        both = await asyncio.gather(*(store.aget(("async", "ns"), k) for k in ("k1", "k2")))
        await store.adelete(("async", "ns"), "k1")
        gone = await store.aget(("async", "ns"), "k1")
        return threading.get_ident(), got, found, spaces, both, gone

    loop_thread, got, found, spaces, both, gone = asyncio.run(main())
    assert got.value == {"text": "async hello"}
    assert [r.key for r in found] == ["k1"]
    assert spaces == [("async", "ns")]
    assert [r.value["text"] for r in both] == ["async hello", "bye"]
    assert gone is None
    assert len(store.threads) == 9 and loop_thread not in store.threads


def test_batch_runs_operations_in_order(store):
    ns = ("order",)
    results = store.batch(
        [
            PutOp(ns, "a", {"v": 1}),
            ListNamespacesOp(),
            PutOp(ns, "a", None),
            ListNamespacesOp(),
        ]
    )
    assert results == [None, [ns], None, []]


def test_example(srv, workspace, tmp_path):
    out = run_example("langgraph_store.py", service_env(srv, workspace, tmp_path))
    assert "get: {'drink': 'tea'}" in out
    assert "search 'TEA': [('users', 'ada')]" in out
    assert "namespaces: [('users', 'ada'), ('users', 'bob')]" in out
    assert "graph: ada likes tea" in out
