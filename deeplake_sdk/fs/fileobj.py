"""File objects of the memory filesystem (``fs.open(path, mode)``), like those of :func:`open`.

A file opened for reading holds the file's content at the time of the call. A file opened for
writing (``w``), exclusive creation (``x``) or appending (``a``) collects what is written and
stores it when closed (one write or one append, journaled as any other); closing it after an
error inside a ``with`` block stores nothing.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, Any

__all__ = ["open_file"]

_MODES = {"r", "w", "x", "a"}


class _Collector(io.BytesIO):
    """A byte buffer that hands its content to ``store`` when closed (unless discarded)."""

    def __init__(self, store: Callable[[bytes], None]) -> None:
        super().__init__()
        self._store: Callable[[bytes], None] | None = store

    def discard(self) -> None:
        """Close without storing."""
        self._store = None
        super().close()

    def close(self) -> None:
        """Store what was written, then close."""
        if not self.closed and self._store is not None:
            store, self._store = self._store, None
            store(self.getvalue())
        super().close()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()


class _TextCollector(io.TextIOWrapper):
    """Text layer over a :class:`_Collector` that stores nothing when its block fails."""

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            buffer = self.buffer
            assert isinstance(buffer, _Collector)
            buffer.discard()
        else:
            self.close()


def parse_mode(mode: str) -> tuple[str, bool]:
    """``(kind, binary)`` of an :func:`open`-style mode (``r``, ``wb``, ``a``, ``xt``...).

    Raises:
        ValueError: An unsupported mode (``+`` modes are not supported).
    """
    kinds = [c for c in mode if c in _MODES]
    rest = set(mode) - _MODES - {"b", "t"}
    if len(kinds) != 1 or rest or ("b" in mode and "t" in mode) or len(set(mode)) != len(mode):
        raise ValueError(f"invalid mode {mode!r}: use r, w, x or a, with b or t")
    return kinds[0], "b" in mode


def open_file(
    mode: str,
    *,
    read: Callable[[], bytes],
    store: Callable[[bytes], None],
    encoding: str | None,
    errors: str | None,
    newline: str | None,
) -> IO[Any]:
    """Build the file object of ``mode`` on top of a reader and a storer.

    Args:
        mode: ``r``/``w``/``x``/``a`` plus ``b`` or ``t``.
        read: Returns the whole content (read modes).
        store: Stores what a writer collected (write, exclusive and append modes).
        encoding: Text encoding (default UTF-8).
        errors: Text error handler.
        newline: Newline translation, as for :func:`open`.
    """
    kind, binary = parse_mode(mode)
    if binary and (encoding or errors or newline is not None):
        raise ValueError("binary mode doesn't take an encoding, errors or newline argument")
    if kind == "r":
        raw = io.BytesIO(read())
        if binary:
            return raw
        return io.TextIOWrapper(raw, encoding or "utf-8", errors, newline)
    collector = _Collector(store)
    if binary:
        return collector
    return _TextCollector(collector, encoding or "utf-8", errors, newline, write_through=True)
