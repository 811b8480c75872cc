"""Completion: a one-shot event set from any thread and waited for cooperatively."""

from __future__ import annotations

import threading

import gevent
import pytest

from deeplake_sdk._coop import Completion


def test_set_before_wait_returns_at_once():
    done = Completion()
    done.set()
    assert done.is_set()
    done.wait()


def test_a_thread_without_a_hub_blocks_until_set():
    done = Completion()
    order = []

    def waiter():
        done.wait()
        order.append("woken")

    t = threading.Thread(target=waiter)
    t.start()
    order.append("setting")
    done.set()
    t.join(60)
    assert order == ["setting", "woken"] and not t.is_alive()


def test_a_greenlet_waits_on_its_hub_while_others_run():
    done = Completion()
    ticks = []

    def ticker():
        for i in range(5):
            ticks.append(i)
            gevent.sleep(0)
        threading.Thread(target=done.set).start()  # set from another thread

    waiter = gevent.spawn(done.wait)
    gevent.spawn(ticker)
    waiter.join(60)
    assert waiter.successful() and ticks == [0, 1, 2, 3, 4]


def test_a_waiter_that_gives_up_leaves_nothing_armed():
    done = Completion()
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.01):
        done.wait()
    done.set()  # nothing to wake: must not touch the closed watcher
    assert done.is_set()
    done.wait()
