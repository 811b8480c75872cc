"""What one request may cost the server: body, parameters, result size, time, connections.

:class:`Limits` is the policy value (``--max-body-mb``, ``--max-result-mb``,
``--statement-timeout-ms``, ``--org-connections``, ``--connection-wait-s``...);
:class:`RowEncoder` turns result rows into JSON text as they arrive from PostgreSQL and stops
at the result limit, so a large result never sits in memory as Python objects.

No heavy imports here: the CLI reads the defaults before gevent patches anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024
#: PostgreSQL's protocol carries at most 65535 parameters per statement.
MAX_PARAMS = 65535


@dataclass(frozen=True)
class Limits:
    """Limits of one server.

    Attributes:
        max_body_bytes: request body size (413 beyond, chunked or not).
        max_params: ``$n`` parameters of a query (400 beyond).
        max_result_bytes: JSON size of a result's rows (400 ``result_too_large`` beyond).
        statement_timeout_ms: timeout of a query sent without ``timeout_ms`` (or with 0).
        max_statement_timeout_ms: the longest a statement may run, whatever ``timeout_ms``
            asks or the query ``SET`` s (the server cancels it then).
        org_connections: PostgreSQL connections one org may hold at once (0: 3/4 of the pool).
        connection_wait_s: how long a request waits for a connection before a 503.
    """

    max_body_bytes: int = 64 * MIB
    max_params: int = MAX_PARAMS
    max_result_bytes: int = 64 * MIB
    statement_timeout_ms: int = 30_000
    max_statement_timeout_ms: int = 300_000
    org_connections: int = 0
    connection_wait_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_params", "max_result_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 0 <= self.statement_timeout_ms <= self.max_statement_timeout_ms:
            raise ValueError("statement_timeout_ms must be between 0 and max_statement_timeout_ms")
        if self.max_statement_timeout_ms < 1:
            raise ValueError("max_statement_timeout_ms must be >= 1")
        if self.org_connections < 0 or not self.connection_wait_s > 0:
            raise ValueError("org_connections must be >= 0 and connection_wait_s > 0")

    def statement_timeout(self, requested: float | None) -> int:
        """The statement timeout (ms) of a query that asked for ``requested`` (None/0: default)."""
        want = max(1, int(requested)) if requested else self.statement_timeout_ms
        return min(want or self.max_statement_timeout_ms, self.max_statement_timeout_ms)

    def org_cap(self, pool_size: int) -> int:
        """Connections one org may hold in a pool of ``pool_size``."""
        if self.org_connections:
            return min(self.org_connections, pool_size)
        return max(1, pool_size * 3 // 4)


class ResultTooLarge(Exception):
    """The rows of a result went over :attr:`Limits.max_result_bytes`."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the result is larger than the {limit}-byte limit: select fewer rows or columns "
            "(LIMIT, OFFSET) and page through them"
        )
        self.limit = limit


class EncodedRows:
    """Result rows already encoded as JSON: comma-separated parts of the ``rows`` array.

    Attributes:
        parts: the encoded rows (joined they are the array's inside).
        count: how many rows.
        size: bytes of the parts.
    """

    __slots__ = ("count", "parts", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.count = 0
        self.size = 0


class RowEncoder:
    """Encodes rows to JSON in chunks and raises :class:`ResultTooLarge` over ``limit`` bytes.

    Args:
        limit: the most bytes the encoded rows may take.
        default: ``json.dumps(default=...)`` for values JSON cannot hold as such.
        chunk: rows encoded together, at most.
        chunk_bytes: text held before encoding, at most (strings and bytes counted).
    """

    def __init__(
        self,
        limit: int,
        default: Callable[[Any], Any],
        chunk: int = 500,
        chunk_bytes: int = MIB,
    ) -> None:
        self.limit = limit
        self._default = default
        self._chunk = chunk
        self._chunk_bytes = chunk_bytes
        self._pending: list[Any] = []
        self._pending_bytes = 0
        self.rows = EncodedRows()

    def add(self, row: Any) -> None:
        """Add one row (a sequence of values)."""
        self._pending.append(row)
        self._pending_bytes += sum(len(v) if isinstance(v, (str, bytes)) else 8 for v in row)
        if len(self._pending) >= self._chunk or self._pending_bytes >= self._chunk_bytes:
            self._flush()

    def extend(self, rows: Iterable[Any]) -> EncodedRows:
        """Add ``rows`` and return everything encoded so far."""
        for row in rows:
            self.add(row)
        return self.finish()

    def finish(self) -> EncodedRows:
        """Encode what is left; returns the rows."""
        self._flush()
        return self.rows

    def _flush(self) -> None:
        if not self._pending:
            return
        text = json.dumps(self._pending, ensure_ascii=False, default=self._default)
        data = text[1:-1].encode()
        rows = self.rows
        rows.count += len(self._pending)
        self._pending = []
        self._pending_bytes = 0
        size = rows.size + len(data) + (1 if rows.parts else 0)
        if size > self.limit:
            raise ResultTooLarge(self.limit)
        if rows.parts:
            rows.parts.append(b",")
        rows.parts.append(data)
        rows.size = size
