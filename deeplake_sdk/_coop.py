"""Cooperative-execution helpers: how to block without freezing other greenlets.

Nothing here patches anything; the helpers only look at what the user has done:

* :func:`sockets_patched` - did the user run ``gevent.monkey.patch_all()`` (sockets)?
* :func:`hub_if_exists` - the calling thread's gevent hub, without creating one. A thread
  without a hub runs no greenlets, so blocking it blocks nobody else.
* :func:`cooperative_sleep` - :func:`gevent.sleep` where greenlets may be waiting,
  :func:`time.sleep` in plain threads (which would otherwise get a hub created for nothing).
* :func:`run_parallel` - map a function over items on a :class:`gevent.pool.Pool`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gevent
from gevent.monkey import is_module_patched
from gevent.pool import Pool

try:  # gevent >= 20: tells whether this thread already has a hub, without creating one
    from gevent._hub_local import get_hub_if_exists as _get_hub_if_exists
except ImportError:  # pragma: no cover
    from gevent.hub import _get_hub as _get_hub_if_exists  # type: ignore[attr-defined,no-redef]

__all__ = ["Failure", "cooperative_sleep", "hub_if_exists", "run_parallel", "sockets_patched"]


def sockets_patched() -> bool:
    """Tell whether the user monkey-patched ``socket`` (then I/O already yields)."""
    return bool(is_module_patched("socket"))


def hub_if_exists() -> Any:
    """Return the calling thread's gevent hub, or ``None`` if it has none (never creates one)."""
    return _get_hub_if_exists()


def cooperative_sleep(seconds: float) -> None:
    """Sleep, letting other greenlets of this thread run if there can be any."""
    if seconds <= 0:
        return
    if is_module_patched("time") or _get_hub_if_exists() is not None:
        gevent.sleep(seconds)
    else:
        time.sleep(seconds)


@dataclass
class Failure:
    """A failed item of :func:`run_parallel`: its exception."""

    error: Exception


def run_parallel(fn: Callable[[Any], Any], items: Sequence[Any], size: int) -> list[Any]:
    """Run ``fn`` over ``items`` on a gevent pool; results (or ``Failure``) in input order.

    At most ``size`` run at once (the endpoint's limiter bounds the requests anyway).

    Errors are caught inside the greenlets (gevent would print them otherwise). If the caller
    is interrupted, the outstanding greenlets are killed.
    """
    if len(items) == 1:
        try:
            return [fn(items[0])]
        except Exception as exc:
            return [Failure(exc)]

    def guarded(item: Any) -> Any:
        try:
            return fn(item)
        except Exception as exc:
            return Failure(exc)

    pool = Pool(max(1, min(len(items), size)))
    try:
        greenlets = [pool.spawn(guarded, item) for item in items]
        pool.join(raise_error=True)
    except BaseException:
        pool.kill(block=False)
        raise
    return [g.value for g in greenlets]
