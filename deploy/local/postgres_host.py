"""What the local PostgreSQL server needs from this machine: Debian's server programs, and a
user other than root to run them as.

PostgreSQL refuses to run as root (``initdb`` and ``postgres`` exit with "cannot be run as
root"), and tests and CI run as root here. So when we are root the server's programs run as an
unprivileged system user: ``postgres`` (Debian's postgresql-common makes it when the server is
installed), else ``nobody``. Python starts them with ``subprocess.Popen(user=, group=,
extra_groups=[])``, which in the child drops the supplementary groups, then the group, then the
user, just before ``exec``: no ``runuser``/``su``/``sudo``, no PAM session, no shell, nothing
that may be missing or prompt. That user owns the data and socket folders; it needs to reach
the server's home, which :func:`unreachable_folder` checks first (a root home of mode 0700, as
under ``/root`` or pytest's ``/tmp/pytest-of-root``, is not reachable: the tests start the server
in a folder of its own under the temporary directory).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEBIAN_LAYOUT = Path("/usr/lib/postgresql")
SERVER_PROGRAMS = ("initdb", "postgres", "pg_ctl")
UNPRIVILEGED_USERS = ("postgres", "nobody")
INSTALL_HINT = (
    "install them (Debian: apt-get install postgresql; `make test` does) or set "
    "UNGEBUS_LOCAL_POSTGRES_BIN to the folder that holds them"
)


class LocalPostgresError(RuntimeError):
    """Something an operator must fix before the local PostgreSQL can run; the message says
    what."""


def find_binaries(configured: Path | None = None) -> Path:
    """The folder of ``initdb``, ``postgres`` and ``pg_ctl``: ``configured``, else Debian's
    ``/usr/lib/postgresql/<major>/bin`` (the newest major), else the folder of ``initdb`` on
    PATH (Debian puts only its wrappers there)."""
    if configured is not None:
        candidates = [configured]
    else:
        candidates = sorted(DEBIAN_LAYOUT.glob("*/bin"), key=_major, reverse=True)
        if (on_path := shutil.which("initdb")) is not None:
            candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all(os.access(folder / program, os.X_OK) for program in SERVER_PROGRAMS):
            return folder
    where = (
        str(configured) if configured is not None else f"{DEBIAN_LAYOUT}/<major>/bin nor on PATH"
    )
    raise LocalPostgresError(
        f"PostgreSQL's server programs ({', '.join(SERVER_PROGRAMS)}) were not found in "
        f"{where}; {INSTALL_HINT}"
    )


def _major(folder: Path) -> int:
    name = folder.parent.name
    return int(name) if name.isdigit() else 0


def server_version(binaries: Path) -> str:
    """``15.18`` from ``postgres --version``."""
    result = subprocess.run(
        [str(binaries / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    found = re.search(r"\d+(?:\.\d+)*", result.stdout)
    return found.group(0) if found else "?"


@dataclass(frozen=True)
class ServerUser:
    """Who runs the server's programs: ``uid`` None means this process's own user."""

    name: str
    uid: int | None = None
    gid: int | None = None

    @property
    def extra_groups(self) -> list[int] | None:
        """``subprocess``'s ``extra_groups``: none at all for another user, ours for us."""
        return None if self.uid is None else []

    def process_options(self, cwd: Path) -> dict[str, Any]:
        """``subprocess`` keywords that run a server program as this user, in ``cwd``, with
        :func:`server_environment`."""
        return {
            "env": server_environment(),
            "cwd": cwd,
            "user": self.uid,
            "group": self.gid,
            "extra_groups": self.extra_groups,
        }

    def own(self, path: Path, mode: int) -> None:
        """Make ``path`` this user's, with ``mode``."""
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)
        path.chmod(mode)


def server_user() -> ServerUser:
    """Ourselves, unless we are root: then ``postgres``, else ``nobody`` (see the module)."""
    if os.geteuid() != 0:
        return ServerUser(pwd.getpwuid(os.geteuid()).pw_name)
    for name in UNPRIVILEGED_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ServerUser(name, entry.pw_uid, entry.pw_gid)
    raise LocalPostgresError(
        "PostgreSQL refuses to run as root and neither a 'postgres' nor a 'nobody' user exists "
        "to run it as; install Debian's postgresql (it makes the 'postgres' user) or run as "
        "another user"
    )


def unreachable_folder(user: ServerUser, folder: Path) -> Path | None:
    """The first of ``folder`` and its parents that ``user`` may not enter, if any (owner,
    group and other execute bits; the user runs with no supplementary groups)."""
    if user.uid is None:
        return None
    for step in [folder, *folder.parents]:
        try:
            info = step.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == user.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return step
    return None


def server_environment() -> dict[str, str]:
    """Ours without libpq's ``PG*`` variables (a ``PGDATA`` or ``PGPORT`` of the operator's
    must not steer the local server), in the C locale (``initdb --no-locale``)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    env["LC_ALL"] = "C"
    return env
