"""Principals' SCRAM credentials on a running cluster: the logins the ACL matrix's principals
use, stored as the admin (only a super user may change credentials).

Where passwords come from is the deployment's business (``ungebus local`` keeps them under the
broker's home, ``ungebus deploy secrets`` under ``deploy/secrets/`` for compose); here they are
a folder of ``<principal>.password`` files, each one line. Storing is idempotent: the same
password again changes nothing a client sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
PASSWORD_SUFFIX = ".password"


class LoginError(RuntimeError):
    """A credential could not be read or stored; the message names the principal."""


def read_password_files(folder: Path) -> dict[str, SecretStr]:
    """``principal -> password`` of every ``<principal>.password`` in ``folder``."""
    if not folder.is_dir():
        raise LoginError(f"{folder} is not a folder of <principal>.password files")
    found = {
        path.name.removesuffix(PASSWORD_SUFFIX): SecretStr(path.read_text().strip())
        for path in sorted(folder.glob(f"*{PASSWORD_SUFFIX}"))
    }
    empty = [principal for principal, secret in found.items() if not secret.get_secret_value()]
    if empty:
        raise LoginError(f"empty password file for {', '.join(empty)} in {folder}")
    return found


def store_logins(admin_config: Mapping[str, str], passwords: Mapping[str, SecretStr]) -> None:
    """Store each principal's SCRAM-SHA-512 credential, as the admin of ``admin_config``."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialAlteration,
        UserScramCredentialUpsertion,
    )

    if not passwords:
        return
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(principal, info, secret.get_secret_value().encode())
        for principal, secret in passwords.items()
    ]
    admin = AdminClient(dict(admin_config))
    login = admin_config.get("sasl.username", "the settings' login")
    for principal, future in admin.alter_user_scram_credentials(upserts).items():
        try:
            future.result(timeout=30)
        except Exception as exc:
            raise LoginError(
                f"storing the SCRAM credential of {principal!r} as {login!r} failed: {exc}"
            ) from exc
