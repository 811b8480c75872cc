"""ConnectionPool units with fake connections (no database needed)."""

from __future__ import annotations

import threading

import pytest

from deeplake_sdk.server.pool import ConnectionPool, PoolTimeout


class FakeConn:
    def __init__(self, role):
        self.role = role
        self.closed = False
        self.broken = False

    def close(self):
        self.closed = True


def make_pool(**kw):
    opened = []

    def connect(role):
        conn = FakeConn(role)
        opened.append(conn)
        return conn

    return ConnectionPool(connect, **kw), opened


def test_reuses_idle_connection_of_the_same_role():
    pool, opened = make_pool(max_size=2)
    with pool.connection("a") as pc:
        first = pc.conn
    with pool.connection("a") as pc:
        assert pc.conn is first
    assert len(opened) == 1 and pool.open_count == 1 and pool.idle_count == 1


def test_cap_evicts_idle_connections_of_other_roles():
    pool, opened = make_pool(max_size=2)
    for role in ("a", "b"):
        with pool.connection(role):
            pass
    with pool.connection("c") as pc:
        assert pc.role == "c"
        assert pool.open_count == 2
    assert opened[0].closed and not opened[1].closed  # least recently used went first


def test_waits_when_exhausted_and_times_out():
    pool, _ = make_pool(max_size=1, acquire_timeout=0.05)
    held = pool.acquire("a")
    with pytest.raises(PoolTimeout):
        pool.acquire("b")
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire("a")))
    pool.acquire_timeout = 30
    waiter.start()
    pool.release(held)
    waiter.join(30)
    assert got and got[0] is held
    pool.release(got[0])


def test_broken_connections_are_discarded_and_errors_release_the_slot():
    pool, opened = make_pool(max_size=1, acquire_timeout=1)
    with pytest.raises(RuntimeError), pool.connection("a"):
        raise RuntimeError("query failed")
    assert opened[0].closed and pool.open_count == 0
    with pool.connection("a") as pc:
        pc.conn.broken = True
    assert pool.open_count == 0 and pool.idle_count == 0
    with pool.connection("a"):
        pass
    assert len(opened) == 3


def test_connect_failure_frees_the_slot():
    calls = []

    def connect(role):
        calls.append(role)
        if len(calls) == 1:
            raise OSError("refused")
        return FakeConn(role)

    pool = ConnectionPool(connect, max_size=1, acquire_timeout=1)
    with pytest.raises(OSError):
        pool.acquire("a")
    with pool.connection("a") as pc:
        assert pc.role == "a"
    pool.close()
    assert pool.open_count == 0
