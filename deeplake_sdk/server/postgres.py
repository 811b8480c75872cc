"""Embedded PostgreSQL: a private cluster run as a child process of the server.

``pgserver`` is used only as the PostgreSQL distribution (its ``initdb`` and ``postgres``
binaries). The cluster is started directly as a child process that listens on a unix socket only
(no TCP; in the data directory, or in a short private directory when that path is too long for
a socket), and that receives ``SIGINT`` (fast shutdown) when its parent dies, even if the
parent is killed with ``SIGKILL`` (``PR_SET_PDEATHSIG``).

When the current user is root, PostgreSQL refuses to run; the cluster then runs as the system
user ``pgserver`` (created if missing), which owns the data directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path("~/.deeplake/local")
SYSTEM_USER_FOR_ROOT = "pgserver"
_PR_SET_PDEATHSIG = 1
_MAX_SOCKET_DIR_BYTES = 80  # + "/.s.PGSQL.5432.lock" stays under the ~107-byte sun_path limit
_prefix_permissions_done: set[str] = set()

#: Settings of a durable cluster (the default): an acknowledged commit is on disk.
DURABLE_SETTINGS = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}
#: The fast unsafe settings (``durable=False``): commits may be lost, a power loss may corrupt.
UNSAFE_FAST_SETTINGS = {"fsync": "off", "full_page_writes": "off", "synchronous_commit": "off"}


class PostgresError(RuntimeError):
    """PostgreSQL could not be initialised or started."""


def set_parent_death_signal(sig: int) -> None:
    """Ask the kernel to send ``sig`` to the calling process when its parent thread exits.

    Meant for ``subprocess.Popen(preexec_fn=...)``: it then applies to the child only. It runs
    after Popen's user switch, so the setting survives it (a uid change clears it).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:  # pragma: no cover - linux only
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def pg_bin() -> Path:
    """Directory of the PostgreSQL binaries shipped by pgserver (postgres, initdb, pg_dump)."""
    try:
        with warnings.catch_warnings():
            # importing pgserver probes a runtime dir (platformdirs) and warns without XDG vars
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise PostgresError(
            "the embedded PostgreSQL needs the 'server' extra: pip install 'deeplake-sdk[server]' "
            "(or pass --dsn to use an existing PostgreSQL)"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed and not yet reaped by its new parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``data_dir``, initialised on first use, run as a child process.

    Args:
        data_dir: directory holding the cluster (``data_dir/postgres``) and its log
            (``data_dir/postgres.log``); created with its parents if missing.
            Default ``~/.deeplake/local``.
        settings: extra ``postgres -c name=value`` settings (they win over ``durable``).
        durable: ``True`` (default): ``fsync``, ``full_page_writes`` and ``synchronous_commit``
            on, and initdb syncs the new cluster to disk, so an acknowledged commit survives
            a crash of PostgreSQL, of the server or of the machine. ``False``: the three are
            off (unsafe, for tests and benchmarks where durability is not what is measured):
            commits acknowledged shortly before a crash can be lost, and a power loss can
            corrupt the cluster.

    Example:
        >>> with EmbeddedPostgres("/tmp/pg") as pg:  # doctest: +SKIP
        ...     print(pg.dsn)
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        settings: dict[str, Any] | None = None,
        *,
        durable: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir or DEFAULT_DATA_DIR).expanduser().resolve()
        self.pgdata = self.data_dir / "postgres"
        self.log_path = self.data_dir / "postgres.log"
        self.durable = durable
        self.settings: dict[str, Any] = {
            **(DURABLE_SETTINGS if durable else UNSAFE_FAST_SETTINGS),
            "max_connections": 200,
            "shared_buffers": "128MB",
            "listen_addresses": "",
        }
        self.settings.update(settings or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket_dir: str | None = None
        self._own_socket_dir = False
        self._user: str | None = SYSTEM_USER_FOR_ROOT if os.geteuid() == 0 else None

    # ------------------------------------------------------------------ properties
    @property
    def dsn(self) -> str:
        """Connection string of the running cluster (superuser ``postgres``, unix socket)."""
        if self._socket_dir is None:
            raise PostgresError("PostgreSQL is not running")
        return f"postgresql://postgres@/postgres?host={self._socket_dir}"

    @property
    def pid(self) -> int | None:
        """Process id of the postmaster, or None when not running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the postmaster child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 60.0) -> str:
        """Initialise the cluster if needed, start it and wait until it accepts connections.

        Returns:
            The DSN (also available as :attr:`dsn`).

        Raises:
            PostgresError: initdb or the server failed; the message includes the log's tail.
        """
        if self.running:
            return self.dsn
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        self._initdb()
        self._remove_stale_pid_file()
        if len(str(self.pgdata).encode()) <= _MAX_SOCKET_DIR_BYTES:
            self._socket_dir, self._own_socket_dir = str(self.pgdata), False
        else:  # unix socket paths are limited to ~107 bytes: use a short private dir
            self._socket_dir, self._own_socket_dir = tempfile.mkdtemp(prefix="dlpg"), True
            self._chown(Path(self._socket_dir))
        args = [str(pg_bin() / "postgres"), "-D", str(self.pgdata), "-k", self._socket_dir]
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        logger.debug("starting postgres: %s", args)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                user=self._user,
                # PR_SET_PDEATHSIG must run in the child after the uid switch: no alternative
                preexec_fn=lambda: set_parent_death_signal(signal.SIGINT),  # noqa: PLW1509
                close_fds=True,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        logger.info("postgres %s ready in %s", self._proc.pid, self.pgdata)
        return self.dsn

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the cluster: fast shutdown (``SIGINT``), then ``SIGKILL`` after ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("postgres %s did not stop in %.0f s; killing it", proc.pid, timeout)
                proc.kill()
                proc.wait()
        if self._socket_dir is not None and self._own_socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        self._socket_dir = None

    def wait_exit(self) -> int | None:
        """Block until the postmaster exits (cooperative under gevent); its exit status.

        Returns None at once when no postmaster runs.
        """
        proc = self._proc
        return None if proc is None else proc.wait()

    def restart(self, timeout: float = 60.0) -> str:
        """Start the cluster again after its postmaster died; returns the (new) DSN.

        The dead postmaster's backends must leave the shared memory first; they do so as soon
        as they notice its death, so starting is retried until ``timeout``.

        Raises:
            PostgresError: it could not be started within ``timeout`` seconds.
        """
        self.stop(timeout=5)
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                return self.start(timeout=max(1.0, deadline - time.monotonic()))
            except PostgresError:
                if time.monotonic() + delay > deadline:
                    raise
                logger.info("postgres not restartable yet; retrying", exc_info=True)
            time.sleep(delay)  # waits for the old backends to exit (no event to wait on)
            delay = min(delay * 2, 1.0)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers
    def _chown(self, path: Path) -> None:
        if self._user is None:
            return
        import pwd

        entry = pwd.getpwnam(self._user)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _prepare_permissions(self) -> None:
        if self._user is None:
            return
        bin_dir = pg_bin()  # imports pgserver quietly first
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(self._user)
        ensure_prefix_permissions(self.data_dir)
        self.data_dir.chmod(self.data_dir.stat().st_mode | 0o055)
        if str(bin_dir) not in _prefix_permissions_done:
            import stat

            ensure_prefix_permissions(bin_dir)
            read = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(bin_dir, read | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(bin_dir.parent / "lib", read)
            _prefix_permissions_done.add(str(bin_dir))
        if self.pgdata.exists():
            self._chown(self.pgdata)
        if self.log_path.exists():
            self._chown(self.log_path)

    def _initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a half-initialised cluster from an interrupted initdb
        self.pgdata.mkdir(mode=0o700)
        self._chown(self.pgdata)
        base = [str(pg_bin() / "initdb"), "-D", str(self.pgdata), "--auth=trust"]
        base += ["--encoding=utf8", "-U", "postgres"]
        if not self.durable:
            base.append("-N")  # --no-sync: the new files are not flushed to disk
        last = ""
        for locale in (["--locale=C.UTF-8"], ["--no-locale"]):
            started = time.monotonic()
            res = subprocess.run(
                base + locale, capture_output=True, text=True, user=self._user, check=False
            )
            if res.returncode == 0:
                logger.info("initdb %s in %.2f s", self.pgdata, time.monotonic() - started)
                return
            last = (res.stderr or res.stdout).strip()
            for child in self.pgdata.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise PostgresError(f"initdb failed in {self.pgdata}: {last}")

    def _remove_stale_pid_file(self) -> None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return
        if _pid_alive(pid) and _is_postgres(pid):
            raise PostgresError(
                f"a PostgreSQL (pid {pid}) is already running on {self.pgdata}; stop it first "
                "or use another --data directory"
            )
        logger.info("removing stale %s (pid %s is gone)", pid_file, pid)
        pid_file.unlink(missing_ok=True)
        # the socket's lock file names the same dead postmaster; PostgreSQL itself would take
        # a killed one that its new parent has not reaped yet (a zombie) for a live one
        for lock in self.pgdata.glob(".s.PGSQL.*.lock"):
            try:
                owner = int(lock.read_text().splitlines()[0])
            except (OSError, IndexError, ValueError):
                continue
            if not _pid_alive(owner):
                lock.unlink(missing_ok=True)

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise PostgresError(
                    f"postgres exited with status {self._proc.returncode}: {self._log_tail()}"
                )
            try:
                with psycopg.connect(self.dsn, connect_timeout=2, autocommit=True):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresError(
                        f"postgres not ready after {timeout:.0f} s ({exc}): {self._log_tail()}"
                    ) from exc
            time.sleep(delay)  # polling interval of the readiness probe
            delay = min(delay * 2, 0.1)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _is_postgres(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip().startswith("postgres")
    except OSError:
        return True  # cannot tell: assume it is, to be safe
