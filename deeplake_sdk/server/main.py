"""Server process: embedded PostgreSQL (or ``--dsn``), backend, WSGI server, signal handling.

``gevent.monkey.patch_all()`` must have run before this module is imported (psycopg chooses
its wait function at import time); :data:`BOOT_CODE` and ``python -m deeplake_sdk.server`` do
that. Prints exactly ``listening on http://HOST:PORT`` (``https`` with ``--tls-cert``) on
stdout once ready. SIGINT/SIGTERM stop the HTTP server, close the connections, stop PostgreSQL
and exit with status 0.

When the embedded PostgreSQL dies, a supervisor greenlet starts it again at once (requests
meanwhile answer a retryable 503 ``database_unavailable``); ``postgres_restarts`` and
``postgres_last_recovery_s`` in the stats count and time it.
"""

from __future__ import annotations

import errno
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gevent import monkey

if not monkey.is_module_patched("select"):  # pragma: no cover - guarded entry points patch
    raise ImportError("deeplake_sdk.server.main needs gevent.monkey.patch_all() to run first")

import gevent
import gevent.event

from deeplake_sdk.server import options
from deeplake_sdk.server.app import App
from deeplake_sdk.server.backend import Backend
from deeplake_sdk.server.dialect import get_dialect
from deeplake_sdk.server.faults import FaultConfig, FaultInjector
from deeplake_sdk.server.http import Server
from deeplake_sdk.server.postgres import EmbeddedPostgres
from deeplake_sdk.server.stats import Stats
from deeplake_sdk.server.trace import StatementTrace

logger = logging.getLogger(__name__)


def _postgres_cpu(pg: EmbeddedPostgres | None) -> Any:
    """Stats extra: CPU seconds of the embedded PostgreSQL (postmaster + backends)."""

    def measure() -> float | None:
        if pg is None or pg.pid is None:
            return None
        try:
            import psutil

            proc = psutil.Process(pg.pid)
            t = proc.cpu_times()
            total = t.user + t.system + t.children_user + t.children_system
            for child in proc.children():
                try:
                    ct = child.cpu_times()
                    total += ct.user + ct.system
                except psutil.Error:
                    pass
            return total
        except Exception:  # psutil missing or the process is gone
            return None

    def extra(base: dict[str, Any]) -> dict[str, Any]:
        now = measure()
        if "pg" not in base:
            base["pg"] = now
            return {}
        start = base["pg"]
        value = None if now is None or start is None else round(now - start, 6)
        return {"postgres_cpu_seconds": value, "postgres_pid": pg.pid if pg else None}

    return extra


def _fail(message: str) -> int:
    """One line on stderr, exit status 2 (the CLI's usage/error status)."""
    print("deeplake-sdk: error: " + " ".join(message.split()), file=sys.stderr)
    return 2


def _startup_hint(exc: Exception, ns: Any) -> str:
    """The startup error plus what to do about it."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"{text}; port {ns.port} is taken: pick another --port (0 = any free port)"
    if ns.dsn and not isinstance(exc, OSError):
        return f"cannot use PostgreSQL at --dsn ({text}); check the DSN and that PostgreSQL runs"
    return text


class _Supervisor:
    """Restarts the embedded PostgreSQL whenever its postmaster exits (until stopped)."""

    def __init__(self, pg: EmbeddedPostgres, backend: Backend) -> None:
        self.pg = pg
        self.backend = backend
        self.restarts = 0
        self.last_recovery_s: float | None = None
        self.stopping = False
        self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while not self.stopping:
            status = self.pg.wait_exit()
            if self.stopping:
                return
            died = time.monotonic()
            logger.error("PostgreSQL exited (status %s); restarting it", status)
            self.backend.pool.discard_idle()
            try:
                self.backend.dsn = self.pg.restart()
            except Exception:
                logger.exception("PostgreSQL could not be restarted; trying again")
                continue
            self.restarts += 1
            self.last_recovery_s = round(time.monotonic() - died, 3)
            logger.warning("PostgreSQL restarted in %.2f s", self.last_recovery_s)

    def stop(self) -> None:
        self.stopping = True
        self.greenlet.kill(block=False)

    def info(self) -> dict[str, Any]:
        return {
            "postgres_restarts": self.restarts,
            "postgres_last_recovery_s": self.last_recovery_s,
        }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit status."""
    ns = options.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, ns.log_level), format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        tokens, admin, warning = options.access(ns)
        limits = options.limits_of(ns)
        faults = FaultConfig.from_profile(ns.faults, seed=ns.seed, **options.fault_overrides(ns))
        dialect = get_dialect(ns.dialect)
        migrations = options.parse_migrations(ns)
        if bool(ns.tls_cert) != bool(ns.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
    except ValueError as exc:
        return _fail(str(exc))
    if warning:
        print(warning, file=sys.stderr, flush=True)
    stop = gevent.event.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, stop.set)

    pg: EmbeddedPostgres | None = None
    backend: Backend | None = None
    server: Server | None = None
    supervisor: _Supervisor | None = None
    trace: StatementTrace | None = None
    try:
        if ns.dsn:
            dsn = ns.dsn
        else:
            pg = EmbeddedPostgres(
                Path(ns.data) if ns.data else None, durable=not ns.unsafe_fast_storage
            )
            dsn = pg.start()
        if stop.is_set():
            return 0
        pg_cpu = _postgres_cpu(pg)

        def extra(base: dict[str, Any]) -> dict[str, Any]:
            resetting = "pg" not in base
            info = pg_cpu(base)
            if backend is not None:
                if resetting:
                    backend.reset_stats()
                info["db_connections_open"] = backend.pool.open_count
                info["db_pool"] = backend.pool_stats()
            if supervisor is not None:
                info.update(supervisor.info())
            info["dialect"] = dialect.name
            return info

        stats = Stats(extra=extra)
        backend = Backend(
            dsn,
            pool_size=ns.pool_size,
            limits=limits,
            dialect=dialect,
            on_execute=stats.executed,
            on_inject=stats.inject,
        )
        backend.bootstrap()
        backend.migrate_old_layout(migrations, orgs=tokens.values())
        if pg is not None:
            supervisor = _Supervisor(pg, backend)
        trace = StatementTrace(ns.trace) if ns.trace else None
        app = App(
            backend,
            tokens,
            FaultInjector(faults),
            stats,
            admin_token=admin,
            limits=limits,
            trace=trace,
        )
        tls = {"certfile": ns.tls_cert, "keyfile": ns.tls_key} if ns.tls_cert else {}
        server = Server((ns.host, ns.port), app, on_accept=stats.connection, **tls)
        server.start()
        host, port = server.address[:2]
        scheme = "https" if tls else "http"
        print(f"listening on {scheme}://{host}:{port}", flush=True)
        logger.info(
            "faults %s (seed %s), dialect %s; PostgreSQL %s",
            faults.profile,
            app.injector.config.seed,
            dialect.name,
            f"embedded in {pg.data_dir} ({'durable' if pg.durable else 'UNSAFE fast storage'})"
            if pg
            else "at --dsn",
        )
        stop.wait()
        logger.info("stopping")
        return 0
    except Exception as exc:
        logger.debug("startup failed", exc_info=True)
        return _fail(_startup_hint(exc, ns))
    finally:
        if supervisor is not None:
            supervisor.stop()
        if server is not None:
            server.stop(timeout=2)
        if backend is not None:
            backend.close()
        if trace is not None:
            trace.close()
        if pg is not None:
            pg.stop()
