"""Signing in to the inbox is limited per account and per client address: 429 + Retry-After.

The client address is the one uvicorn sees; from a proxy on 127.0.0.1 it takes the client
from X-Forwarded-For, which is how these requests (all from 127.0.0.1) come from several
addresses (TEST-NET ones, never contacted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.inbox_harness import (
    csrf_of,
    inbox_settings,
    running_inbox,
)

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"  # add_caseworker's default
OFFICE, HOME, ELSEWHERE = "192.0.2.10", "198.51.100.20", "203.0.113.30"


def attempt(client: httpx.Client, staff_id: str, password: str, address: str) -> httpx.Response:
    """One sign-in through the form, in a fresh session, from ``address``."""
    client.cookies.clear()
    via = {"X-Forwarded-For": address}
    csrf = csrf_of(client.get("/login", headers=via).text)
    form = {"staff_id": staff_id, "password": password, "csrf_token": csrf}
    return client.post("/login", data=form, headers=via)


def test_sign_ins_are_limited_per_account_and_per_address(
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = inbox_settings(
        kafka_bootstrap,
        unique,
        tmp_path,
        inbox_sign_in_failures_per_account=3,
        inbox_sign_in_failures_per_address=5,
        inbox_sign_in_window_s=600.0,
    )
    caplog.set_level(logging.INFO, logger="ungebus.inbox.audit")
    with running_inbox(settings) as running, running.client() as client:
        for staff_id in ("yu-1", "yu-2", "yu-3"):
            running.add_caseworker(staff_id, "youth_unit")

        # An account: three wrong passwords, then refused, even with the right one.
        for guess in ("123456", "password", "glostrup"):
            assert attempt(client, "yu-1", guess, OFFICE).status_code == 401
        refused = attempt(client, "yu-1", PASSWORD, OFFICE)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["Retry-After"]) <= 600
        assert "Too many failed sign-ins" in refused.text
        assert attempt(client, "yu-1", PASSWORD, HOME).status_code == 429
        # Another account still signs in, from that address and from another.
        assert attempt(client, "yu-2", PASSWORD, OFFICE).status_code == 303
        assert attempt(client, "yu-2", PASSWORD, HOME).status_code == 303

        # An address: five failures in all (three above, two more on unknown ids), then
        # refused for every account; the same account from another address is fine.
        assert attempt(client, "nobody", "x", OFFICE).status_code == 401
        assert attempt(client, "yu-9", "x", OFFICE).status_code == 401
        by_address = attempt(client, "yu-3", PASSWORD, OFFICE)
        assert by_address.status_code == 429 and int(by_address.headers["Retry-After"]) > 0
        assert attempt(client, "yu-3", PASSWORD, ELSEWHERE).status_code == 303

    lines = [r.getMessage() for r in caplog.records if r.name == "ungebus.inbox.audit"]
    refusals = [line for line in lines if line.startswith("sign-in refused")]
    assert any("'yu-1' from 192.0.2.10" in r and "for the account" in r for r in refusals)
    assert any("'yu-1' from 198.51.100.20" in r for r in refusals)
    assert any("'yu-3' from 192.0.2.10" in r and "from the address" in r for r in refusals)
    assert "sign-in failed: account 'nobody' from 192.0.2.10" in lines
    assert "signed in: account 'yu-3' from 203.0.113.30" in lines
    for secret in (PASSWORD, "123456", "glostrup"):
        assert not any(secret in line for line in lines)
