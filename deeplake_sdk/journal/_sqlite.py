"""The journal's SQLite file: schema, connections, and the statements of every operation.

Every function taking a connection runs on the committer thread inside the batch's
transaction (see :mod:`deeplake_sdk.journal._committer`) or on a short-lived connection of
:func:`inspect`; none of them commits or yields.

Layout: ``entries`` holds one row per entry with its payload inline as a BLOB, stored last
so that listing entries never reads the payload's overflow pages; ``lanes`` holds the drainer's
hints per (table, path); ``info`` records which endpoint, org and workspace the file belongs
to. The file is marked with an application id and a schema version (``PRAGMA user_version``).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from deeplake_sdk.journal._model import (
    PENDING,
    REJECTED,
    JournalCorruptError,
    JournalError,
)

#: Marks a deeplake-sdk journal (``PRAGMA application_id``): "DLJ1".
APPLICATION_ID = 0x444C4A31
#: Format of the tables; a file with a larger version was written by a newer SDK.
SCHEMA_VERSION = 1
#: How long SQLite itself waits for another process's lock: not at all for the committer's
#: connection (the committer polls in finer steps than SQLite's 1 to 100 ms sleeps, which let
#: a busy writer starve another process for seconds), a while for the read-only inspection.
BUSY_TIMEOUT_S = 0.0
INSPECT_TIMEOUT_S = 10.0
#: Most parameters bound in one ``IN (...)`` list (SQLite's lowest limit is 999).
_CHUNK = 500
#: Free pages beyond which a commit that deleted entries gives them back to the file system.
_VACUUM_FREE_PAGES = 2048

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    tbl TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    meta TEXT NOT NULL,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT '{PENDING}',
    error TEXT,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_state ON entries (state, seq, size);
CREATE TABLE IF NOT EXISTS lanes (
    tbl TEXT NOT NULL,
    path TEXT NOT NULL,
    hint TEXT NOT NULL,
    PRIMARY KEY (tbl, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

_COLUMNS = "seq, op, tbl, path, size, meta, owner, created, attempts, state, error"

Row = tuple[Any, ...]


# ---------------------------------------------------------------------------------------------
# Errors


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    return None if code is None else code & 0xFF


def is_busy(exc: BaseException) -> bool:
    """Tell whether a SQLite error means "another connection holds the lock"."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = _code(exc)
    if code is not None:
        return code in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def map_error(exc: BaseException, path: str | None) -> BaseException:
    """Turn a SQLite error about the file into a journal error that names it.

    Args:
        exc: The error raised by an operation.
        path: The journal file (``None`` for an in-memory journal).

    Returns:
        A :class:`JournalCorruptError` for a damaged or foreign file, a :class:`JournalError`
        for a file that cannot be opened or written, else ``exc`` itself.
    """
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.IntegrityError):
        return exc
    text = str(exc)
    code = _code(exc)
    where = path or "(in memory)"
    if code in (11, 26) or "malformed" in text or "not a database" in text:
        return JournalCorruptError(where, text)
    if isinstance(exc, sqlite3.OperationalError) and not is_busy(exc):
        lowered = text.lower()
        if any(w in lowered for w in ("unable to open", "readonly", "disk i/o", "full")):
            return JournalError(f"journal file {where} cannot be used: {text}")
    return exc


# ---------------------------------------------------------------------------------------------
# Connections


def create_file(path: str) -> None:
    """Create an empty journal file readable by its owner only, in a 0700 directory.

    Missing directories are created with mode 0700; an existing file is left as it is.
    SQLite gives its write-ahead log and shared-memory files the mode of the database file.
    """
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # makedirs' mode is filtered by the umask
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)


def _connect(path: str | None, timeout: float) -> sqlite3.Connection:
    if path is None:
        target, uri = ":memory:", False
    else:
        target, uri = "file:" + path.replace("?", "%3f").replace("#", "%23") + "?mode=rw", True
    return sqlite3.connect(
        target,
        timeout=timeout,
        isolation_level=None,  # explicit BEGIN/COMMIT
        check_same_thread=False,  # one thread at a time, but not always the same one
        uri=uri,
    )


def open_journal(
    path: str | None, durable: bool, identity: Mapping[str, str] | None
) -> sqlite3.Connection:
    """Open (creating if needed) a journal database and check that it is ours.

    Args:
        path: The file (created beforehand by :func:`create_file`), or ``None`` for memory.
        durable: ``synchronous=FULL`` (an fsync per commit) if true, else ``OFF``.
        identity: ``origin``, ``org`` and ``workspace`` the file must belong to (recorded on
            creation); ``None`` to skip the check.

    Returns:
        The connection, in autocommit mode (callers run explicit transactions).

    Raises:
        JournalCorruptError: The file is not a journal or is damaged.
        JournalError: The file belongs to another endpoint/org/workspace, was written by a
            newer SDK, or cannot be opened.
        sqlite3.OperationalError: Busy (another process holds the lock); try again.
    """
    conn = _connect(path, BUSY_TIMEOUT_S)
    try:
        new = conn.execute("PRAGMA page_count").fetchone()[0] == 0
        if new:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only before the first table
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'OFF'}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            _check_or_create(conn, path, identity)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except BaseException:
        conn.close()
        raise
    return conn


def _is_empty(conn: sqlite3.Connection) -> bool:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return app_id == 0 and version == 0 and tables == 0


def _check(conn: sqlite3.Connection, path: str | None, identity: Mapping[str, str] | None) -> None:
    where = path or "(in memory)"
    if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        raise JournalCorruptError(where, "an SQLite database, but not a deeplake-sdk journal")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal file {where} has format {version}, written by a newer deeplake-sdk "
            f"(this one reads format {SCHEMA_VERSION}): upgrade deeplake-sdk to use it"
        )
    if identity is not None:
        stored = dict(conn.execute("SELECT key, value FROM info"))
        mine = {k: stored.get(k) for k in identity}
        if mine != dict(identity):
            raise JournalError(
                f"journal file {where} belongs to {mine}, not to {dict(identity)}: "
                "pass the root it came from, or move it aside"
            )


def _check_or_create(
    conn: sqlite3.Connection, path: str | None, identity: Mapping[str, str] | None
) -> None:
    if _is_empty(conn):
        _create(conn, identity)
    else:
        _check(conn, path, identity)


def _create(conn: sqlite3.Connection, identity: Mapping[str, str] | None) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.executemany(
        "INSERT OR REPLACE INTO info (key, value) VALUES (?, ?)",
        sorted((identity or {}).items()),
    )
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def inspect(path: str) -> sqlite3.Connection | None:
    """Open an existing journal file for reading, creating nothing.

    Returns:
        A connection inside a read transaction, or ``None`` for a file that was created but
        never initialised (it holds nothing).

    Raises:
        JournalCorruptError: The file is not a journal or is damaged.
        JournalError: It cannot be opened or was written by a newer SDK.
    """
    try:
        conn = _connect(path, INSPECT_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise map_error(exc, path) from exc
    try:
        conn.execute("BEGIN")
        if _is_empty(conn):
            conn.close()
            return None
        _check(conn, path, None)
    except sqlite3.Error as exc:
        conn.close()
        raise map_error(exc, path) from exc
    except BaseException:
        conn.close()
        raise
    return conn


# ---------------------------------------------------------------------------------------------
# Statements (run inside a transaction)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def append(conn: sqlite3.Connection, rows: Sequence[Row]) -> list[int]:
    """Insert ``(op, tbl, path, size, meta, owner, created, data)`` rows; their seqs in order."""
    cur = conn.cursor()
    seqs = []
    for row in rows:
        cur.execute(
            "INSERT INTO entries (op, tbl, path, size, meta, owner, created, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        seqs.append(int(cur.lastrowid or 0))
    return seqs


def pending(conn: sqlite3.Connection, limit: int, max_bytes: int, after: int = 0) -> list[Row]:
    """The first pending entries after seq ``after``, up to ``limit`` and ``max_bytes``.

    In seq order; at least one entry if there is one, however large.
    """
    chosen: list[int] = []
    total = 0
    for seq, size in conn.execute(
        "SELECT seq, size FROM entries WHERE state = ? AND seq > ? ORDER BY seq LIMIT ?",
        (PENDING, after, max(1, limit)),
    ):
        if chosen and total + size > max_bytes:
            break
        chosen.append(seq)
        total += size
    if not chosen:
        return []
    return conn.execute(
        f"SELECT {_COLUMNS}, data FROM entries WHERE state = ? AND seq BETWEEN ? AND ?"
        " ORDER BY seq",
        (PENDING, chosen[0], chosen[-1]),
    ).fetchall()


def by_state(
    conn: sqlite3.Connection, state: str | None, limit: int | None, data: bool
) -> list[Row]:
    """Entries (of one state, or all) in seq order, with or without their payload."""
    columns = f"{_COLUMNS}, data" if data else _COLUMNS
    where = "" if state is None else "WHERE state = ?"
    params: list[Any] = [] if state is None else [state]
    return conn.execute(
        f"SELECT {columns} FROM entries {where} ORDER BY seq LIMIT ?",
        (*params, -1 if limit is None else limit),
    ).fetchall()


def begin_attempt(
    conn: sqlite3.Connection, seqs: Sequence[int], updates: Mapping[int, Mapping[str, Any]]
) -> None:
    """``attempts += 1`` for each seq, and merge ``updates[seq]`` into its meta."""
    for chunk in _chunks(list(seqs)):
        conn.execute(
            f"UPDATE entries SET attempts = attempts + 1 WHERE seq IN ({_marks(len(chunk))})",
            chunk,
        )
    if not updates:
        return
    keys = list(updates)
    for chunk in _chunks(keys):
        rows = conn.execute(
            f"SELECT seq, meta FROM entries WHERE seq IN ({_marks(len(chunk))})", chunk
        ).fetchall()
        for seq, text in rows:
            meta = json.loads(text)
            meta.update(updates[seq])
            conn.execute("UPDATE entries SET meta = ? WHERE seq = ?", (dump_meta(meta), seq))


def complete(
    conn: sqlite3.Connection,
    seqs: Sequence[int],
    lanes: Iterable[tuple[str, str, str | None]],
) -> None:
    """Delete entries and upsert (or, for ``None``, delete) lane hints."""
    for chunk in _chunks(list(seqs)):
        conn.execute(f"DELETE FROM entries WHERE seq IN ({_marks(len(chunk))})", chunk)
    for tbl, path, hint in lanes:
        if hint is None:
            conn.execute("DELETE FROM lanes WHERE tbl = ? AND path = ?", (tbl, path))
        else:
            conn.execute(
                "INSERT INTO lanes (tbl, path, hint) VALUES (?, ?, ?)"
                " ON CONFLICT (tbl, path) DO UPDATE SET hint = excluded.hint",
                (tbl, path, hint),
            )
    _give_back_space(conn)


def reject(conn: sqlite3.Connection, seq: int, reason: str) -> None:
    """Set an entry aside with the reason."""
    conn.execute(
        "UPDATE entries SET state = ?, error = ? WHERE seq = ?", (REJECTED, str(reason), seq)
    )


def requeue(conn: sqlite3.Connection, seqs: Sequence[int]) -> None:
    """Make rejected entries pending again (their seqs, hence their order, are kept)."""
    for chunk in _chunks(list(seqs)):
        conn.execute(
            f"UPDATE entries SET state = ?, error = NULL"
            f" WHERE state = ? AND seq IN ({_marks(len(chunk))})",
            (PENDING, REJECTED, *chunk),
        )


def discard(conn: sqlite3.Connection, seqs: Sequence[int]) -> None:
    """Delete rejected entries."""
    for chunk in _chunks(list(seqs)):
        conn.execute(
            f"DELETE FROM entries WHERE state = ? AND seq IN ({_marks(len(chunk))})",
            (REJECTED, *chunk),
        )
    _give_back_space(conn)


def states(conn: sqlite3.Connection, seqs: Sequence[int]) -> dict[int, str]:
    """``seq -> state`` of the entries present."""
    found: dict[int, str] = {}
    for chunk in _chunks(list(seqs)):
        found.update(
            conn.execute(
                f"SELECT seq, state FROM entries WHERE seq IN ({_marks(len(chunk))})", chunk
            )
        )
    return found


def stats(conn: sqlite3.Connection) -> tuple[dict[str, tuple[int, int, float | None]], dict]:
    """Per state ``(count, bytes, oldest created)``, and pending entries per owner."""
    per_state = {
        state: (count, total or 0, oldest)
        for state, count, total, oldest in conn.execute(
            "SELECT state, count(*), sum(size), min(created) FROM entries GROUP BY state"
        )
    }
    owners = dict(
        conn.execute(
            "SELECT owner, count(*) FROM entries WHERE state = ? GROUP BY owner ORDER BY owner",
            (PENDING,),
        )
    )
    return per_state, owners


def lanes(conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``(table, path) -> hint JSON`` of the keys that have a hint."""
    found: dict[tuple[str, str], str] = {}
    for tbl, path in dict.fromkeys(keys):
        row = conn.execute(
            "SELECT hint FROM lanes WHERE tbl = ? AND path = ?", (tbl, path)
        ).fetchone()
        if row is not None:
            found[(tbl, path)] = row[0]
    return found


def identity(conn: sqlite3.Connection) -> dict[str, str]:
    """The ``info`` table (origin, org, workspace)."""
    return dict(conn.execute("SELECT key, value FROM info"))


def _give_back_space(conn: sqlite3.Connection) -> None:
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if free > _VACUUM_FREE_PAGES:
        conn.execute("PRAGMA incremental_vacuum").fetchall()


def dump_meta(meta: Mapping[str, Any]) -> str:
    """Serialise meta to the JSON text stored (ASCII, so any str survives the round trip)."""
    return json.dumps(dict(meta), separators=(",", ":"), allow_nan=False)
