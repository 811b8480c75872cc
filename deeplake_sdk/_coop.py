"""Cooperative-execution helpers: how to block without freezing other greenlets.

Nothing here patches anything; the helpers only look at what the user has done:

* :func:`sockets_patched` - did the user run ``gevent.monkey.patch_all()`` (sockets)?
* :func:`hub_if_exists` - the calling thread's gevent hub, without creating one. A thread
  without a hub runs no greenlets, so blocking it blocks nobody else.
* :func:`cooperative_sleep` - :func:`gevent.sleep` where greenlets may be waiting,
  :func:`time.sleep` in plain threads (which would otherwise get a hub created for nothing).
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from gevent.monkey import is_module_patched

try:  # gevent >= 20: tells whether this thread already has a hub, without creating one
    from gevent._hub_local import get_hub_if_exists as _get_hub_if_exists
except ImportError:  # pragma: no cover
    from gevent.hub import _get_hub as _get_hub_if_exists  # type: ignore[attr-defined,no-redef]

__all__ = ["cooperative_sleep", "hub_if_exists", "sockets_patched"]


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
