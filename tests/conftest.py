"""Fixtures shared by the whole test suite: a real local server on real PostgreSQL.

- ``pg_dsn`` (session): DSN of one embedded PostgreSQL (fresh cluster in a short temporary
  dir), stopped and removed at the end of the session. Start extra servers on it with
  ``deeplake_sdk.server.local(dsn=pg_dsn, ...)``: no initdb, they start in about a second.
- ``server`` (session): a :class:`deeplake_sdk.server.LocalServer` on ``pg_dsn``, profile
  ``none``, dialect ``deeplake`` (the service's behaviours). Prefer ``srv`` in tests.
- ``pgsrv`` (function): like ``srv``, on a second session server with ``dialect="postgres"``
  (plain PostgreSQL: 400 "already exists", SQLSTATE codes, backslash as the default LIKE
  escape), for tests that need plain PostgreSQL; ``pgraw``: a ``raw`` client bound to it
  (workspace ``<workspace>_pg``: both servers share the cluster).
- ``srv`` (function): the session server with faults set back to ``none`` (seed 0) and the
  stats reset before the test. ``srv.url``, ``srv.token``, ``srv.org``, ``srv.headers``,
  ``srv.stats()``, ``srv.reset_stats()``, ``srv.set_faults(profile=None, seed=None, **fields)``.
  Extra tokens ``EXTRA_TOKENS`` (``tok-acme`` -> org ``acme``, ``tok-beta`` -> ``beta``) are
  accepted for multi-org tests.
- ``workspace`` (function): a unique workspace name ``t_<8 hex>`` (its schema is created on
  first use), so tests never see each other's tables.
- ``raw`` (function): a :class:`RawClient` (requests.Session with the token and org headers)
  bound to ``srv`` and ``workspace``: ``raw.query(sql, *params, timeout_ms=None)`` returns the
  ``requests.Response``; ``raw.rows(sql, *params)`` asserts 200 and returns the rows;
  ``raw.get/post/put/delete(path, **kw)`` for other routes (path relative to the server URL).
- ``api`` (function): a :class:`deeplake_sdk.DeeplakeApi` on ``srv`` and ``workspace``.
- ``fs`` (function): a :class:`deeplake_sdk.DeeplakeFs` on ``api`` with a temporary cache.
- every test runs with ``DEEPLAKE_JOURNAL_DIR`` and ``DEEPLAKE_STATE_DIR`` (remembered table
  layouts) set to temporary directories of the session (inherited by the processes tests
  start), so no test touches ``~/.deeplake/journal`` or ``~/.cache``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from deeplake_sdk.journal.core import close_all
from deeplake_sdk.server import LocalServer, local
from deeplake_sdk.server.postgres import EmbeddedPostgres

EXTRA_TOKENS = {"tok-acme": "acme", "tok-beta": "beta"}


class RawClient:
    """Raw HTTP calls to a local server for one workspace."""

    def __init__(self, srv: LocalServer, workspace: str) -> None:
        self.srv = srv
        self.workspace = workspace
        self.session = requests.Session()
        self.session.headers.update(srv.headers)

    def url(self, path: str) -> str:
        return self.srv.url + path

    def query(
        self,
        sql: str,
        *params: Any,
        timeout_ms: int | None = None,
        workspace: str | None = None,
        **kw: Any,
    ) -> requests.Response:
        body: dict[str, Any] = {"query": sql}
        if params:
            body["params"] = list(params)
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        ws = workspace or self.workspace
        return self.session.post(
            self.url(f"/workspaces/{ws}/tables/query"), json=body, timeout=60, **kw
        )

    def rows(self, sql: str, *params: Any, workspace: str | None = None) -> list[list[Any]]:
        resp = self.query(sql, *params, workspace=workspace)
        assert resp.status_code == 200, resp.text
        return resp.json()["rows"]

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.url(path), timeout=60, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self.url(path), timeout=60, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.session.put(self.url(path), timeout=60, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.session.delete(self.url(path), timeout=60, **kw)

    def close(self) -> None:
        self.session.close()


@pytest.fixture(scope="session", autouse=True)
def journal_dir() -> Iterator[str]:
    root = tempfile.mkdtemp(prefix="dljournal")
    state = tempfile.mkdtemp(prefix="dlstate")
    # the processes tests start make their temporary files here, removed at the end: a server
    # process a test kills leaves its embedded PostgreSQL's socket directory behind
    children_tmp = tempfile.mkdtemp(prefix="dltmp")
    os.chmod(children_tmp, 0o755)  # the PostgreSQL user reaches its socket directory inside
    keys = ("DEEPLAKE_JOURNAL_DIR", "DEEPLAKE_STATE_DIR", "TMPDIR")
    previous = {k: os.environ.get(k) for k in keys}
    os.environ["DEEPLAKE_JOURNAL_DIR"] = root
    os.environ["DEEPLAKE_STATE_DIR"] = state
    os.environ["TMPDIR"] = children_tmp  # this process's tempfile directory is already set
    try:
        yield root
    finally:
        close_all()  # no flusher keeps looking at the removed directory
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(children_tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    root = tempfile.mkdtemp(prefix="dlpgt")
    pg = EmbeddedPostgres(root, durable=False)  # durability is tested on its own
    try:
        yield pg.start()
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def server(pg_dsn: str) -> Iterator[LocalServer]:
    with local(dsn=pg_dsn, extra_tokens=EXTRA_TOKENS) as s:
        yield s


def _fresh(server: LocalServer) -> LocalServer:
    """``server`` with faults set back to ``none`` (seed 0), its stats reset, and the client's
    per-origin limiters forgotten (a test's overloads do not shrink or pause the next's)."""
    from deeplake_sdk.transport import close_endpoints

    close_endpoints()
    server.set_faults(profile="none", seed=0)
    server.reset_stats()
    return server


@pytest.fixture
def srv(server: LocalServer) -> LocalServer:
    return _fresh(server)


@pytest.fixture(scope="session")
def postgres_server(pg_dsn: str) -> Iterator[LocalServer]:
    with local(dsn=pg_dsn, extra_tokens=EXTRA_TOKENS, dialect="postgres") as s:
        yield s


@pytest.fixture
def pgsrv(postgres_server: LocalServer) -> LocalServer:
    """The session server with ``dialect="postgres"``, faults none (seed 0), stats reset."""
    return _fresh(postgres_server)


@pytest.fixture
def pgraw(pgsrv: LocalServer, workspace: str) -> Iterator[RawClient]:
    """A :class:`RawClient` on ``pgsrv`` (plain PostgreSQL dialect), workspace ``<workspace>_pg``.

    Both session servers share one cluster: the suffix keeps its tables apart from ``raw``'s.
    """
    client = RawClient(pgsrv, workspace + "_pg")
    yield client
    client.close()


@pytest.fixture
def workspace() -> str:
    return f"t_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def raw(srv: LocalServer, workspace: str) -> Iterator[RawClient]:
    client = RawClient(srv, workspace)
    yield client
    client.close()


@pytest.fixture
def api(srv: LocalServer, workspace: str) -> Iterator[Any]:
    """A DeeplakeApi bound to ``srv`` and a fresh ``workspace`` (default settings)."""
    from deeplake_sdk import DeeplakeApi

    client = DeeplakeApi(srv.token, srv.org, workspace, srv.url)
    yield client
    client.close()


@pytest.fixture
def fs(api: Any, tmp_path: Any) -> Iterator[Any]:
    """A DeeplakeFs on ``api`` with a content cache in a temporary directory."""
    from deeplake_sdk import ContentCache, DeeplakeFs

    filesystem = DeeplakeFs(api, cache=ContentCache(tmp_path / "cache"))
    yield filesystem
    if not filesystem.closed:
        filesystem.close()
