"""gevent WSGI server tuned for the local API: TCP_NODELAY, connection drops, quiet logs.

- Every accepted socket gets ``TCP_NODELAY`` (without it keep-alive requests stall ~40 ms on
  delayed ACKs) and is counted.
- The app can drop a connection by raising :class:`DropConnection`: the socket is closed with
  ``SO_LINGER (1, 0)`` so the client sees a reset (RST), and no response is sent.
- The app can ask for the connection to close after its answer without reading the rest of
  the request body (:data:`CLOSE_KEY`, e.g. after a 413): an oversized body is never read.
- Malformed requests (a negative ``Content-Length``...) get a JSON 400 that says what is wrong.
- The access log goes to :mod:`logging` at debug level; keep-alive is on.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from gevent.pywsgi import WSGIHandler, WSGIServer

logger = logging.getLogger(__name__)
access_logger = logging.getLogger(__name__ + ".access")

#: environ key holding the client socket
SOCKET_KEY = "deeplake.socket"
#: environ key holding the request path as sent (still percent-encoded, so ``%2F`` survives)
RAW_PATH_KEY = "deeplake.raw_path"
#: environ key the app sets to close the connection after its answer, unread body left unread
CLOSE_KEY = "deeplake.close"


class _NoDiscard:
    """Stands for the request body once the app gave up on it: nothing more is read."""

    def _discard(self) -> None:
        return None


def _bad_request(message: str) -> bytes:
    body = json.dumps({"error": message, "code": "bad_request"}).encode()
    head = (
        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class DropConnection(Exception):
    """Raised by the WSGI app to abort the connection with a reset instead of answering."""


def reset_socket(sock: Any) -> None:
    """Close ``sock`` so that the peer sees a connection reset (RST) rather than a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class Handler(WSGIHandler):
    """Exposes the socket to the app and turns :class:`DropConnection` into a reset."""

    def get_environ(self) -> dict[str, Any]:
        """The WSGI environ plus the socket and the raw path (:data:`SOCKET_KEY`, ...)."""
        env = super().get_environ()
        env[SOCKET_KEY] = self.socket
        env[RAW_PATH_KEY] = self.path.split("?", 1)[0]
        return env

    def run_application(self) -> None:
        """Run the app; on :class:`DropConnection` reset the connection without a response."""
        try:
            super().run_application()
            if self.environ.get(CLOSE_KEY):
                self.close_connection = True
                self.wsgi_input = _NoDiscard()
        except DropConnection:
            self.close_connection = True
            rfile = getattr(self, "rfile", None)
            if rfile is not None:
                with contextlib.suppress(OSError):
                    rfile.close()  # drop the makefile reference so close() really closes
            reset_socket(self.socket)
            # pywsgi treats ECONNRESET as a quiet client disconnect
            raise OSError(errno.ECONNRESET, "connection dropped on purpose") from None

    def _handle_client_error(self, ex: BaseException) -> Any:
        """A malformed request: a JSON 400 naming the problem (gevent's answer is empty)."""
        super()._handle_client_error(ex)
        message = getattr(ex, "formatted_message", None) or str(ex) or type(ex).__name__
        headers = getattr(self, "headers", None)
        length = headers.get("content-length") if headers is not None else None
        if length is not None and not length.strip().isdigit():
            message = f"invalid Content-Length {length!r} (a number of bytes >= 0)"
        return ("400", _bad_request(f"malformed request: {message}"))

    def log_request(self) -> None:
        """Access log line at debug level (skipped cheaply when debug is off)."""
        if access_logger.isEnabledFor(logging.DEBUG):
            access_logger.debug("%s", self.format_request())


class Server(WSGIServer):
    """``gevent.pywsgi.WSGIServer`` with TCP_NODELAY and an accept counter.

    Args:
        listener: ``(host, port)`` or a bound socket.
        application: the WSGI app.
        on_accept: called once per accepted TCP connection.
        **kwargs: passed to :class:`gevent.pywsgi.WSGIServer`.
    """

    handler_class = Handler

    def __init__(
        self,
        listener: Any,
        application: Callable[..., Any],
        on_accept: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("log", None)
        kwargs.setdefault("error_log", logger)  # wrapped at ERROR level by gevent
        kwargs.setdefault("environ", {"SERVER_NAME": "localhost"})
        super().__init__(listener, application, **kwargs)
        self._on_accept = on_accept

    def handle(self, sock: Any, address: Any) -> None:
        """Set TCP_NODELAY, count the connection, then serve it."""
        with contextlib.suppress(OSError):  # not a TCP socket (e.g. a unix socket)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._on_accept is not None:
            self._on_accept()
        super().handle(sock, address)
