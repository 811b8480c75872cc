"""Value types of the client: :class:`Timeout` and :class:`QueryResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_MAX_CONCURRENCY", "QUICK_CONNECT_S", "QueryResult", "Timeout"]

#: The default ceiling of requests in flight per origin: the adaptive limit grows up to it
#: (:class:`~deeplake_sdk.limiter.GradientLimit`); chosen never to be the bottleneck on ``beta``.
DEFAULT_MAX_CONCURRENCY = 256


#: The longest connect timeout of a client that has somewhere else to go while the service
#: cannot be reached (:meth:`DeeplakeApi.connect_once <deeplake_sdk.DeeplakeApi.connect_once>`:
#: the journal's drain, the tables' probes, the hooks). A connect answers within a round trip;
#: 3 s leaves room for one lost SYN, sent again after 1 s.
QUICK_CONNECT_S = 3.0


@dataclass(frozen=True)
class Timeout:
    """Timeouts of one request, in seconds.

    The statement timeout is sent to the service (``timeout_ms``) so that a statement dies on
    the server before the client stops waiting: the read timeout is ``statement + margin``.
    That keeps a still-running first attempt from racing its own retry.

    Attributes:
        statement: Statement timeout (default 60 s).
        connect: Connect timeout (default 10 s).
        margin: Extra read time beyond the statement timeout (default 2 s).
    """

    statement: float = 60.0
    connect: float = 10.0
    margin: float = 2.0

    def __post_init__(self) -> None:
        if self.statement <= 0 or self.connect <= 0 or self.margin < 0:
            raise ValueError("timeouts must be positive")

    @property
    def read(self) -> float:
        """Read timeout: ``statement + margin``."""
        return self.statement + self.margin

    @classmethod
    def coerce(cls, value: float | Timeout | None, default: Timeout | None = None) -> Timeout:
        """Build a Timeout from ``None`` (``default``), seconds (the statement timeout) or one.

        Args:
            value: The value to convert.
            default: Used for ``None``, and as the base whose statement timeout a number
                replaces.
        """
        base = default or cls()
        if value is None:
            return base
        if isinstance(value, Timeout):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"timeout must be seconds or a Timeout, got {value!r}")
        return cls(statement=float(value), connect=base.connect, margin=base.margin)


@dataclass
class QueryResult:
    """The answer to one statement.

    Attributes:
        columns: Column names (empty for most DDL/DML).
        rows: Rows as lists, in column order.
        row_count: Rows returned or affected, as the service reports it; ``None`` when the
            answer did not say (never assume 0: a write whose count is unknown is settled by
            reading).
        confirmed: ``True`` when the statement's first attempt failed ambiguously and the
            ``confirm`` check said it had taken effect: it was not re-sent, and ``rows`` is
            empty.
    """

    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    row_count: int | None = 0
    confirmed: bool = False

    @classmethod
    def from_answer(cls, answer: Any) -> QueryResult:
        """Build a result from the decoded JSON answer (null/missing rows mean none)."""
        if not isinstance(answer, dict):
            return cls()
        columns = [str(c) for c in answer.get("columns") or []]
        raw_rows = answer.get("rows") or []
        rows: list[list[Any]] = []
        if isinstance(raw_rows, list) and all(type(raw) is list for raw in raw_rows):
            rows = raw_rows  # the usual shape, freshly decoded: kept as it is
        else:
            for raw in raw_rows:
                if isinstance(raw, dict):  # tolerate row objects
                    if not columns:
                        columns = [str(c) for c in raw]
                    rows.append([raw.get(c) for c in columns])
                else:
                    rows.append(list(raw))
        count = answer.get("row_count")
        row_count: int | None = None
        if isinstance(count, int) and not isinstance(count, bool):
            row_count = count
        elif columns:  # a result set: its rows are the count
            row_count = len(rows)
        return cls(columns, rows, row_count)

    def dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts, column name -> value."""
        columns = self.columns
        return [dict(zip(columns, row, strict=False)) for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)
