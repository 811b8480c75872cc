"""A local address whose connections hang: what a client sees where packets are dropped.

A firewall that drops packets, a network or a VPN that is down: a connection is neither made
nor refused, and the client waits for its connect timeout. :class:`Blackhole` reproduces that
on 127.0.0.1 without privileges: a listener that never accepts, whose accept queue is filled
by one connection of its own, so that the kernel drops the SYNs of every other.

Usage::

    with Blackhole() as hole:
        api = DeeplakeApi("t", "org", "ws", hole.url)   # every connect times out
"""

from __future__ import annotations

import socket

__all__ = ["Blackhole"]


class Blackhole:
    """A port of 127.0.0.1 whose connections hang until closed.

    Attributes:
        url: ``http://127.0.0.1:<port>``.
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        try:
            self._listener.bind(("127.0.0.1", 0))
            self._listener.listen(0)
            port = self._listener.getsockname()[1]
            self._filler = socket.create_connection(("127.0.0.1", port), timeout=5)
        except BaseException:
            self._listener.close()
            raise
        self.url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        """Release the port."""
        self._filler.close()
        self._listener.close()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
