"""The inbox API's OpenAPI document says how to authenticate and what every error looks like."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from consumers.inbox.caseworkers import Caseworker, Caseworkers, add_account
from consumers.inbox.settings import InboxSettings
from consumers.inbox.sign_in_limits import Limit, SignInLimits
from consumers.inbox.web import Services, create_app


def inbox_app(tmp_path: Path) -> tuple[FastAPI, str]:
    """The web app with accounts but no store or Kafka: enough for refusals and the document."""
    users = tmp_path / "users.json"
    token = add_account(users, Caseworker("yu-1", "161", "youth_unit"), "pw", api_token=True)
    assert token is not None
    services = Services(
        settings=InboxSettings(var_dir=tmp_path),
        store=None,  # type: ignore[arg-type]
        caseworkers=Caseworkers(users),
        take_overs=None,  # type: ignore[arg-type]
        clock=lambda: dt.datetime.now(dt.UTC),
        tz=dt.UTC,
        sign_ins=SignInLimits(Limit(5, 60), Limit(30, 60)),
    )
    return create_app(services, "s" * 64), token


def post(app: FastAPI, url: str, **kwargs: Any) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inbox") as client:
            return await client.post(url, **kwargs)

    return asyncio.run(send())


def test_every_route_declares_its_credentials_and_its_errors(tmp_path: Path) -> None:
    app, _ = inbox_app(tmp_path)
    document = app.openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerToken"] == {**schemes["bearerToken"], "type": "http", "scheme": "bearer"}
    assert schemes["session"]["in"] == "cookie" and schemes["session"]["name"] == "ungebus_inbox"
    assert schemes["csrfToken"]["in"] == "header" and schemes["csrfToken"]["name"] == "X-CSRF-Token"
    operations = [(m, p, op) for p, ops in document["paths"].items() for m, op in ops.items()]
    assert len(operations) == 4
    for method, _path, operation in operations:
        session = {"session": [], "csrfToken": []} if method == "post" else {"session": []}
        assert operation["security"] == [{"bearerToken": []}, session]
        errors = {s: r for s, r in operation["responses"].items() if not s.startswith("2")}
        assert "401" in errors
        for answer in errors.values():
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_body_that_is_not_utf8_or_a_long_note_is_422_with_the_error_body(
    tmp_path: Path,
) -> None:
    app, token = inbox_app(tmp_path)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    not_utf8 = post(app, "/api/tasks/t-1/take-over", content=b'{"note": "\xff"}', headers=auth)
    assert not_utf8.status_code == 422, not_utf8.text
    assert not_utf8.json() == {
        "detail": "the request is invalid",
        "errors": [{"field": "(body)", "reason": "JSON decode error", "code": "json_invalid"}],
    }
    long_note = post(app, "/api/tasks/t-1/take-over", json={"note": "x" * 501}, headers=auth)
    assert long_note.status_code == 422
    assert [e["field"] for e in long_note.json()["errors"]] == ["note"]
    assert "x" * 20 not in long_note.text  # the input is never echoed
    nobody = post(app, "/api/tasks/t-1/take-over", json={})
    assert nobody.status_code == 401 and nobody.json()["errors"] == []
    assert nobody.headers["www-authenticate"] == "Bearer"
