"""ContentCache: version semantics, persistence across processes, greenlet safety, fd bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import gevent
import gevent.event
import pytest

from deeplake_sdk import cache as cache_mod
from deeplake_sdk._coop import allocate_lock
from deeplake_sdk.cache import (
    CacheKey,
    CacheStats,
    ContentCache,
    NullCache,
    Version,
    default_cache_dir,
)

REPO = Path(__file__).resolve().parents[1]
KEY = CacheKey("https://api.example:443", "org1", "ws1", "memory", "/notes/a.md")
V1 = Version(5, "2024-05-01T10:00:00.000Z")
V2 = Version(11, "2024-05-01T10:00:01.000Z")


@pytest.fixture
def cache(tmp_path: Path):
    with ContentCache(tmp_path / "cache") as c:
        yield c


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


# ---------------------------------------------------------------------------------------------
# Pure units: keys, versions and the version check (no threads)


class FakeDiskCache:
    """Stands in for diskcache.Cache in the job functions."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[object, str]] = {}

    def get(self, key, default=None, tag=False, retry=False):
        value, stored_tag = self.items.get(key, (default, None))
        return (value, stored_tag) if tag else value

    def set(self, key, value, tag=None, retry=False):
        self.items[key] = (value, tag)


def test_version_check_without_threads() -> None:
    fake, stats = FakeDiskCache(), CacheStats()
    key = KEY.encode()
    assert cache_mod._job_get(fake, key, V1.token(), stats) is None
    cache_mod._job_set(fake, key, V1.token(), b"hello", stats)
    assert cache_mod._job_get(fake, key, V1.token(), stats) == b"hello"
    assert cache_mod._job_get(fake, key, V2.token(), stats) is None
    assert cache_mod._job_get(None, key, V1.token(), stats) is None  # cache unavailable
    assert stats == CacheStats(hits=1, misses=3, stale=1, sets=1)


def test_keys_and_versions_are_stable() -> None:
    assert KEY.encode() == ('["v2","https://api.example:443","org1","ws1","memory","/notes/a.md"]')
    # No separator ambiguity: these differ although their concatenations agree.
    assert (
        CacheKey("a", "o", "b", "c", "d/e").encode() != CacheKey("a", "o", "b", "c/d", "e").encode()
    )
    assert (
        CacheKey("e", "o", "w", "t", '/quote"é').encode() == '["v2","e","o","w","t","/quote\\"é"]'
    )
    # The org is part of the identity: same workspace, table and path, another org.
    assert KEY._replace(org="org2").encode() != KEY.encode()
    assert V1.token() == "5|2024-05-01T10:00:00.000Z"
    assert Version(*(5, "x")) == (5, "x")


def test_default_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEEPLAKE_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_dir() == str(tmp_path / "x")
    monkeypatch.delenv("DEEPLAKE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == str(tmp_path / "deeplake-sdk" / "content")
    monkeypatch.delenv("XDG_CACHE_HOME")
    expected = os.path.join(os.path.expanduser("~"), ".cache", "deeplake-sdk", "content")
    assert default_cache_dir() == expected


# ---------------------------------------------------------------------------------------------
# Semantics


def test_hit_miss_and_stale_version(cache: ContentCache) -> None:
    assert cache.available
    assert cache.get(KEY, V1) is None
    cache.set(KEY, V1, b"hello")
    assert cache.get(KEY, V1) == b"hello"
    assert cache.get(KEY, (5, "2024-05-01T10:00:00.000Z")) == b"hello"  # plain tuples work
    assert cache.get(KEY, V2) is None  # stale: another version is stored
    assert cache.get(KEY, Version(5, "2024-05-01T10:00:01.000Z")) is None  # same size, newer
    cache.set(KEY, V2, b"hello world")
    assert cache.get(KEY, V2) == b"hello world"
    assert cache.get(KEY, V1) is None
    other = KEY._replace(table="sessions")
    assert cache.get(other, V2) is None  # keys include the table
    assert cache.stats == CacheStats(hits=3, misses=5, stale=3, sets=2)


def test_invalidate_and_clear(cache: ContentCache) -> None:
    cache.set(KEY, V1, b"x")
    cache.invalidate(KEY)
    assert cache.get(KEY, V1) is None
    cache.invalidate(KEY)  # absent: no error
    cache.set(KEY, V1, b"x")
    cache.clear()
    assert cache.get(KEY, V1) is None


def test_invalidate_tree(cache: ContentCache) -> None:
    paths = ["/d", "/d/a.md", "/d/sub/b.md", "/d2/c.md", "/dx.md", "/e.md"]
    for p in paths:
        cache.set(KEY._replace(path=p), V1, p.encode())
    cache.invalidate_tree(KEY._replace(path="/d/"))
    left = [p for p in paths if cache.get(KEY._replace(path=p), V1) is not None]
    assert left == ["/d2/c.md", "/dx.md", "/e.md"]
    cache.invalidate_tree(KEY._replace(path="/"))
    assert all(cache.get(KEY._replace(path=p), V1) is None for p in paths)


def test_large_values_live_in_files(cache: ContentCache) -> None:
    data = os.urandom(1 << 20)
    cache.set(KEY, V1, data)
    assert cache.get(KEY, V1) == data
    sizes = [f.stat().st_size for f in Path(cache.directory).rglob("*.val")]
    assert (1 << 20) in sizes
    cache.set(KEY, V1, bytearray(b"small"))  # bytes-like is accepted
    assert cache.get(KEY, V1) == b"small"


def test_null_cache_and_closed_cache(tmp_path: Path) -> None:
    with NullCache() as null:
        null.set(KEY, V1, b"x")
        null.invalidate(KEY)
        null.invalidate_tree(KEY)
        null.clear()
        assert null.get(KEY, V1) is None
        assert not null.available
        assert null.stats.misses == 1
    c = ContentCache(tmp_path)
    c.set(KEY, V1, b"x")
    c.close()
    c.close()  # idempotent
    assert not c.available
    assert c.get(KEY, V1) is None
    c.set(KEY, V1, b"y")  # ignored
    with ContentCache(tmp_path) as again:
        assert again.get(KEY, V1) == b"x"


def test_instances_share_one_worker_per_directory(tmp_path: Path) -> None:
    a, b = ContentCache(tmp_path), ContentCache(tmp_path)
    c = ContentCache(tmp_path / "other")
    try:
        assert a._worker is b._worker
        assert c._worker is not a._worker
        a.set(KEY, V1, b"shared")
        a.close()
        assert b.get(KEY, V1) == b"shared"  # still open for b
    finally:
        for x in (a, b, c):
            x.close()
    assert (os.getpid(), str(tmp_path)) not in cache_mod._registry


def test_unusable_directory_degrades_to_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with ContentCache(blocker / "cache") as c:
        assert not c.available
        c.set(KEY, V1, b"x")
        assert c.get(KEY, V1) is None


# ---------------------------------------------------------------------------------------------
# Callers: greenlets, plain threads, killed waiters


def test_waiting_greenlet_yields_to_others(cache: ContentCache) -> None:
    gate = allocate_lock()
    gate.acquire()

    def blocked_job(_resource: object) -> bool:
        return gate.acquire(timeout=60)  # released by the second greenlet

    waiting = gevent.spawn(cache._call, blocked_job)
    releaser = gevent.spawn(gate.release)
    gevent.joinall([waiting, releaser], raise_error=True)
    assert waiting.value is True  # the releaser ran while the first greenlet waited


def test_plain_thread_callers_block_and_work(cache: ContentCache) -> None:
    results: list[bytes | None] = []

    def plain() -> None:  # a native thread without a gevent hub
        key = KEY._replace(path=f"/t/{threading.get_ident()}")
        cache.set(key, V1, b"thread")
        results.append(cache.get(key, V1))

    threads = [threading.Thread(target=plain) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"thread"] * 4


def test_killed_waiter_leaves_the_cache_usable(cache: ContentCache) -> None:
    gate = allocate_lock()
    gate.acquire()
    entered = gevent.event.Event()

    def waiter() -> None:
        entered.set()
        cache._call(lambda _r: gate.acquire(timeout=60))

    g = gevent.spawn(waiter)
    entered.wait()  # g runs until it waits inside _call
    g.kill()
    assert g.dead
    gate.release()  # the abandoned job finishes; nobody is notified
    cache.set(KEY, V1, b"after")
    assert cache.get(KEY, V1) == b"after"


def test_errors_of_a_job_reach_the_caller(cache: ContentCache) -> None:
    def boom(_resource: object) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        cache._call(boom)
    assert gevent.spawn(cache._call, lambda r: r is not None).get() is True


# ---------------------------------------------------------------------------------------------
# Across processes


def test_persistent_across_processes(tmp_path: Path) -> None:
    code = """
        import sys
        from deeplake_sdk.cache import CacheKey, ContentCache, Version
        key = CacheKey("https://api.example:443", "org1", "ws1", "memory", "/notes/a.md")
        with ContentCache(sys.argv[2]) as c:
            if sys.argv[1] == "write":
                c.set(key, Version(5, "t1"), b"hello")
                c.set(key._replace(path="/big"), Version(1, "t1"), b"x" * 100000)
            else:
                print(c.get(key, Version(5, "t1")), c.get(key, Version(5, "t2")),
                      len(c.get(key._replace(path="/big"), Version(1, "t1"))), c.stats.hits)
    """
    run_python(code, "write", str(tmp_path))
    out = run_python(code, "read", str(tmp_path)).stdout.split()
    assert out == ["b'hello'", "None", "100000", "2"]


def test_import_patches_nothing_and_starts_nothing() -> None:
    code = """
        import threading
        import gevent.monkey
        import deeplake_sdk.cache, deeplake_sdk.grep
        from gevent._hub_local import get_hub_if_exists
        print(gevent.monkey.is_anything_patched(), threading.active_count(), get_hub_if_exists())
    """
    assert run_python(code).stdout.split() == ["False", "1", "None"]


def test_forked_child_gets_its_own_worker(tmp_path: Path) -> None:
    code = """
        import os, sys
        from deeplake_sdk.cache import CacheKey, ContentCache, Version
        key = CacheKey("e", "o", "w", "t", "/f")
        c = ContentCache(sys.argv[1])
        c.set(key, Version(1, "t"), b"parent")
        pid = os.fork()
        if pid == 0:
            ok = c.get(key, Version(1, "t")) == b"parent"
            c.set(key, Version(2, "t"), b"child")
            c.close()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert c.get(key, Version(2, "t")) == b"child"
        c.close()
        print("ok")
    """
    assert run_python(code, str(tmp_path)).stdout.strip() == "ok"


FD_SCRIPT = """
    import sys
    if sys.argv[1] == "patched":
        from gevent import monkey
        monkey.patch_all()
    import json, os
    import gevent
    from deeplake_sdk.cache import CacheKey, ContentCache, Version

    def nfds():
        return len(os.listdir("/proc/self/fd"))

    keys = [CacheKey("http://h:80", "o", "ws", "memory", f"/notes/{i}.md") for i in range(64)]
    data = {k: f"line {i}\\n".encode() * (1 + (i % 8) * 900) for i, k in enumerate(keys)}
    version = {k: Version(len(data[k]), "2024-01-01T00:00:00Z") for k in keys}
    before = nfds()
    cache = ContentCache(sys.argv[2])
    for k in keys:
        cache.set(k, version[k], data[k])
    opened = nfds()
    ops = [0]

    def worker(g):
        for j in range(50):
            k = keys[(g * 7 + j) % len(keys)]
            if j % 10 == 9:
                cache.set(k, version[k], data[k])
            else:
                assert cache.get(k, version[k]) == data[k]
            ops[0] += 1

    greenlets = [gevent.spawn(worker, g) for g in range(100)]
    gevent.joinall(greenlets, raise_error=True)
    after = nfds()
    cache.close()
    result = dict(mode=sys.argv[1], before=before, opened=opened, after=after, ops=ops[0],
                  hits=cache.stats.hits, closed=nfds())
    if sys.argv[1] == "patched":  # what plain diskcache does under the same load
        import diskcache
        raw = diskcache.Cache(sys.argv[2] + "-raw")
        raw.set("k", b"v")
        base = nfds()
        crowd = [gevent.spawn(raw.get, "k") for _ in range(100)]
        gevent.joinall(crowd, raise_error=True)
        result["plain_diskcache_growth"] = nfds() - base
    print(json.dumps(result))
"""


@pytest.mark.parametrize("mode", ["patched", "unpatched"])
def test_open_files_stay_bounded_under_greenlets(tmp_path: Path, mode: str) -> None:
    out = run_python(FD_SCRIPT, mode, str(tmp_path / "cache")).stdout
    numbers = json.loads(out.strip().splitlines()[-1])
    print(f"\nfd counts ({mode}): {numbers}")
    assert numbers["ops"] == 5000
    assert numbers["hits"] == 4500
    assert numbers["after"] - numbers["before"] <= 10
    assert numbers["after"] - numbers["opened"] <= 5  # the gevent hub's own descriptors
