"""Caseworker accounts: a configured JSON list with argon2 password hashes.

The file (``UNGEBUS_INBOX_USERS_FILE``, mode 0600) holds no plaintext: passwords are argon2id
hashes and API tokens for case-management systems are SHA-256 hashes of 256-bit random tokens
(a fast hash is enough for a token that cannot be guessed). Each caseworker belongs to one
municipality and one unit, and sees only that.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from schemas import KOMMUNEKODER, UNITS

_hasher = PasswordHasher()
# Verified against when the staff id is unknown, so a wrong name costs as long as a wrong
# password: the hash of a random password nobody kept, made once with the hasher's parameters
# (argon2-cffi 25.1's defaults; tests/consumers/inbox/test_caseworkers.py checks they still match)
# and written here, so importing the inbox does not spend an argon2 hash.
UNKNOWN_STAFF_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$P+D6dGu01yF7pnrguwr8jQ"
    "$gkB3kQFNvJVjOYgJwlpobkzYkNfSyC54uhD7R5WiZTI"
)


@dataclass(frozen=True)
class Caseworker:
    staff_id: str  # what task_taken_over records as taken_over_by: an identifier, not a name
    kommunekode: str
    unit: str


@dataclass(frozen=True)
class Account:
    caseworker: Caseworker
    password_hash: str
    api_token_sha256: str | None = None


class AccountsError(ValueError):
    """The users file is missing, unreadable or names an unknown municipality or unit."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_accounts(path: Path) -> dict[str, Account]:
    try:
        data = json.loads(path.read_text())
        entries = data["caseworkers"]
        accounts = [_account(entry) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AccountsError(f"cannot read caseworker accounts from {path}: {exc}") from exc
    return {a.caseworker.staff_id: a for a in accounts}


def _account(entry: dict[str, Any]) -> Account:
    caseworker = Caseworker(
        staff_id=str(entry["staff_id"]),
        kommunekode=str(entry["kommunekode"]),
        unit=str(entry["unit"]),
    )
    if caseworker.kommunekode not in KOMMUNEKODER:
        raise ValueError(f"{caseworker.staff_id}: unknown kommunekode {caseworker.kommunekode}")
    if caseworker.unit not in UNITS:
        raise ValueError(f"{caseworker.staff_id}: unknown unit {caseworker.unit}")
    token = entry.get("api_token_sha256")
    return Account(caseworker, str(entry["password_hash"]), str(token) if token else None)


def write_accounts(path: Path, accounts: dict[str, Account]) -> None:
    """Atomically, readable by the owner only."""
    entries = [
        {
            "staff_id": a.caseworker.staff_id,
            "kommunekode": a.caseworker.kommunekode,
            "unit": a.caseworker.unit,
            "password_hash": a.password_hash,
            **({"api_token_sha256": a.api_token_sha256} if a.api_token_sha256 else {}),
        }
        for a in sorted(accounts.values(), key=lambda a: a.caseworker.staff_id)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"caseworkers": entries}, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)


def add_account(
    path: Path, caseworker: Caseworker, password: str, *, api_token: bool = False
) -> str | None:
    """Add or replace an account; return a new API token (shown once) if asked for."""
    accounts = read_accounts(path) if path.exists() else {}
    token = secrets.token_urlsafe(32) if api_token else None
    accounts[caseworker.staff_id] = Account(
        caseworker, hash_password(password), token_digest(token) if token else None
    )
    write_accounts(path, accounts)
    return token


@dataclass(frozen=True)
class DemoAccount:
    staff_id: str
    password: str
    api_token: str
    path: Path


def ensure_demo_account(path: Path, kommunekode: str, unit: str) -> DemoAccount | None:
    """With no users file yet, create one with a demo caseworker and a random password."""
    if path.exists():
        return None
    password = secrets.token_urlsafe(12)
    staff_id = f"demo-{kommunekode}-{unit}"
    token = add_account(path, Caseworker(staff_id, kommunekode, unit), password, api_token=True)
    assert token is not None
    return DemoAccount(staff_id, password, token, path)


class Caseworkers:
    """Sign-in and token look-up against the users file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._accounts: dict[str, Account] = read_accounts(path)
        self._reload()

    def _reload(self) -> dict[str, Account]:
        with self._lock:
            try:
                stat = self._path.stat()
            except OSError:
                return self._accounts  # moved away mid-edit: keep the accounts we have
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._accounts = read_accounts(self._path)
                self._stamp = stamp
            return self._accounts

    def get(self, staff_id: str) -> Caseworker | None:
        account = self._reload().get(staff_id)
        return account.caseworker if account else None

    def sign_in(self, staff_id: str, password: str) -> Caseworker | None:
        account = self._reload().get(staff_id)
        try:
            _hasher.verify(account.password_hash if account else UNKNOWN_STAFF_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return account.caseworker if account else None

    def by_token(self, token: str) -> Caseworker | None:
        digest = token_digest(token)
        for account in self._reload().values():
            stored = account.api_token_sha256
            if stored and hmac.compare_digest(stored, digest):
                return account.caseworker
        return None
