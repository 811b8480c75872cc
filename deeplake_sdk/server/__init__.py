"""Local Deeplake-compatible API server on real PostgreSQL, with fault injection.

Run it from the command line (``deeplake-sdk serve``) or from Python::

    from deeplake_sdk.server import local

    with local(faults="flaky", seed=7) as srv:
        print(srv.url, srv.token, srv.org)
        print(srv.stats()["requests"])

:func:`local` runs the server in a child process (gevent-patched there, whatever the caller
does) that is terminated when the caller's thread exits, even if the caller is killed. Without
``data`` or ``dsn`` it uses a fresh temporary PostgreSQL data dir, removed afterwards, so tests
and examples never touch ``~/.deeplake/local``.

:func:`connect` yields a client for the configured service when credentials exist, and
otherwise for a :func:`local` server it starts and stops.

Importing this package is cheap and has no side effects: the server modules are imported only
in the server process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from deeplake_sdk.server.connect import connect
from deeplake_sdk.server.faults import PROFILES, FaultConfig
from deeplake_sdk.server.options import (
    ADMIN_TOKEN_ENV,
    BOOT_CODE,
    DEFAULT_DIALECT,
    DEFAULT_ORG,
    DEFAULT_TOKEN,
    DIALECT_NAMES,
    EXTRA_TOKENS_ENV,
    FAULT_FLAGS,
    TOKEN_ENV,
)
from deeplake_sdk.server.postgres import set_parent_death_signal

__all__ = ["PROFILES", "FaultConfig", "LocalServer", "ServerStartError", "connect", "local"]

logger = logging.getLogger(__name__)
_FLAG_OF = {field: flag for flag, field, _, _ in FAULT_FLAGS}


class ServerStartError(RuntimeError):
    """The server process exited or did not report ``listening on`` in time."""


def _pdeathsig_sigterm() -> None:  # runs in the child between fork and exec
    set_parent_death_signal(signal.SIGTERM)


class LocalServer:
    """A running server process started by :func:`local` (or :meth:`start`).

    Attributes:
        url: base URL, e.g. ``http://127.0.0.1:40123`` (``https://`` with TLS).
        token: the primary bearer token.
        org: the primary token's org id.
        admin_token: the token of the admin endpoints (:meth:`stats`, :meth:`set_faults`...).
        ca_file: the CA file to verify the server's certificate with (TLS), or None.
        pid: process id of the server.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        *,
        url: str,
        token: str,
        org: str,
        cleanup: list[str],
        stderr_path: str,
        admin_token: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self._proc = proc
        self.url = url
        self.token = token
        self.org = org
        self.admin_token = admin_token or token
        self.ca_file = ca_file
        self.pid = proc.pid
        self._cleanup = cleanup
        self._stderr_path = stderr_path

    @property
    def headers(self) -> dict[str, str]:
        """Headers of an authenticated request for the primary token."""
        return {
            "Authorization": f"Bearer {self.token}",
            "X-Activeloop-Org-Id": self.org,
            "Content-Type": "application/json",
        }

    # ------------------------------------------------------------------------ admin API
    def _admin(self, method: str, path: str, body: Any = None, org: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        if org is not None:
            path += "?" + urllib.parse.urlencode({"org": org})
        headers = {
            "Authorization": f"Bearer {self.admin_token}",
            "Content-Type": "application/json",
        }
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        context = None
        if self.ca_file is not None:
            import ssl

            context = ssl.create_default_context(cafile=self.ca_file)
        try:
            with urllib.request.urlopen(req, timeout=30, context=context) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RuntimeError(f"{method} {path} failed: {exc.code} {detail}") from None

    def stats(self, org: str | None = None) -> dict[str, Any]:
        """``GET /_admin/stats``: request, status, fault, connection and query counters.

        Args:
            org: only this org's request and status counters.
        """
        return self._admin("GET", "/_admin/stats", org=org)

    def reset_stats(self, org: str | None = None) -> dict[str, Any]:
        """Zero the counters and restart the fault sequence; returns the fresh stats."""
        return self._admin("POST", "/_admin/stats/reset", org=org)

    def faults(self, org: str | None = None) -> dict[str, Any]:
        """The fault configuration in force (``GET /_admin/faults``), or ``org``'s."""
        return self._admin("GET", "/_admin/faults", org=org)

    def set_faults(
        self,
        profile: str | None = None,
        seed: int | None = None,
        *,
        org: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Change the fault injection and restart its sequence.

        Args:
            profile: start from this named profile (default: the current settings).
            seed: new seed (default: keep the current one).
            org: set the faults of this org only (default: every org's, which also ends the
                org-scoped ones).
            **overrides: :class:`FaultConfig` fields, e.g. ``p_500=0.1``.

        Returns:
            The configuration now in force.
        """
        body: dict[str, Any] = dict(overrides)
        if profile is not None:
            body["profile"] = profile
        if seed is not None:
            body["seed"] = seed
        return self._admin("PUT", "/_admin/faults", body, org=org)

    # ------------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc.poll() is None

    def stderr_text(self) -> str:
        """What the server wrote on stderr so far (its log)."""
        try:
            return Path(self._stderr_path).read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the server, wait for it (it stops its PostgreSQL first), clean up.

        Returns:
            The server's exit status (None if it had to be killed).
        """
        proc = self._proc
        code: int | None = proc.poll()
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("server %s did not stop in %.0f s; killing it", proc.pid, timeout)
                proc.kill()
                proc.wait()
                code = None
        if proc.stdout is not None:
            proc.stdout.close()
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)
        self._cleanup = []
        return code

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @classmethod
    def start(
        cls,
        *,
        faults: str = "none",
        seed: int | None = None,
        data: str | os.PathLike[str] | None = None,
        dsn: str | None = None,
        token: str | None = None,
        org: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_tokens: dict[str, str] | None = None,
        startup_timeout: float = 120.0,
        extra_args: list[str] | None = None,
        dialect: str = DEFAULT_DIALECT,
        durable: bool = True,
        admin_token: str | None = None,
        tls: tuple[str, str] | None = None,
        ca_file: str | None = None,
        trace: str | os.PathLike[str] | None = None,
        **fault_overrides: Any,
    ) -> LocalServer:
        """Start a server process and wait until it listens (see :func:`local`)."""
        if data is not None and dsn is not None:
            raise ValueError("pass data or dsn, not both")
        if dialect not in DIALECT_NAMES:
            raise ValueError(
                f"unknown dialect {dialect!r}; choose one of {', '.join(DIALECT_NAMES)}"
            )
        FaultConfig.from_profile(faults, **fault_overrides)  # fail fast on bad settings
        token = token or DEFAULT_TOKEN
        org = org or DEFAULT_ORG
        work = tempfile.mkdtemp(prefix="dlsrv")
        cleanup = [work]
        args = ["--host", host, "--port", str(port), "--org", org]
        args += ["--faults", faults, "--dialect", dialect]
        if tls is not None:
            args += ["--tls-cert", os.fspath(tls[0]), "--tls-key", os.fspath(tls[1])]
        if not durable:
            args.append("--unsafe-fast-storage")
        if trace is not None:
            args += ["--trace", os.fspath(trace)]
        if dsn is not None:
            args += ["--dsn", dsn]
        else:
            if data is None:
                data = os.path.join(work, "data")
            args += ["--data", os.fspath(data)]
        if seed is not None:
            args += ["--seed", str(seed)]
        for field, value in fault_overrides.items():
            if field not in _FLAG_OF:
                raise ValueError(f"unknown fault setting {field!r}")
            if value is not None:
                args += [_FLAG_OF[field], str(value)]
        args += extra_args or []
        env = dict(os.environ)
        # tokens go through the environment: the command line is visible to every user (ps)
        env[TOKEN_ENV] = token
        env[EXTRA_TOKENS_ENV] = "\n".join(f"{t}={o}" for t, o in (extra_tokens or {}).items())
        env.pop(ADMIN_TOKEN_ENV, None)
        if admin_token is not None:
            env[ADMIN_TOKEN_ENV] = admin_token
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        stderr_path = os.path.join(work, "server.log")
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", BOOT_CODE, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                # the death signal needs code between fork and exec; the function only calls prctl
                preexec_fn=_pdeathsig_sigterm,  # noqa: PLW1509
            )
        try:
            url = _wait_listening(proc, startup_timeout, stderr_path)
        except BaseException:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            shutil.rmtree(work, ignore_errors=True)
            raise
        logger.info("local server %s listening on %s", proc.pid, url)
        return cls(
            proc,
            url=url,
            token=token,
            org=org,
            cleanup=cleanup,
            stderr_path=stderr_path,
            admin_token=admin_token,
            ca_file=ca_file,
        )


def _wait_listening(proc: subprocess.Popen[bytes], timeout: float, stderr_path: str) -> str:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerStartError(
                    f"server did not start within {timeout:.0f} s: {_tail(stderr_path)}"
                )
            if not sel.select(remaining):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                proc.wait(10)
                raise ServerStartError(
                    f"server exited with status {proc.returncode}: {_tail(stderr_path)}"
                )
            buf += chunk
    line = buf.split(b"\n", 1)[0].decode(errors="replace").strip()
    prefix = "listening on "
    if not line.startswith(prefix):
        raise ServerStartError(f"unexpected server output {line!r}: {_tail(stderr_path)}")
    return line[len(prefix) :]


def _tail(path: str, lines: int = 20) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip()
    except OSError:
        return "(no output)"
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


@contextlib.contextmanager
def local(
    *,
    faults: str = "none",
    seed: int | None = None,
    data: str | os.PathLike[str] | None = None,
    dsn: str | None = None,
    token: str | None = None,
    org: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    extra_tokens: dict[str, str] | None = None,
    dialect: str = DEFAULT_DIALECT,
    durable: bool = True,
    admin_token: str | None = None,
    tls: tuple[str, str] | None = None,
    ca_file: str | None = None,
    trace: str | os.PathLike[str] | None = None,
    **fault_overrides: Any,
) -> Iterator[LocalServer]:
    """Run a local server for the duration of a ``with`` block.

    Args:
        faults: fault profile (``none``, ``flaky``, ``beta``, ``service``).
        seed: seed of the fault sequence (default random).
        data: embedded PostgreSQL data dir (default: a temporary dir removed afterwards).
        dsn: use this PostgreSQL (superuser DSN) instead of an embedded one.
        token: primary bearer token (default ``local-dev-token``).
        org: org id of the primary token (default ``local``).
        host: address to listen on.
        port: port (0 = a free one; see ``srv.url``).
        extra_tokens: more ``{token: org}`` pairs (for tests with several orgs).
        dialect: ``deeplake`` (default: the service's behaviours, see :doc:`/server`) or
            ``postgres`` (plain PostgreSQL: 400 "already exists", SQLSTATE error codes,
            backslash as the default LIKE escape).
        durable: ``True`` (default): the embedded PostgreSQL runs with ``fsync``,
            ``full_page_writes`` and ``synchronous_commit`` on. ``False``: the fast unsafe
            settings (tests and benchmarks where durability is not what is measured; a crash
            can lose acknowledged writes). Ignored with ``dsn``.
        admin_token: token of the admin endpoints (default: ``token``, on loopback).
        tls: ``(certificate file, key file)``: serve https.
        ca_file: CA file that verifies the certificate (used by :meth:`LocalServer.stats`...).
        trace: append a statement trace to this file (:mod:`deeplake_sdk.server.trace`).
        **fault_overrides: :class:`FaultConfig` fields on top of the profile.

    Yields:
        The running :class:`LocalServer`; it is stopped (with its PostgreSQL) on exit.

    Raises:
        ServerStartError: the server failed to start (the message includes its log).
    """
    srv = LocalServer.start(
        faults=faults,
        seed=seed,
        data=data,
        dsn=dsn,
        token=token,
        org=org,
        host=host,
        port=port,
        extra_tokens=extra_tokens,
        dialect=dialect,
        durable=durable,
        admin_token=admin_token,
        tls=tls,
        ca_file=ca_file,
        trace=trace,
        **fault_overrides,
    )
    try:
        yield srv
    finally:
        srv.stop()
