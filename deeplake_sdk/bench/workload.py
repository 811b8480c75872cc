"""The session workload of the benchmark, built on the real SDK.

One session, as an agent runs it (DESIGN section 8):

* **start**: open the memory filesystem, list the user's notes;
* **R QA rounds**: log the prompt event, one tool step (grep the user's notes on even rounds,
  read one of them on odd rounds), log the response event;
* **end**: write ``/summaries/<user>/<session>.md``, flush it, read ``/index.md``.

A failure in a QA round is counted and the session goes on, as an agent would; a failure to
start or to store the summary crashes the session. Every write the session was told had
succeeded is recorded so that the runner can check it against the database afterwards.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from deeplake_sdk.api import DeeplakeApi
from deeplake_sdk.api_types import QueryResult
from deeplake_sdk.bench.reference import ReferenceFs
from deeplake_sdk.errors import DeeplakeError
from deeplake_sdk.fs import DeeplakeFs
from deeplake_sdk.limiter import DEFAULT_MAX_CONCURRENCY
from deeplake_sdk.sessions import SessionLog

#: Grep patterns used by the tool step (literal words of the seeded notes, and one regex).
GREP_PATTERNS = ("deadline", "budget", "Friday|Monday", "owner")
#: Error texts a session keeps of the steps that failed without ending it.
STEP_ERRORS_KEPT = 5


@dataclass(frozen=True)
class ModeConfig:
    """How the SDK is configured for one benchmark mode.

    ``baseline`` is the SDK configured like the reference client before its fix: no retry, no
    concurrency bound, sequential bootstrap and one query per file in grep
    (:class:`~deeplake_sdk.bench.reference.ReferenceFs`), no cache, and no durable journal
    (writes wait in memory).
    """

    name: str
    max_concurrency: int | None
    retries: int | None
    reference_fs: bool
    cache: bool
    durable: bool
    adaptive: bool = True


MODES: dict[str, ModeConfig] = {
    "baseline": ModeConfig("baseline", None, 0, True, False, False, adaptive=False),
    "optimized": ModeConfig("optimized", DEFAULT_MAX_CONCURRENCY, None, False, True, True),
}


class CountingApi(DeeplakeApi):
    """A DeeplakeApi that counts the statements a session issues and those that failed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statements = 0
        self.failed = 0

    def execute(self, sql: str, params: Any = None, **kwargs: Any) -> QueryResult:
        """Count, then run :meth:`DeeplakeApi.execute`."""
        self.statements += 1
        try:
            return super().execute(sql, params, **kwargs)
        except DeeplakeError:
            self.failed += 1
            raise


@dataclass
class SessionRecord:
    """What one session did and saw."""

    user: str
    session: str
    completed: bool = False
    crashed: bool = False
    error: str = ""
    queries: int = 0
    errors: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    op_errors: dict[str, int] = field(default_factory=dict)
    step_errors: list[str] = field(default_factory=list)  # the first few, as "op: error"
    acked_files: dict[str, str] = field(default_factory=dict)
    acked_events: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Target:
    """Where the sessions run."""

    url: str
    token: str
    org: str
    workspace: str
    cache_dir: str | None = None
    journal_dir: str | None = None

    def journal(self, mode: ModeConfig) -> str | bool | None:
        """The journal sessions of ``mode`` use (False: in memory)."""
        return self.journal_dir if mode.durable else False


def digest(data: bytes) -> str:
    """Content fingerprint used to compare acknowledged writes with the database."""
    return hashlib.sha256(data).hexdigest()


def run_session(
    target: Target, mode: ModeConfig, user: str, session: str, rounds: int
) -> SessionRecord:
    """Run one session of the workload and return its record (never raises)."""
    record = SessionRecord(user=user, session=session)
    api = CountingApi(
        target.token,
        target.org,
        target.workspace,
        target.url,
        max_concurrency=mode.max_concurrency,
        retries=mode.retries,
        adaptive=mode.adaptive,
    )

    def timed(op: str, func: Callable[[], Any], fatal: bool = False) -> Any:
        start = time.perf_counter()
        try:
            return func()
        except DeeplakeError as exc:
            record.op_errors[op] = record.op_errors.get(op, 0) + 1
            if len(record.step_errors) < STEP_ERRORS_KEPT:
                record.step_errors.append(f"{op}: {type(exc).__name__}: {exc}"[:300])
            if fatal:
                raise
            return None
        finally:
            record.latencies.setdefault(op, []).append((time.perf_counter() - start) * 1000)

    fs: DeeplakeFs | None = None
    try:
        cache = _cache(target, mode)
        fs = timed("bootstrap", lambda: _open(api, target, mode, cache), fatal=True)
        assert fs is not None
        log = SessionLog(
            api, session, user=user, project="bench", ensure=False, journal=target.journal(mode)
        )
        notes = timed("list_notes", lambda: _notes(fs, user)) or []
        for i in range(rounds):
            event = timed(
                "log_prompt",
                lambda i=i: log.log({"type": "prompt", "round": i, "text": f"question {i}"}),
            )
            if event:
                record.acked_events.append(event)
            if i % 2 == 0 or not notes:
                pattern = GREP_PATTERNS[i % len(GREP_PATTERNS)]
                timed("grep", lambda p=pattern: fs.grep(p, f"/notes/{user}", ignore_case=True))
            else:
                timed("read", lambda i=i: fs.read_text(notes[i % len(notes)]))
            event = timed(
                "log_response",
                lambda i=i: log.log({"type": "response", "round": i, "text": f"answer {i}"}),
            )
            if event:
                record.acked_events.append(event)
        summary_path = f"/summaries/{user}/{session}.md"
        summary = f"# {session}\n\n{rounds} rounds with {user}; next step: follow up.\n"
        timed("write_summary", lambda: _write_summary(fs, summary_path, summary), fatal=True)
        record.acked_files[summary_path] = digest(summary.encode())
        timed("read_index", lambda: fs.read_text("/index.md"))
        record.completed = True
    except DeeplakeError as exc:
        record.crashed = True
        record.error = f"{type(exc).__name__}: {exc}"[:300]
    except Exception as exc:  # the benchmark reports a crash instead of dying with it
        record.crashed = True
        record.error = "".join(traceback.format_exception_only(exc)).strip()[:300]
    finally:
        if fs is not None:
            fs.close(wait=False)  # what was acknowledged stays journaled and is stored
    record.queries, record.errors = api.statements, api.failed
    return record


def _cache(target: Target, mode: ModeConfig) -> Any:
    if not mode.cache or not target.cache_dir:
        return False
    from deeplake_sdk.cache import ContentCache

    return ContentCache(target.cache_dir)


def _open(api: DeeplakeApi, target: Target, mode: ModeConfig, cache: Any) -> DeeplakeFs:
    kind = ReferenceFs if mode.reference_fs else DeeplakeFs
    return kind(api, cache=cache, journal=target.journal(mode), author="bench")


def _notes(fs: DeeplakeFs, user: str) -> list[str]:
    """The user's notes (an agent lists its directory before it reads)."""
    directory = f"/notes/{user}"
    return [f"{directory}/{name}" for name in fs.ls(directory)] if fs.exists(directory) else []


def _write_summary(fs: DeeplakeFs, path: str, text: str) -> None:
    fs.write_text(path, text, description="session summary")
    fs.flush()


def seed_notes(api: DeeplakeApi, users: list[str]) -> int:
    """Give every user a few notes to grep and read; returns how many files were written."""
    topics = ("deadline is Friday", "budget owner is Ada", "ship on Monday", "open questions")
    with DeeplakeFs(api, cache=False, journal=False) as fs:
        for user in users:
            for k, topic in enumerate(topics):
                fs.write_text(
                    f"/notes/{user}/note{k}.md",
                    f"# Note {k} of {user}\n\n- {topic}\n- context line {k}\n",
                    description=topic,
                )
        fs.flush()
    return len(users) * len(topics)
