"""Caseworker accounts: hashed, never plaintext; one municipality and unit each."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import argon2
import pytest

from consumers.inbox import caseworkers as caseworkers_module
from consumers.inbox.caseworkers import (
    UNKNOWN_STAFF_HASH,
    AccountsError,
    Caseworker,
    Caseworkers,
    add_account,
    ensure_demo_account,
    hash_password,
)

YOUTH = Caseworker("yu-1", "161", "youth_unit")


def test_sign_in_with_the_right_password_only(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    token = add_account(path, YOUTH, "correct horse", api_token=True)
    caseworkers = Caseworkers(path)
    assert caseworkers.sign_in("yu-1", "correct horse") == YOUTH
    assert caseworkers.sign_in("yu-1", "wrong") is None
    assert caseworkers.sign_in("nobody", "correct horse") is None
    assert token is not None and caseworkers.by_token(token) == YOUTH
    assert caseworkers.by_token("guess") is None


def test_an_unknown_staff_id_costs_one_verify_as_a_wrong_password_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted, not timed: one argon2 verify, against a hash of the same cost as a real one."""
    path = tmp_path / "users.json"
    add_account(path, YOUTH, "correct horse")
    caseworkers = Caseworkers(path)
    verified: list[str] = []

    class Counting(argon2.PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            verified.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(caseworkers_module, "_hasher", Counting())
    assert caseworkers.sign_in("yu-1", "wrong") is None
    assert caseworkers.sign_in("nobody", "wrong") is None
    assert len(verified) == 2 and verified[1] == UNKNOWN_STAFF_HASH
    parameters = argon2.extract_parameters
    assert parameters(UNKNOWN_STAFF_HASH) == parameters(verified[0])
    assert parameters(UNKNOWN_STAFF_HASH) == parameters(hash_password("any"))


def test_the_file_holds_no_plaintext_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    token = add_account(path, YOUTH, "correct horse", api_token=True)
    text = path.read_text()
    assert "correct horse" not in text and token is not None and token not in text
    assert json.loads(text)["caseworkers"][0]["password_hash"].startswith("$argon2id$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_accounts_added_later_are_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    add_account(path, YOUTH, "one")
    caseworkers = Caseworkers(path)
    add_account(path, Caseworker("jc-1", "161", "jobcentre"), "two")
    assert caseworkers.get("jc-1") == Caseworker("jc-1", "161", "jobcentre")


def test_demo_account_only_when_there_is_no_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    demo = ensure_demo_account(path, "161", "youth_unit")
    assert demo is not None
    assert Caseworkers(path).sign_in(demo.staff_id, demo.password) == Caseworker(
        demo.staff_id, "161", "youth_unit"
    )
    assert ensure_demo_account(path, "161", "youth_unit") is None


def test_an_unknown_unit_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(
        json.dumps(
            {
                "caseworkers": [
                    {"staff_id": "x", "kommunekode": "161", "unit": "police", "password_hash": "h"}
                ]
            }
        )
    )
    with pytest.raises(AccountsError, match="unknown unit police"):
        Caseworkers(path)
