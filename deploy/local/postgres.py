"""A real PostgreSQL server on this machine, from Debian's packages, for the inbox and the
audit store: ``ungebus local up --postgres``, ``make run`` with ``UNGEBUS_LOCAL_POSTGRES``, and
a throwaway one per test session.

Like the local broker it lives under one home folder: ``data/`` (``initdb`` once), ``run/``
(its unix socket), ``postgres.log``, and ``pgpass``, the password of its own superuser role
``ungebus`` (random, mode 0600, in libpq's password-file format). It listens on 127.0.0.1 only.
Its URLs name that file (``?passfile=``) and hold no password, so they may be logged and
passed to components as they are. When we are root it runs as an unprivileged user
(:mod:`deploy.local.postgres_host`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from bus.ports import HOST, free_ports, port_free
from bus.waiting import within
from deploy.local.java import pid_alive, tail
from deploy.local.postgres_host import (
    LocalPostgresError,
    ServerUser,
    find_binaries,
    server_user,
    server_version,
    unreachable_folder,
)

if TYPE_CHECKING:
    import psycopg

    from deploy.local.settings import LocalPostgresSettings

__all__ = ["ROLE", "LocalPostgres", "LocalPostgresError", "throwaway_postgres"]

ROLE = "ungebus"
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Throwaway data need not survive a power cut: no fsync, no full pages (tests, a fault suite).
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


@dataclass
class LocalPostgres:
    """One local PostgreSQL server: where it lives (``home``) and where it listens."""

    home: Path
    port: int
    binaries: Path | None = None
    """The folder of initdb, postgres and pg_ctl; None: found (Debian's layout, then PATH)."""
    start_timeout_s: float = 60.0
    durable: bool = True
    """False: fsync and full-page writes off, for data that may be lost (a test session)."""
    port_setting: str = "UNGEBUS_LOCAL_POSTGRES_PORT"
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: LocalPostgresSettings) -> LocalPostgres:
        return cls(
            home=settings.local_postgres_home,
            port=settings.local_postgres_port,
            binaries=settings.local_postgres_bin,
            start_timeout_s=settings.local_postgres_start_timeout_s,
        )

    # -- where things are -------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def pgpass(self) -> Path:
        """The role's password, as libpq reads it (``PGPASSFILE``, ``passfile=``)."""
        return self.home / "pgpass"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database``: no password in it, only where to read it."""
        passfile = quote(str(self.pgpass), safe="/")
        return f"postgresql+psycopg://{ROLE}@{HOST}:{self.port}/{database}?passfile={passfile}"

    # -- state ------------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The postmaster's pid if ours is alive (its ``postmaster.pid`` names this data)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not pid_alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid
        return pid if str(self.data_dir).encode() in cmdline else None

    def status(self) -> str:
        pid = self.running_pid()
        if pid is None:
            return (
                f"PostgreSQL is not running (would listen on {self.address}; "
                "ungebus local up --postgres starts it)."
            )
        return (
            f"PostgreSQL {self._data_version()} is running at {self.address} (pid {pid}, data "
            f"{self.data_dir}, log {self.log_file}); role {ROLE}, password in {self.pgpass}."
        )

    # -- lifecycle --------------------------------------------------------------------------
    def up(self, echo: Callable[[str], None] = print) -> bool:
        """Initialise the data once, start the server, wait until it answers; False when it
        was already running."""
        pid = self.running_pid()
        if pid is not None:
            echo(f"PostgreSQL is already running at {self.address} (pid {pid}); nothing to do.")
            return False
        if not port_free(self.port):
            raise LocalPostgresError(
                f"port {self.port} is in use by another process; set {self.port_setting} to "
                "use another"
            )
        binaries = find_binaries(self.binaries)
        user = server_user()
        self._prepare_home(user)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(binaries, user)
        elif not self.pgpass.exists():
            raise LocalPostgresError(
                f"the local PostgreSQL's data ({self.data_dir}) has no password file "
                f"({self.pgpass}); delete {self.home} to start afresh"
            )
        self._start(binaries, user)
        echo(
            f"PostgreSQL {server_version(binaries)} is up at {self.address} (data: {self.home}, "
            f"as user {user.name}; role {ROLE}, password in {self.pgpass})"
        )
        return True

    def down(self, echo: Callable[[str], None] = print, timeout_s: float = 60.0) -> bool:
        """``pg_ctl stop -m fast`` (clients cut off, then a clean checkpoint); False when none
        ran."""
        pid = self.running_pid()
        if pid is None:
            echo("PostgreSQL is not running; nothing to stop.")
            return False
        binaries = find_binaries(self.binaries)
        user = server_user()
        for mode in ("fast", "immediate"):
            stopped = self._pg_ctl(binaries, user, "stop", "-m", mode, "-t", f"{timeout_s:.0f}")
            if within(lambda: not pid_alive(pid), 10):
                break
            said = tail(stopped.stdout + stopped.stderr, 5)
            echo(f"PostgreSQL (pid {pid}) did not stop (pg_ctl stop -m {mode}): {said}")
        else:
            os.kill(pid, signal.SIGKILL)
            within(lambda: not pid_alive(pid), 10)
        if self._process is not None:  # ours: reap it, no zombie left behind
            self._process.wait(10)
            self._process = None
        echo(f"PostgreSQL at {self.address} stopped.")
        return True

    def create_database(self, name: str) -> str:
        """Create ``name`` unless it exists (owned by the role); its URL."""
        if not DATABASE_NAME.fullmatch(name):
            raise ValueError(f"not a database name for the local PostgreSQL: {name!r}")
        from psycopg import sql

        with self._connect() as connection:
            connection.autocommit = True
            found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    # -- internals --------------------------------------------------------------------------
    def _prepare_home(self, user: ServerUser) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        # The server's user enters home (to its data and socket) but may not list it.
        self.home.chmod(0o711 if user.uid is not None else 0o700)
        if (blocked := unreachable_folder(user, self.home)) is not None:
            raise LocalPostgresError(
                f"PostgreSQL runs as user {user.name} here (it refuses to run as root), and "
                f"that user may not enter {blocked}; set UNGEBUS_LOCAL_POSTGRES_HOME to a "
                "folder it can reach (e.g. under /var/tmp)"
            )
        for folder, mode in ((self.data_dir, 0o700), (self.socket_dir, 0o755)):
            if not folder.exists():  # an existing cluster keeps its owner
                folder.mkdir()
                user.own(folder, mode)

    def _initdb(self, binaries: Path, user: ServerUser) -> None:
        """A new cluster whose only superuser is ``ungebus`` with a random password, every
        connection authenticated by SCRAM (no ``trust``, no ``peer``)."""
        password = secrets.token_urlsafe(24)  # no ':' or '\\', which pgpass would need escaped
        _write_private(
            self.pgpass,
            "".join(f"{host}:*:*:{ROLE}:{password}\n" for host in (HOST, "localhost")),
        )
        # initdb reads the password from a file the server's user can read; gone right after.
        pwfile = self.home / "initdb-password"
        _write_private(pwfile, password + "\n")
        user.own(pwfile, 0o600)
        try:
            result = subprocess.run(
                [
                    str(binaries / "initdb"),
                    "-D",
                    str(self.data_dir),
                    f"--username={ROLE}",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                    *([] if self.durable else ["--no-sync"]),
                ],
                capture_output=True,
                text=True,
                check=False,
                **user.process_options(self.home),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise LocalPostgresError(
                f"initdb in {self.data_dir} failed:\n{tail(result.stdout + result.stderr)}"
            )

    def _start(self, binaries: Path, user: ServerUser) -> None:
        options = [
            f"listen_addresses={HOST}",
            "unix_socket_permissions=0770",
            # An error's statement and its detail ("Failing row contains (...)") may quote a
            # row, and a row may hold a CPR number: the log keeps the error's message only.
            "log_error_verbosity=terse",
            "log_min_error_statement=panic",
            *([] if self.durable else FAST_SETTINGS),
        ]
        command = [str(binaries / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        command += ["-k", str(self.socket_dir)]
        for option in options:
            command += ["-c", option]
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(fd, "ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **user.process_options(self.home),
            )
        self._process = process

        def exited_while_starting() -> None:
            if process.poll() is not None:
                self._process = None
                raise LocalPostgresError(
                    f"PostgreSQL exited with code {process.returncode} while starting; the end "
                    f"of its log ({self.log_file}):\n{self._log_tail()}"
                )

        if within(self._answers, self.start_timeout_s, every_s=0.1, check=exited_while_starting):
            return
        process.kill()
        process.wait(10)
        self._process = None
        raise LocalPostgresError(
            f"PostgreSQL did not answer on {self.address} within {self.start_timeout_s:g} s; "
            f"the end of its log ({self.log_file}):\n{self._log_tail()}"
        )

    def _answers(self) -> bool:
        """True once a login as the role runs a query (not merely when the port is open)."""
        import psycopg

        try:
            with self._connect(timeout_s=2) as connection:
                connection.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def _connect(self, timeout_s: float = 10) -> psycopg.Connection[tuple[object, ...]]:
        try:
            import psycopg
        except ImportError as exc:
            raise LocalPostgresError(
                "psycopg is needed to talk to the local PostgreSQL; "
                "pip install -e '.[postgres]' (`make install` does)"
            ) from exc
        return psycopg.connect(
            host=HOST,
            port=self.port,
            user=ROLE,
            dbname="postgres",
            passfile=str(self.pgpass),
            connect_timeout=max(1, round(timeout_s)),
        )

    def _pg_ctl(
        self, binaries: Path, user: ServerUser, *args: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binaries / "pg_ctl"), "-D", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            check=False,
            **user.process_options(self.home),
        )

    def _data_version(self) -> str:
        try:
            return (self.data_dir / "PG_VERSION").read_text().strip()
        except OSError:
            return "?"

    def _log_tail(self) -> str:
        try:
            return tail(self.log_file.read_text(errors="replace"))
        except OSError:
            return "(no log written)"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (mode 0600 from the start)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w") as file:
        file.write(text)


@contextmanager
def throwaway_postgres(binaries: Path | None = None) -> Iterator[LocalPostgres]:
    """A PostgreSQL server on a free port in a new temporary folder, not durable, stopped
    and removed afterwards (the tests' session server; a fault suite's)."""
    # Not pytest's tmp_path: /tmp/pytest-of-root is 0700, closed to the server's user.
    home = Path(tempfile.mkdtemp(prefix="ungebus-postgres-"))
    server = LocalPostgres(home=home, port=free_ports(1)[0], binaries=binaries, durable=False)
    try:
        server.up(echo=lambda _message: None)
        yield server
    finally:
        try:
            server.down(echo=lambda _message: None)
        finally:
            shutil.rmtree(home, ignore_errors=True)
