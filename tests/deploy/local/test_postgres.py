"""The local PostgreSQL server (deploy/local/postgres.py) as the tests and `make run` use it:
Debian's programs, its own role and password, never as root, and nothing left running."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bus.ports import free_ports
from deploy.local.databases import DATABASES
from deploy.local.postgres import ROLE, LocalPostgres, LocalPostgresError
from deploy.local.postgres_host import ServerUser, find_binaries, unreachable_folder
from deploy.local.settings import StackSettings
from deploy.local.stack import Stack

QUIET = lambda _message: None  # noqa: E731


@pytest.fixture
def home() -> Iterator[Path]:
    """A folder the server's user can reach (not pytest's: /tmp/pytest-of-root is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="ungebus-postgres-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid in /proc/{pid}/status")


def processes_using(folder: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(folder).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.integration
def test_up_keeps_data_across_a_restart_and_down_leaves_no_process(home: Path) -> None:
    server = LocalPostgres(home=home, port=free_ports(1)[0])
    try:
        assert server.up(echo=QUIET) is True
        pid = server.running_pid()
        assert pid is not None and f"is running at 127.0.0.1:{server.port}" in server.status()
        assert uid_of(pid) != 0, "PostgreSQL must not run as root"
        assert stat.S_IMODE(server.pgpass.stat().st_mode) == 0o600
        assert stat.S_IMODE(server.log_file.stat().st_mode) == 0o600
        url = server.create_database("kept")
        password = server.pgpass.read_text().split(":")[-1].strip()
        assert password not in url and f"{ROLE}@127.0.0.1:{server.port}/kept" in url
        engine = create_engine(url)
        with engine.begin() as db:
            db.execute(text("CREATE TABLE notes (body text)"))
            db.execute(text("INSERT INTO notes VALUES ('kept across a restart')"))
        engine.dispose()
        assert server.up(echo=QUIET) is False  # already running: nothing to do

        assert server.down(echo=QUIET) is True
        assert server.running_pid() is None and processes_using(server.data_dir) == []
        assert server.up(echo=QUIET) is True
        engine = create_engine(server.create_database("kept"))
        with engine.connect() as db:
            assert db.execute(text("SELECT body FROM notes")).scalar() == "kept across a restart"
        engine.dispose()
    finally:
        server.down(echo=QUIET)
    assert processes_using(server.data_dir) == []
    assert server.down(echo=QUIET) is False


@pytest.mark.integration
def test_the_log_keeps_an_errors_message_but_never_the_row(postgres_server: LocalPostgres) -> None:
    engine = create_engine(postgres_server.create_database("log_check"))
    row = "subject 140309-1234"  # CPR-shaped, synthetic
    with engine.begin() as db:
        db.execute(text("CREATE TABLE people (who text CHECK (length(who) < 5))"))
    with pytest.raises(Exception, match="people_who_check"), engine.begin() as db:
        db.execute(text("INSERT INTO people VALUES (:who)"), {"who": row})
    engine.dispose()
    log = postgres_server.log_file.read_text()
    assert "people_who_check" in log
    assert "140309-1234" not in log


@pytest.mark.integration
def test_the_dev_stack_gives_the_stores_the_running_servers_databases(
    postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    settings = StackSettings(
        kafka_bootstrap_servers="127.0.0.1:1",  # not the local broker: no login needed
        local_postgres_home=postgres_server.home,
        local_postgres_port=postgres_server.port,
        var_dir=tmp_path,
    )
    assert settings.local_postgres is False  # one runs already: the stack uses it
    stack = Stack(settings, QUIET)
    stack._postgres_up()
    for name, variable in DATABASES.items():
        url = stack.supervisor.env[variable]
        assert url == postgres_server.url(name)
        engine = create_engine(url)
        with engine.connect() as db:
            assert db.execute(text("SELECT current_database()")).scalar() == name
        engine.dispose()
    stack.down()
    assert postgres_server.running_pid() is not None, "the stack stops only what it started"


def test_missing_programs_say_how_to_install_them(tmp_path: Path) -> None:
    with pytest.raises(LocalPostgresError, match=r"apt-get install postgresql"):
        find_binaries(tmp_path)
    server = LocalPostgres(home=tmp_path / "pg", port=free_ports(1)[0], binaries=tmp_path)
    with pytest.raises(LocalPostgresError, match="UNGEBUS_LOCAL_POSTGRES_BIN"):
        server.up(echo=QUIET)  # binaries given and empty: found missing before anything runs


@pytest.mark.integration  # needs the programs: make test and make integration install them
def test_debians_layout_is_found_first() -> None:
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    found = find_binaries()  # make test installs Debian's postgresql
    assert (found / "initdb").exists() and (found / "postgres").exists()
    if debian:
        assert found.parent.parent == Path("/usr/lib/postgresql")


def test_a_taken_port_names_the_setting(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = LocalPostgres(home=tmp_path / "pg", port=squatter.getsockname()[1])
        with pytest.raises(LocalPostgresError, match=r"in use.*UNGEBUS_LOCAL_POSTGRES_PORT"):
            server.up(echo=QUIET)


def test_a_folder_the_server_user_may_not_enter_is_named(tmp_path: Path) -> None:
    stranger = ServerUser("stranger", uid=os.getuid() + 4242, gid=os.getgid() + 4242)
    closed = tmp_path / "closed"
    (closed / "home").mkdir(parents=True)
    closed.chmod(0o700)
    assert unreachable_folder(stranger, closed / "home") == closed
    closed.chmod(0o711)  # enterable now (pytest's folders above may not be)
    assert unreachable_folder(stranger, closed / "home") in (None, *closed.parents)
    assert unreachable_folder(ServerUser("us"), closed / "home") is None  # ourselves: no check


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_as_root_a_home_the_server_user_cannot_reach_is_a_clear_error(tmp_path: Path) -> None:
    # pytest's own temporary folder is under /tmp/pytest-of-root, mode 0700.
    server = LocalPostgres(home=tmp_path / "pg", port=free_ports(1)[0])
    with pytest.raises(LocalPostgresError, match=r"refuses to run as root.*may not enter"):
        server.up(echo=QUIET)
